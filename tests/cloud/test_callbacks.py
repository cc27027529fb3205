"""Callbacks to the shop through real HTTP: receivers are aiohttp servers in the test, the cloud a live service (or
two `kktbridge cloud` processes on one PostgreSQL). Receipts are finished the way the driver link finishes them
(`store.claim` then `store.finish`), so these tests do not need a linked driver."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from kktbridge.cloud import CloudConfig, CloudService, State
from kktbridge.cloud.callbacks import CallbackWorker
from kktbridge.cloud.ssrf import PinnedResolver, Refused, Target, address_problem, resolve, submit_problem
from kktbridge.cloud.store.callbacks import CallbackJob

from .support import CloudProcess, Shop, make_tenant, receipt_packet

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cloud.md"
RESULT = [{"name": "чек", "type": "kktReceiptFiscalization", "success": "OK: чек №7", "fdNumber_1040": 7,
           "fiscalSign_1077": "2918241905", "qr": "t=20261123T1904&s=11.00&fn=9999078900012345&i=7&fp=2918241905&n=1"}]


def docs_verify():
    """The receiver's check exactly as docs/cloud.md prints it."""
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"### The receiver's check.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 - our own documentation's code
    return namespace["verify"]


class Receiver:
    """A shop's callback endpoint: records every request; `plan[path]` lists the statuses to answer with first."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.plan: dict[str, list[int]] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.got.append((request.path, dict(request.headers), await request.read()))
        planned = self.plan.get(request.path)
        status = planned.pop(0) if planned else 200
        if status == 302:
            return web.Response(status=302, headers={"Location": "/ok"})
        return web.Response(status=status, text="ok" if status < 300 else "not today")

    def at(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for p, headers, body in self.got if p == path]

    async def wait(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"{len(self.got)} of {count} callbacks arrived: {self.got}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def receiver():
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@asynccontextmanager
async def cloud_with(store, **options):
    """The service over `store` with these settings, and a shop with two accounts."""
    config = CloudConfig(**{"host": "127.0.0.1", "port": 0, "database_url": "sqlite://", **options})
    service = CloudService(config, store)
    await service.start()
    shop = await Shop.create(service)
    try:
        yield shop
    finally:
        await shop.close()
        await service.stop()


async def finish(shop: Shop, tenant, target: State = State.DONE, result=RESULT, error=None) -> None:
    """What the driver link does with a receipt: claim it for the driver, then report its outcome."""
    claimed = await shop.store.claim(tenant.driver.id, node="test", lease=timedelta(minutes=1), limit=100)
    assert claimed, "nothing queued to finish"
    for record in claimed:
        assert await shop.store.finish(record.uuid, target, driver_id=tenant.driver.id, result=result, error=error)


async def history(shop: Shop, tenant, receipt_id: str) -> list[dict]:
    status, body, _ = await shop.api(tenant, "GET", f"/api/v1/receipts/{receipt_id}/callbacks")
    assert status == 200, body
    return body["callbacks"]


async def until(predicate, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_both_apis_get_signed_callbacks_that_the_docs_check_verifies(store, receiver):
    verify = docs_verify()
    async with cloud_with(store, allow_private_callbacks=True) as shop:
        a = shop.a
        status, answer, _ = await shop.post_form(shop.form(a, "form-1", success=receiver.url + "/ok",
                                                           failed=receiver.url + "/failed"))
        assert status == 201, answer
        form_id = answer["receipt"]["id"]
        status, submitted, _ = await shop.submit(a, "api-1", json.loads(receipt_packet()),
                                                 webhook_url=receiver.url + "/hook")
        assert status == 201 and submitted["callbacks"]["webhook"] == receiver.url + "/hook", submitted
        await finish(shop, a)
        await receiver.wait(2)
        (headers, body), = receiver.at("/ok")
        assert verify(body, headers["X-Kktbridge-Timestamp"], headers["X-Kktbridge-Signature"],
                      a.account.webhook_secret)
        assert not verify(body + b" ", headers["X-Kktbridge-Timestamp"], headers["X-Kktbridge-Signature"],
                          a.account.webhook_secret)
        assert not verify(body, headers["X-Kktbridge-Timestamp"], headers["X-Kktbridge-Signature"],
                          shop.b.account.webhook_secret)
        fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert fields["BIT_ORDER_ID"] == "form-1" and fields["result"] == "true" and fields["state"] == "done"
        assert fields["receipt_id"] == form_id and json.loads(fields["data"])[0]["fdNumber_1040"] == 7
        assert headers["X-Kktbridge-Receipt"] == form_id and headers["X-Kktbridge-Event"] == "success"
        (headers, body), = receiver.at("/hook")
        assert verify(body, headers["X-Kktbridge-Timestamp"], headers["X-Kktbridge-Signature"],
                      a.account.webhook_secret)
        view = json.loads(body)
        assert view["id"] == submitted["id"] and view["state"] == "done" and view["payload"]["fiscal_document_number"] == 7
        assert not receiver.at("/failed")
        (callback,) = await until(lambda: _delivered(shop, a, form_id))
        assert callback["kind"] == "success" and callback["attempts"] == 1 and callback["nextAt"] is None
        assert callback["tries"][0]["status"] == 200 and callback["tries"][0]["error"] is None


async def _delivered(shop, tenant, receipt_id):
    found = await history(shop, tenant, receipt_id)
    return found if found and all(c["state"] == "delivered" for c in found) else None


async def test_a_failed_receipt_goes_to_the_failed_url_and_an_expired_one_too(store, receiver):
    async with cloud_with(store, allow_private_callbacks=True, expire_after=timedelta(seconds=1),
                          sweep_every=0.1) as shop:
        a = shop.a
        for order in ("bad-1", "late-1"):
            status, answer, _ = await shop.post_form(shop.form(a, order, success=receiver.url + "/ok",
                                                               failed=receiver.url + "/failed"))
            assert status == 201, answer
        claimed = await shop.store.claim(a.driver.id, node="test", lease=timedelta(minutes=1), limit=1)
        error = {"code": "paper", "ru": "нет бумаги", "en": "out of paper", "retryable": False}
        await shop.store.finish(claimed[0].uuid, State.FAILED, driver_id=a.driver.id, error=error)
        await receiver.wait(2)
        assert not receiver.at("/ok")
        states = sorted(parse_qs(body.decode())["state"][0] for _, body in receiver.at("/failed"))
        assert states == ["expired", "failed"]
        data = [json.loads(parse_qs(body.decode())["data"][0]) for _, body in receiver.at("/failed")]
        assert all(d["result"] is False for d in data) and {d["errorCode"] for d in data} == {"paper", "expired"}


async def test_a_receiver_that_fails_at_first_is_retried_and_every_try_is_shown(store, receiver):
    receiver.plan["/hook"] = [500, 503]
    async with cloud_with(store, allow_private_callbacks=True, callback_backoff=0.05) as shop:
        a = shop.a
        _, submitted, _ = await shop.submit(a, "retry-1", json.loads(receipt_packet()),
                                            webhook_url=receiver.url + "/hook")
        await finish(shop, a)
        (callback,) = await until(lambda: _delivered(shop, a, submitted["id"]))
        assert [t["status"] for t in callback["tries"]] == [500, 503, 200]
        assert callback["tries"][0]["error"] == "HTTP 500: not today" and callback["attempts"] == 3
        assert callback["lastError"] is None and callback["deliveredAt"] is not None
        assert len(receiver.at("/hook")) == 3
        ids = {headers["X-Kktbridge-Delivery"] for headers, _ in receiver.at("/hook")}
        assert ids == {str(callback["id"])}  # the same delivery id on every try
        status, body, _ = await shop.api(a, "POST", f"/api/v1/receipts/{submitted['id']}/callbacks/resend")
        assert status == 200 and body == {"resent": 1}
        await receiver.wait(4)
        (callback,) = await until(lambda: _delivered(shop, a, submitted["id"]))
        assert callback["attempts"] == 4
        # another account sees nothing of it
        status, body, _ = await shop.api(shop.b, "GET", f"/api/v1/receipts/{submitted['id']}/callbacks")
        assert status == 404
        status, body, _ = await shop.api(shop.b, "POST", f"/api/v1/receipts/{submitted['id']}/callbacks/resend")
        assert status == 404
        status, body, _ = await shop.api(a, "GET", f"/api/v1/receipts/{uuid.uuid4()}/callbacks")
        assert status == 404 and body["error"]["code"] == "not_found"


async def test_a_receiver_that_never_answers_well_is_given_up(store, receiver):
    receiver.plan["/hook"] = [500] * 100
    async with cloud_with(store, allow_private_callbacks=True, callback_backoff=0.02,
                          callback_retry_for=timedelta(seconds=0.3)) as shop:
        _, submitted, _ = await shop.submit(shop.a, "never-1", json.loads(receipt_packet()),
                                            webhook_url=receiver.url + "/hook")
        await finish(shop, shop.a)

        async def gave_up():
            found = await history(shop, shop.a, submitted["id"])
            return found if found[0]["state"] == "gave_up" else None

        (callback,) = await until(gave_up)
        assert callback["attempts"] >= 2 and callback["lastError"].startswith("HTTP 500")
        assert callback["nextAt"] is None and len(callback["tries"]) == callback["attempts"]


async def test_a_redirect_is_not_followed(store, receiver):
    receiver.plan["/moved"] = [302]
    async with cloud_with(store, allow_private_callbacks=True, callback_backoff=3600) as shop:
        _, submitted, _ = await shop.submit(shop.a, "moved-1", json.loads(receipt_packet()),
                                            webhook_url=receiver.url + "/moved")
        await finish(shop, shop.a)

        async def tried():
            found = await history(shop, shop.a, submitted["id"])
            return found if found[0]["attempts"] else None

        (callback,) = await until(tried)
        assert callback["state"] == "pending" and callback["tries"][0]["status"] == 302
        assert "not followed" in callback["lastError"] and callback["nextAt"] is not None
        await asyncio.sleep(0.2)
        assert len(receiver.at("/moved")) == 1 and not receiver.at("/ok")


async def test_private_addresses_are_refused_unless_allowed(store, receiver):
    async with cloud_with(store) as shop:
        a = shop.a
        for url in (receiver.url + "/ok", "http://localhost:8080/ok", "http://[::ffff:127.0.0.1]:8080/",
                    "http://10.0.0.5:8080/", "http://169.254.169.254/latest/meta-data/", "https://shop.example.ru:22/"):
            status, answer, _ = await shop.post_form(shop.form(a, "p-1", success=url))
            assert status == 400 and answer["fields"][0]["path"] == "BIT_CALLBACK_SUCCESS", (url, answer)
            assert answer["fields"][0]["code"] == "callback_refused", answer
            status, body, _ = await shop.submit(a, "p-2", json.loads(receipt_packet()), webhook_url=url)
            assert status == 400 and body["error"]["fields"][0]["path"] == "webhook_url", (url, body)
        # A URL accepted earlier (the config allowed it then) is refused at delivery, and says why.
        from kktbridge.bitapi import loads  # noqa: PLC0415
        from kktbridge.cloud.api import API_NAMES  # noqa: PLC0415
        from kktbridge.cloud.store import utcnow  # noqa: PLC0415
        from kktbridge.cloud.submission import ReceiptRequest, prepare  # noqa: PLC0415

        account, device = a.account, a.register
        new = prepare(ReceiptRequest(account=account, device=device, order_id="old-1", token=a.token,
                                     commands=loads(receipt_packet()), source="api", names=API_NAMES,
                                     webhook_url=receiver.url + "/hook"), now=utcnow(), expire_after=timedelta(hours=1))
        await shop.store.submit(new)
        await finish(shop, a)

        async def refused():
            found = await history(shop, a, str(new.uuid))
            return found if found and found[0]["state"] == "refused" else None

        (callback,) = await until(refused)
        assert "loopback" in callback["lastError"] and callback["tries"][0]["status"] is None
        assert "allow_private_callbacks" in callback["lastError"]
        await asyncio.sleep(0.1)
        assert receiver.got == []


@pytest.mark.parametrize("address, refused", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.10", "private"),
    ("172.16.5.4", "private"), ("100.64.0.1", "public"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("240.0.0.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("64:ff9b::a9fe:a9fe", "link-local"),
    ("2002:7f00:1::", "loopback"), ("fc00::1", "private"), ("198.51.100.7", "private"), ("8.8.8.8", None),
    ("2a00:1450:4010:c05::64", None), ("::ffff:8.8.8.8", None),
])
def test_every_kind_of_non_public_address_is_refused(address, refused):
    problem = address_problem(ipaddress.ip_address(address))
    if refused is None:
        assert problem is None, problem
    else:
        assert problem is not None and refused in problem[1], problem


def test_submit_time_rules_need_no_dns():
    assert submit_problem("u", "https://shop.example.ru/cb", allow_private=False) is None
    assert submit_problem("u", "http://shop.example.ru:8080/cb", allow_private=False) is None
    assert submit_problem("u", "http://127.0.0.1:8080/cb", allow_private=True) is None
    for url in ("ftp://shop.example.ru/", "http://shop.example.ru:25/", "http://a.localhost:8080/",
                "http://[::1]:8080/", "http://2130706433:8080/"):
        problem = submit_problem("u", url, allow_private=False)
        assert problem is not None and problem.path == "u" and problem.ru and problem.en, url
    assert submit_problem("u", "http://shop.example.ru:22/", allow_private=True) is not None  # ports always


async def test_a_name_is_resolved_once_and_the_post_goes_to_the_checked_address(store, receiver):
    """DNS rebinding: the worker connects to the addresses the check saw, and never asks DNS again (here the name
    does not resolve at all, so any second lookup would fail the POST)."""
    with pytest.raises(Refused):
        await resolve("http://localhost:8080/", allow_private=False)
    target = await resolve("http://localhost:8080/", allow_private=True)
    assert set(target.addresses) <= {"127.0.0.1", "::1"} and target.addresses
    port = int(receiver.url.rsplit(":", 1)[1])
    import yarl  # noqa: PLC0415

    pinned = Target(yarl.URL(f"http://rebind.invalid:{port}/pinned"), "rebind.invalid", port, ("127.0.0.1",))
    with pytest.raises(OSError):
        await PinnedResolver(pinned).resolve("other.invalid", port)
    config = CloudConfig(database_url="sqlite://", allow_private_callbacks=True)
    worker = CallbackWorker(store, config, "test")
    job = CallbackJob(id=1, kind="webhook", url=str(pinned.url), body="{}", content_type="application/json",
                      attempts=0, created_at=None, resent_at=None, receipt_uuid=uuid.uuid4(), order_id="x",
                      secret="s")
    status, error = await worker._post(job, pinned)
    assert (status, error) == (200, None)
    assert receiver.at("/pinned")[0][0]["Host"] == f"rebind.invalid:{port}"


async def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery():
    host = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, 8080, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip(f"this machine's name {host} does not resolve")
    if all(address_problem(ipaddress.ip_address(a.split("%")[0])) is None for a in addresses):
        pytest.skip(f"this machine's name resolves to public addresses only: {addresses}")
    assert submit_problem("u", f"http://{host}:8080/", allow_private=False) is None  # needs DNS: not at submit
    with pytest.raises(Refused) as refused:
        await resolve(f"http://{host}:8080/", allow_private=False)
    assert host in refused.value.en


async def test_two_nodes_on_one_postgresql_deliver_each_callback_exactly_once(pg_url, receiver):
    from kktbridge.cloud import Store  # noqa: PLC0415

    store = await Store.open(pg_url)
    tenant = await make_tenant(store, "Магазин")
    nodes = [CloudProcess(pg_url, "--allow-private-callbacks").start() for _ in range(2)]
    try:
        shop = Shop(None, nodes[0].url, [tenant])
        shop.store = store
        count = 40
        for i in range(count):
            status, answer, _ = await shop.post_form(shop.form(tenant, f"two-{i}", receipt_packet(),
                                                               success=receiver.url + "/ok"))
            assert status == 201, answer
        await shop.close()
        await finish(shop, tenant)  # in this process: the nodes find the rows by their poll
        await receiver.wait(count)
        await asyncio.sleep(1.5)  # a second poll of both nodes: nothing more may come
        receipts = [headers["X-Kktbridge-Receipt"] for headers, _ in receiver.at("/ok")]
        assert len(receipts) == count and len(set(receipts)) == count
        rows = await store.callback_history(tenant.id, uuid.UUID(receipts[0]))
        assert rows[0].state == "delivered" and rows[0].attempts == 1
    finally:
        logs = [node.stop() for node in nodes]
        await store.close()
    for log in logs:
        assert "Traceback" not in log, log
    delivered_by = [log.count(", delivered") for log in logs]
    assert sum(delivered_by) == count, delivered_by
