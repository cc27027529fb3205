"""The store on SQLite and on PostgreSQL: the schema its migrations make, accounts and their devices, and the
receipt queue: de-duplication, group commit, claims with leases, outcomes, expiry and retention."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from kktbridge.cloud.credentials import digest
from kktbridge.cloud.states import State
from kktbridge.cloud.store import AlreadyExists, NewReceipt, NotFound, Store, current_revision, head_revision, utcnow
from kktbridge.cloud.store.schema import metadata

from .support import make_tenant

LEASE = timedelta(seconds=30)


def new_receipt(tenant, order: str, *, request_hash: str = "h1", key: str | None = None, now=None,
                expires_in: timedelta = timedelta(hours=72)) -> NewReceipt:
    now = now or utcnow()
    return NewReceipt(uuid=uuid.uuid4(), account_id=tenant.id, driver_id=tenant.driver.id,
                      device_id=tenant.register.id, device_name=tenant.register.name, order_id=order,
                      idempotency_key=key, source="api", request_hash=request_hash, packet="[]", callback_success=None,
                      callback_failed=None, prog_url=None, created_at=now, expires_at=now + expires_in)


async def test_migrations_make_exactly_the_schema_the_code_describes(store):
    assert await current_revision(store.engine) == head_revision()
    async with store.engine.connect() as c:
        differences = await c.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    assert differences == []
    again = await Store.open(str(store.engine.url.render_as_string(hide_password=False)))  # migrating twice: a no-op
    await again.close()


async def test_accounts_users_drivers_and_devices(store):
    tenant = await make_tenant(store, "Магазин")
    assert [a.id for a in await store.accounts()] == [tenant.id]
    assert "integrity_code" not in repr(tenant.account) and tenant.account.integrity_code not in repr(tenant.account)
    account, device = await store.account_and_device(tenant.id, digest(tenant.token))
    assert account.id == tenant.id and device.id == tenant.register.id and device.role == "kkt"
    assert (await store.account_and_device(tenant.id, digest("0" * 32)))[1] is None
    assert await store.account_and_device(2**40, digest(tenant.token)) == (None, None)
    assert (await store.driver_by_key(digest(tenant.driver_key))).id == tenant.driver.id
    assert [d.id for d in await store.devices(tenant.id, driver_id=tenant.driver.id)] == [tenant.register.id,
                                                                                         tenant.terminal.id]
    with pytest.raises(AlreadyExists):
        await store.add_device(tenant.driver.id, "atol", "копия", digest(tenant.token))
    await tenant.add_user(store)
    with pytest.raises(AlreadyExists):
        await store.add_user(tenant.id, tenant.login, "x")
    with pytest.raises(NotFound):
        await store.add_driver(tenant.id + 100, "нет аккаунта", "k")
    with pytest.raises(NotFound):
        await store.add_device(999, "atol", "нет драйвера", "t")


async def test_the_same_key_gives_the_stored_receipt_and_another_request_under_it_a_conflict(store):
    tenant = await make_tenant(store, "Магазин")
    first = await store.submit(new_receipt(tenant, "order-1", key="key-1"))
    again = await store.submit(new_receipt(tenant, "order-1", key="key-1"))
    other_body = await store.submit(new_receipt(tenant, "order-1", request_hash="h2"))
    same_key_other_body = await store.submit(new_receipt(tenant, "order-2", key="key-1", request_hash="h3"))
    assert first.created and first.receipt.state is State.QUEUED
    assert not again.created and again.conflict is None and again.receipt.uuid == first.receipt.uuid
    assert other_body.conflict == "order_id" and other_body.receipt.request_hash == "h1"
    assert same_key_other_body.conflict == "idempotency_key" and same_key_other_body.receipt.uuid == first.receipt.uuid
    other = await make_tenant(store, "Другой")  # order ids belong to an account: another may use the same
    assert (await store.submit(new_receipt(other, "order-1"))).created


async def test_a_burst_is_committed_in_few_transactions_and_each_submitter_gets_its_own_answer(store):
    tenant = await make_tenant(store, "Магазин")
    commits = 0
    write = store._insert_receipts

    async def counting(batch):
        nonlocal commits
        commits += 1
        return await write(batch)

    store._receipts._write = counting
    burst = [new_receipt(tenant, f"o{i % 150}", request_hash="same" if i < 200 else "other") for i in range(300)]
    results = await asyncio.gather(*(store.submit(n) for n in burst))
    assert sum(r.created for r in results) == 150 and commits < 50
    stored = {r.receipt.order_id: r.receipt for r in results if r.created}
    for item, result in zip(burst, results):  # whichever writer committed an order first holds it
        assert result.receipt.uuid == stored[item.order_id].uuid
        assert result.conflict == (None if item.request_hash == stored[item.order_id].request_hash else "order_id")
    assert len(await store.list_receipts(tenant.id, limit=200)) == 150


async def test_a_row_that_breaks_a_constraint_fails_alone_not_its_batch(store):
    tenant = await make_tenant(store, "Магазин")
    good = [new_receipt(tenant, f"good-{i}") for i in range(5)]
    bad = new_receipt(tenant, "bad")
    bad = NewReceipt(**{**bad.__dict__, "device_id": 999_999})  # no such device: a foreign-key violation
    results = await asyncio.gather(*(store.submit(n) for n in [*good[:2], bad, *good[2:]]), return_exceptions=True)
    assert isinstance(results[2], Exception)
    assert all(r.created for i, r in enumerate(results) if i != 2)


async def test_claims_take_a_drivers_queued_receipts_in_order_and_only_once(store):
    tenant = await make_tenant(store, "Магазин")
    other = await make_tenant(store, "Другой")
    mine = [(await store.submit(new_receipt(tenant, f"o{i}"))).receipt for i in range(5)]
    await store.submit(new_receipt(other, "x"))
    now = utcnow()
    first = await store.claim(tenant.driver.id, node="node-a", lease=LEASE, limit=2, now=now)
    second = await store.claim(tenant.driver.id, node="node-b", lease=LEASE, limit=10, now=now)
    assert [r.uuid for r in first] == [r.uuid for r in mine[:2]]
    assert [r.uuid for r in second] == [r.uuid for r in mine[2:]]
    assert all(r.state is State.DELIVERED and r.lease_until == now + LEASE and r.deliveries == 1 for r in first)
    assert {r.leased_by for r in second} == {"node-b"} and second[0].delivered_at == now
    assert await store.claim(tenant.driver.id, node="node-a", lease=LEASE, limit=10) == []
    assert [r.order_id for r in await store.in_doubt(tenant.driver.id)] == ["o0", "o1", "o2", "o3", "o4"]


async def test_outcomes_follow_the_state_machine_and_a_final_state_never_changes(store):
    tenant = await make_tenant(store, "Магазин")
    for i in range(3):
        await store.submit(new_receipt(tenant, f"o{i}"))
    now = utcnow()
    a, b, c = await store.claim(tenant.driver.id, node="n", lease=LEASE, limit=3, now=now)
    result = [{"name": "чек", "type": "kktReceiptFiscalization", "success": "OK", "fdNumber_1040": 7}]
    done = await store.finish(a.uuid, State.DONE, driver_id=tenant.driver.id, result=result)
    assert done.state is State.DONE and done.result == result and done.finished_at and done.lease_until is None
    assert await store.finish(a.uuid, State.FAILED, driver_id=tenant.driver.id) is None  # final stays final
    other = await make_tenant(store, "Другой")
    assert await store.finish(b.uuid, State.DONE, driver_id=other.driver.id) is None  # not that driver's receipt
    lost = await store.lose_leases(now=now + LEASE + timedelta(seconds=1))
    assert {r.uuid for r in lost} == {b.uuid, c.uuid} and all(r.state is State.UNKNOWN and r.unknown_at for r in lost)
    error = {"code": "no_paper", "ru": "нет бумаги", "en": "out of paper", "retryable": True}
    failed = await store.finish(b.uuid, State.FAILED, driver_id=tenant.driver.id, error=error)
    assert failed.state is State.FAILED and failed.error == error
    with pytest.raises(ValueError):
        await store.finish(c.uuid, State.QUEUED, driver_id=tenant.driver.id)


async def test_a_receipt_nobody_fetched_expires_and_is_never_handed_out_after(store):
    tenant = await make_tenant(store, "Магазин")
    now = utcnow()
    old = (await store.submit(new_receipt(tenant, "old", now=now, expires_in=timedelta(hours=1)))).receipt
    fresh = (await store.submit(new_receipt(tenant, "fresh", now=now))).receipt
    later = now + timedelta(hours=2)
    assert [r.uuid for r in await store.claim(tenant.driver.id, node="n", lease=LEASE, limit=1, now=later)] == [
        fresh.uuid]  # past its expiry, `old` is not delivered even before the sweep
    expired = await store.expire_queued(now=later)
    assert [r.uuid for r in expired] == [old.uuid]
    record = await store.receipt(tenant.id, old.uuid)
    assert record.state is State.EXPIRED and record.state.status == "fail" and record.error["code"] == "expired"
    assert await store.expire_queued(now=later) == []


async def test_retention_deletes_finished_receipts_only(store):
    tenant = await make_tenant(store, "Магазин")
    now = utcnow()
    for order in ("finished", "waiting"):
        await store.submit(new_receipt(tenant, order, now=now, expires_in=timedelta(hours=1)))
    await store.claim(tenant.driver.id, node="n", lease=LEASE, limit=1, now=now)
    await store.lose_leases(now=now + LEASE * 2)  # "finished" → unknown: in doubt, never deleted
    await store.expire_queued(now=now + timedelta(hours=2))  # "waiting" → expired at now + 2 h
    assert await store.purge_finished(before=now + timedelta(days=365)) == 1
    assert [r.order_id for r in await store.list_receipts(tenant.id)] == ["finished"]


async def test_listing_filters_and_pages_within_one_account(store):
    tenant = await make_tenant(store, "Магазин")
    other = await make_tenant(store, "Другой")
    for i in range(7):
        await store.submit(new_receipt(tenant, f"o{i}"))
        await store.submit(new_receipt(other, f"o{i}"))
    await store.claim(tenant.driver.id, node="n", lease=LEASE, limit=2)
    page = await store.list_receipts(tenant.id, limit=3)
    rest = await store.list_receipts(tenant.id, before_id=page[-1].id, limit=10)
    assert [r.order_id for r in page + rest] == [f"o{i}" for i in range(6, -1, -1)]
    assert {r.account_id for r in page + rest} == {tenant.id}
    assert [r.order_id for r in await store.list_receipts(tenant.id, states=[State.DELIVERED])] == ["o1", "o0"]
    assert await store.list_receipts(tenant.id, device_id=other.register.id) == []
    assert await store.receipt(tenant.id, (await store.receipt_by_order(other.id, "o1")).uuid) is None


async def test_a_waiting_request_wakes_when_its_receipt_finishes(store):
    tenant = await make_tenant(store, "Магазин")
    queued = (await store.submit(new_receipt(tenant, "o"))).receipt
    waiting = asyncio.ensure_future(store.wait_final(tenant.id, queued.uuid, timeout=30, poll=30))
    await asyncio.sleep(0.05)
    (claimed,) = await store.claim(tenant.driver.id, node="n", lease=LEASE)
    await store.finish(claimed.uuid, State.DONE, driver_id=tenant.driver.id, result=[])
    record = await asyncio.wait_for(waiting, 10)  # woken, not polled: the poll is 30 s
    assert record.state is State.DONE
    other = (await store.submit(new_receipt(tenant, "o2"))).receipt
    assert (await store.wait_final(tenant.id, other.uuid, timeout=0.2, poll=0.05)).state is State.QUEUED
    assert await store.wait_final(tenant.id + 1, other.uuid, timeout=0.2) is None  # another account's: nothing
