"""Several cloud processes on one PostgreSQL database, as real processes: claims never take a row twice, an order
posted to two nodes at once is queued once, a node killed with SIGKILL loses no receipt it confirmed, and a
database that goes away is an answer to retry, not an error."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from kktbridge.cloud.states import State
from kktbridge.cloud.store import Store

from .support import CloudProcess, Shop, admin, make_tenant
from .test_store import new_receipt

CLAIMER = Path(__file__).with_name("claimer.py")


async def test_two_processes_claiming_from_one_queue_never_take_the_same_row(pg_url):
    store = await Store.open(pg_url)
    tenant = await make_tenant(store, "Магазин")
    queued = await asyncio.gather(*(store.submit(new_receipt(tenant, f"o{i}")) for i in range(600)))
    claimers = [subprocess.Popen([sys.executable, str(CLAIMER), pg_url, str(tenant.driver.id), f"node-{n}"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in range(2)]
    try:
        assert [c.stdout.readline().strip() for c in claimers] == ["ready", "ready"]
        for claimer in claimers:
            claimer.stdin.write("go\n")
            claimer.stdin.flush()
        results = [json.loads(c.stdout.readline()) for c in claimers]
    finally:
        for claimer in claimers:
            claimer.kill()
            claimer.wait(10)
    first, second = (set(r["taken"]) for r in results)
    assert len(first) == len(results[0]["taken"]) and len(second) == len(results[1]["taken"])
    assert first.isdisjoint(second) and first | second == {str(s.receipt.uuid) for s in queued}
    assert first and second, results  # both took part
    rows = await store.list_receipts(tenant.id, limit=1000)
    assert {r.state for r in rows} == {State.DELIVERED} and {r.deliveries for r in rows} == {1}
    assert {r.leased_by for r in rows} == {"node-0", "node-1"}
    await store.close()


async def test_one_order_posted_to_two_nodes_at_once_is_queued_once(pg_url):
    store = await Store.open(pg_url)
    tenant = await make_tenant(store, "Магазин")
    nodes = [CloudProcess(pg_url).start() for _ in range(2)]
    try:
        shop = Shop(None, nodes[0].url, [tenant])
        orders = [f"order-{i}" for i in range(40)]

        async def post(node, order):
            async with shop.http.post(node.url + "/api/fiscal/create-receipt.php",
                                      data=shop.form(tenant, order)) as response:
                return response.status, (await response.json())["receipt"]["id"]

        answers = await asyncio.gather(*(post(node, order) for order in orders for node in nodes))
        await shop.close()
    finally:
        for node in nodes:
            node.stop()
    for i in range(len(orders)):
        (status_a, id_a), (status_b, id_b) = answers[2 * i], answers[2 * i + 1]
        assert id_a == id_b and sorted((status_a, status_b)) == [200, 201]
    assert len(await store.list_receipts(tenant.id, limit=1000)) == len(orders)
    await store.close()


async def test_a_node_killed_with_sigkill_loses_no_receipt_it_confirmed(pg_url):
    store = await Store.open(pg_url)
    tenant = await make_tenant(store, "Магазин")
    node = CloudProcess(pg_url).start()
    shop = Shop(None, node.url, [tenant])
    confirmed: list[str] = []

    async def post(order: str) -> None:
        try:
            async with shop.http.post(node.url + "/api/fiscal/create-receipt.php",
                                      data=shop.form(tenant, order)) as response:
                if response.status == 201:
                    confirmed.append((await response.json())["receipt"]["id"])
        except aiohttp.ClientError:
            pass  # the node died before it answered: the shop does not know, and sends the same order again

    posting = asyncio.gather(*(post(f"o{i}") for i in range(300)))
    while len(confirmed) < 20:
        await asyncio.sleep(0.005)
    node.process.kill()  # SIGKILL: no cleanup, no goodbye
    await posting
    await shop.close()
    node.stop()
    stored = {str(r.uuid) for r in await store.list_receipts(tenant.id, limit=1000)}
    assert confirmed and set(confirmed) <= stored
    await store.close()


async def test_a_database_that_goes_away_is_a_503_to_retry_never_a_500(postgres_url):
    base = postgres_url  # any database of the server can create and drop another
    name = f"{sa.engine.make_url(postgres_url).database}_gone"
    await admin(base, f'CREATE DATABASE "{name}"')
    url = str(sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
    try:
        store = await Store.open(url)
        tenant = await make_tenant(store, "Магазин")
        await store.close()
        node = CloudProcess(url).start()
        shop = Shop(None, node.url, [tenant])
        assert (await shop.post_form(shop.form(tenant, "before")))[0] == 201
        await admin(base, f'DROP DATABASE "{name}" WITH (FORCE)')
        for attempt in range(2):
            status, answer, headers = await shop.post_form(shop.form(tenant, f"after-{attempt}"))
            assert status == 503 and answer["errorCode"] == "unavailable" and answer["retryable"] is True
            assert int(headers["Retry-After"]) >= 1
            status, answer, _ = await shop.api(tenant, "GET", "/api/v1/receipts")
            assert status == 503 and answer["error"]["code"] == "unavailable"
        await shop.close()
        assert "Traceback" not in node.stop()
    finally:
        await admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_device_token_rotated_on_one_node_is_refused_on_another_at_once(pg_url):
    """Node B remembers an account's device for a few seconds (its lookup cache, the intake's hot path); the
    account's note from the node where the token was rotated makes it forget at once: the old token is refused on
    B long before that cache would let it go. The rotation is made as node A makes it: the new hash stored, then
    the account's note (`<account> <node>` on kktbridge_account)."""
    from kktbridge.cloud.credentials import digest, new_token
    from kktbridge.cloud.notify import ACCOUNT
    from kktbridge.cloud.store.store import LOOKUP_TTL

    store = await Store.open(pg_url)
    tenant = await make_tenant(store, "Магазин")
    node = CloudProcess(pg_url, "--node", "node-b").start()
    shop = Shop(None, node.url, [tenant])
    try:
        status, body, _ = await shop.post_form(shop.form(tenant, "before"))
        assert status == 201, body  # node B now remembers the register's token
        assert await store.rotate_device_token(tenant.id, tenant.register.id, digest(new_token()))
        rotated = asyncio.get_running_loop().time()
        await store.notify(ACCOUNT, f"{tenant.id} node-a")
        for n in range(1000):
            status, body, _ = await shop.post_form(shop.form(tenant, f"after-{n}"))
            if status != 201:
                break
            await asyncio.sleep(0.01)
        waited = asyncio.get_running_loop().time() - rotated
        assert status == 400 and body["fields"][0]["path"] == "BIT_KKT_TOKEN", (status, body)
        assert body["errorRu"].count("нет кассы с таким токеном") == 1, body  # the problem named once
        assert waited < LOOKUP_TTL - 1, waited  # the note, not the cache's end
    finally:
        await shop.close()
        node.stop()
        await store.close()
