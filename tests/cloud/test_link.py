"""The cloud ↔ driver link through real processes: the cloud, the driver and an ATOL emulator, each its own process.
A receipt posted by the vendor's form reaches the register through the link and comes back done, with the FD
number and fiscal sign; one document in the emulator's journal."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from bench.shop import wait_until
from kktbridge.cloud import CloudConfig, CloudService
from kktbridge.cloud.store import Store
from kktbridge.cloud.store.schema import accounts, receipts
from kktbridge.emulators.control import send_control
from kktbridge.emulators.fncore import read_journal

from .support import CloudProcess, Shop, Tenant, make_tenant, receipt_packet



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DriverProcess:
    """`kktbridge driver` with a config of its own; its log goes to a file."""

    def __init__(self, config: Path, port: int) -> None:
        self.config, self.port = config, port
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(mode="w+")

    def start(self) -> DriverProcess:
        self.process = subprocess.Popen([sys.executable, "-m", "kktbridge", "driver", "--config", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=self._log)
        return self

    async def status(self) -> dict | None:
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{self.port}/status",
                                       timeout=aiohttp.ClientTimeout(total=5)) as response:
                    return await response.json()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return None

    async def until_linked(self, timeout: float = 30) -> dict:
        """Wait until the driver's status says its cloud link is online."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the driver exited: {self.log()}")
            status = await self.status()
            if status and status["cloud"] and status["cloud"]["state"] == "online":
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"the driver never linked: {await self.status()} {self.log()}")

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def driver_config(path: Path, tenant: Tenant, emulator_tcp: str, urls: list[str], *, via: str = "auto") -> int:
    port = free_port()
    path.mkdir(parents=True, exist_ok=True)
    (path / "driver.toml").write_text(f"""
[driver]
listen = "127.0.0.1:{port}"
data_dir = "{path.as_posix()}"

[[devices]]
name = "Касса"
kind = "atol"
token = "{tenant.token}"
tcp = "{emulator_tcp}"
vat = 6

[cloud]
url = {json.dumps(urls)}
key = "{tenant.driver_key}"
via = "{via}"
""", encoding="utf-8")
    return port


async def new_tenant(db: str) -> Tenant:
    store = await Store.open(db)
    try:
        return await make_tenant(store, "Магазин")
    finally:
        await store.close()


def receipts_in(journal: Path) -> list[dict]:
    return [r for r in read_journal(journal) if r["doc"] == "receipt"] if journal.exists() else []


async def wait_done(shop: Shop, tenant: Tenant, receipt_id: str, timeout: int = 20) -> dict:
    status, body, _ = await shop.api(tenant, "GET", f"/api/v1/receipts/{receipt_id}?wait={timeout}")
    assert status == 200, body
    return body


class Rig:
    """A cloud process, an ATOL emulator and a driver linked to the cloud."""

    def __init__(self, tmp: Path, emulator_process, db: str | None = None, *, cloud_args: tuple[str, ...] = (),
                 emulator_args: tuple[str, ...] = (), via: str = "auto") -> None:
        self.tmp, self.db = tmp, db or f"sqlite:///{tmp / 'cloud.sqlite3'}"
        self.journal = tmp / "atol.jsonl"
        self.emulator = emulator_process("atol", "--tcp", "127.0.0.1:0", "--state", str(tmp / "fn.json"),
                                         "--journal", str(self.journal), "--control", "127.0.0.1:0", "--no-fsync",
                                         *emulator_args)
        self.cloud_args, self.via = cloud_args, via
        self.clouds: list[CloudProcess] = []

    async def start(self) -> Rig:
        self.tenant = await new_tenant(self.db)
        self.clouds.append(CloudProcess(self.db, "--heartbeat", "0.2", *self.cloud_args).start())
        port = driver_config(self.tmp / "driver", self.tenant, self.emulator.info["tcp"], [self.clouds[0].url],
                             via=self.via)
        self.driver = DriverProcess(self.tmp / "driver" / "driver.toml", port).start()
        await self.driver.until_linked()
        self.shop = Shop(None, self.clouds[0].url, [self.tenant])
        return self

    async def post(self, order: str) -> str:
        status, body, _ = await self.shop.post_form(self.shop.form(self.tenant, order))
        assert status == 201, body
        return body["receipt"]["id"]

    async def close(self) -> None:
        await self.shop.close()
        self.driver.stop()
        for cloud in self.clouds:
            cloud.stop()


async def test_a_form_receipt_reaches_the_register_through_the_link_and_comes_back_done(db_url, tmp_path,
                                                                                        emulator_process):
    rig = await Rig(tmp_path, emulator_process, db_url).start()
    try:
        status = await rig.driver.status()
        assert status["cloud"]["via"] == "ws" and status["cloud"]["url"] == rig.clouds[0].url
        started = time.monotonic()
        receipt_id = await rig.post("order-1")
        body = await wait_done(rig.shop, rig.tenant, receipt_id)
        elapsed = time.monotonic() - started
        assert body["state"] == "done", body
        result = body["result"][0]
        assert "success" in result and result["fdNumber_1040"], result
        receipts = receipts_in(rig.journal)
        assert len(receipts) == 1
        assert body["payload"]["fiscal_document_number"] == receipts[0]["fd"], body["payload"]
        assert body["payload"]["fiscal_document_attribute"]
        assert elapsed < 5, elapsed  # pushed, not polled every few minutes
        status = await rig.driver.status()
        assert status["cloud"]["received"] == 1 and status["cloud"]["reported"] == 1
        assert status["cloud"]["state"] == "online" and status["cloud"]["lastError"] is None
    finally:
        await rig.close()


async def emulator_printing(rig: Rig, timeout: float = 20) -> None:
    """Wait until the register is in the middle of printing a document."""
    host, port = rig.emulator.info["control"].rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await send_control(host, int(port), {})).get("printing"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the register never started printing")


async def set_faults(rig: Rig, **faults) -> None:
    host, port = rig.emulator.info["control"].rsplit(":", 1)
    assert (await send_control(host, int(port), {"faults": faults}))["ok"]


async def until_receipts(rig: Rig, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        receipts = receipts_in(rig.journal)
        if len(receipts) >= count:
            return receipts
        await asyncio.sleep(0.02)
    raise AssertionError(f"the register holds {len(receipts_in(rig.journal))} receipts, not {count}")


async def receipt_state(shop: Shop, tenant: Tenant, receipt_id: str) -> dict:
    status, body, _ = await shop.api(tenant, "GET", f"/api/v1/receipts/{receipt_id}")
    assert status == 200, body
    return body


async def until_state(shop: Shop, tenant: Tenant, receipt_id: str, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await receipt_state(shop, tenant, receipt_id)
        if body["state"] == state:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"receipt {receipt_id} never became {state}: {body['state']}")


async def test_the_driver_killed_mid_receipt_leaves_it_unknown_and_its_report_settles_it_done(db_url, tmp_path,
                                                                                              emulator_process):
    rig = await Rig(tmp_path, emulator_process, db_url, cloud_args=("--lease", "1")).start()
    try:
        assert (await wait_done(rig.shop, rig.tenant, await rig.post("warm-up")))["state"] == "done"  # shift open
        await set_faults(rig, print_latency=1.5)
        receipt_id = await rig.post("order-killed")
        await emulator_printing(rig)
        rig.driver.kill()  # SIGKILL while the register prints the receipt
        body = await until_state(rig.shop, rig.tenant, receipt_id, "unknown")  # the lease ran out: never resent
        assert body["status"] == "wait" and body["unknown_at"] and body["result"] is None
        await until_receipts(rig, 2)  # the register finished it alone
        rig.driver.start()
        body = await wait_done(rig.shop, rig.tenant, receipt_id)
        assert body["state"] == "done", body
        receipts = receipts_in(rig.journal)
        assert len(receipts) == 2  # settled from the register, not printed again
        assert body["payload"]["fiscal_document_number"] == receipts[1]["fd"]
    finally:
        await rig.close()


async def test_a_receipt_its_register_cannot_print_now_waits_for_it_and_the_next_one_waits_behind(tmp_path,
                                                                                                emulator_process):
    """Out of paper at night: a cloud receipt is neither failed nor lost; it waits in the driver (shown on its
    status, and again after the driver was killed and restarted) and prints once the paper is in, and the
    register's next receipt prints after it, in order, once."""
    rig = await Rig(tmp_path, emulator_process).start()
    try:
        assert (await wait_done(rig.shop, rig.tenant, await rig.post("warm-up")))["state"] == "done"
        await set_faults(rig, no_paper=True)
        ids = []
        for n in (2, 3):
            status, body, _ = await rig.shop.post_form(rig.shop.form(rig.tenant, f"night-{n}",
                                                                     receipt_packet(f"{n}.00")))
            assert status == 201, body
            ids.append(body["receipt"]["id"])

        async def waiting() -> list[dict]:
            async def shown() -> list[dict]:
                return ((await rig.driver.status()) or {}).get("cloud", {}).get("waiting") or []
            return await wait_until(shown, "a receipt waits for the register", every=0.05)

        shown = await waiting()
        assert [(w["id"], w["code"]) for w in shown] == [(ids[0], "no_paper")] and "нет бумаги" in shown[0]["ru"]
        rig.driver.kill()  # a waiting receipt outlives the driver: sent again on reconnect, it waits on
        rig.driver.start()
        await rig.driver.until_linked()
        assert [w["id"] for w in await waiting()] == [ids[0]]
        assert {(await receipt_state(rig.shop, rig.tenant, i))["state"] for i in ids} <= {"queued", "delivered"}
        assert len(receipts_in(rig.journal)) == 1
        await set_faults(rig, no_paper=False)  # the paper is in
        for receipt_id in ids:
            assert (await wait_done(rig.shop, rig.tenant, receipt_id, timeout=30))["state"] == "done"
        assert [r["total"] for r in receipts_in(rig.journal)] == [1100, 200, 300]
        assert ((await rig.driver.status()) or {})["cloud"]["waiting"] == []
    finally:
        await rig.close()


async def test_the_cloud_reads_a_receipt_with_the_defaults_its_register_s_driver_reported(tmp_path,
                                                                                         emulator_process):
    """A receipt without a VAT rate: the linked register's config has `vat = 6`, which the driver reports, so the
    cloud takes the receipt and the register prints it with that rate; for a register whose driver never
    reported, the same receipt is refused at submit time, naming the field."""
    from kktbridge.cloud.provision import add_device

    rig = await Rig(tmp_path, emulator_process).start()
    try:
        store = await Store.open(rig.db, migrate=False)
        try:
            async def reported():
                device = await store.device(rig.tenant.id, rig.tenant.register.id)
                return device if device.status and device.status.get("defaults") else None

            device = await wait_until(reported, "the driver reports the register's defaults", every=0.05)
            assert device.status["defaults"]["vat"] == 6 and device.status["strict"] is False, device.status
            _, unlinked = await add_device(store, rig.tenant.driver.id, "atol")
        finally:
            await store.close()
        no_vat = ('[{"name": "чек", "type": "kktReceiptFiscalization", "data": {"purchases": [{"productName_1030": '
                  '"товар", "price_1079": 7.00, "qty_1023": 1}], "payments": {"cash_1031": 7.00}, '
                  '"receiptType_1054": 1, "taxationType_1055": 1}}]')
        status, body, _ = await rig.shop.post_form(rig.shop.form(rig.tenant, "no-vat", no_vat, token=unlinked))
        assert status == 400 and any(f["path"].endswith("purchases[0].tax_1199") for f in body["fields"]), body
        status, body, _ = await rig.shop.post_form(rig.shop.form(rig.tenant, "no-vat", no_vat))
        assert status == 201, body
        assert (await wait_done(rig.shop, rig.tenant, body["receipt"]["id"]))["state"] == "done"
        (printed,) = [r for r in receipts_in(rig.journal) if r["total"] == 700]
        assert [item["vat"] for item in printed["items"]] == [6], printed["items"]
    finally:
        await rig.close()


async def test_a_driver_offline_for_a_while_catches_up_in_order_and_reports_its_devices(db_url, tmp_path,
                                                                                         emulator_process):
    rig = await Rig(tmp_path, emulator_process, db_url).start()
    try:
        rig.driver.stop()
        ids = []
        for n in range(1, 6):  # queued while the driver is away
            status, body, _ = await rig.shop.post_form(rig.shop.form(rig.tenant, f"late-{n}",
                                                                     receipt_packet(f"{n}.00")))
            assert status == 201, body
            ids.append(body["receipt"]["id"])
        assert {(await receipt_state(rig.shop, rig.tenant, i))["state"] for i in ids} == {"queued"}
        rig.driver.start()
        for receipt_id in ids:
            assert (await wait_done(rig.shop, rig.tenant, receipt_id))["state"] == "done"
        totals = [r["total"] for r in receipts_in(rig.journal)]
        assert totals == [100, 200, 300, 400, 500], totals  # in the order they were submitted, once each
        store = await Store.open(rig.db, migrate=False)
        try:
            for _ in range(100):
                device = await store.device(rig.tenant.id, rig.tenant.register.id)
                driver = await store.driver(rig.tenant.id, rig.tenant.driver.id)
                if device.status and device.status["shiftOpen"]:
                    break
                await asyncio.sleep(0.05)
            assert device.status["online"] is True and device.status["shiftOpen"] is True, device.status
            assert device.status["fnNumber"] and device.status["paper"] is True
            assert device.status["ofdUnsent"] == 0  # the emulator's OFD takes every document
            assert device.status["fnExpiry"] == "2028-06-30"  # the emulated FN's validity (0xA4 0x32)
            assert device.status_at is not None
            assert driver.link == "ws" and driver.node and driver.version and driver.seen_at
            rig.driver.stop()
            for _ in range(100):
                driver = await store.driver(rig.tenant.id, rig.tenant.driver.id)
                if driver.link is None:
                    break
                await asyncio.sleep(0.05)
            assert driver.link is None  # offline once its link closed
        finally:
            await store.close()
    finally:
        await rig.close()


async def test_the_long_poll_fallback_carries_receipts_results_and_status(db_url, tmp_path, emulator_process):
    rig = await Rig(tmp_path, emulator_process, db_url, via="poll").start()
    try:
        assert (await rig.driver.status())["cloud"]["via"] == "poll"
        started = time.monotonic()
        first = await rig.post("poll-1")
        body = await wait_done(rig.shop, rig.tenant, first)
        assert body["state"] == "done" and body["payload"]["fiscal_document_number"], body
        assert time.monotonic() - started < 5  # the held poll answers at once, not at its next turn
        ids = [await rig.post(f"poll-{n}") for n in range(2, 5)]
        for receipt_id in ids:
            assert (await wait_done(rig.shop, rig.tenant, receipt_id))["state"] == "done"
        assert len(receipts_in(rig.journal)) == 4
        store = await Store.open(rig.db, migrate=False)
        try:
            driver = await store.driver(rig.tenant.id, rig.tenant.driver.id)
            assert driver.link == "poll"
        finally:
            await store.close()
        status = await rig.driver.status()
        assert status["cloud"]["received"] == 4 and status["cloud"]["reported"] == 4
    finally:
        await rig.close()


async def preflight(port: int, origin: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.options(f"http://127.0.0.1:{port}/", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST"}) as response:
            return response.status


async def test_origins_set_in_the_cabinet_reach_the_linked_driver_at_once(db_url, tmp_path, emulator_process):
    """The cabinet changes an account's origins on node B; the driver linked to node A lets that site in."""
    emulator = emulator_process("atol", "--tcp", "127.0.0.1:0", "--no-fsync")
    nodes = []
    for name in ("a", "b"):
        store = await Store.open(db_url)
        service = CloudService(CloudConfig(host="127.0.0.1", port=0, database_url=db_url, node=name, heartbeat=0.2),
                               store)
        await service.start()
        nodes.append(service)
        if db_url.startswith("sqlite"):
            break  # SQLite is one node
    tenant = await make_tenant(nodes[0].store, "Магазин")
    port = driver_config(tmp_path / "driver", tenant, emulator.info["tcp"], [nodes[0].url])
    driver = DriverProcess(tmp_path / "driver" / "driver.toml", port).start()
    try:
        status = await driver.until_linked()
        assert status["cloud"]["origins"] == []
        site = "https://shop.example.ru"
        assert await preflight(port, site) == 403
        cabinet = nodes[-1].store
        async with cabinet.engine.begin() as c:
            await c.execute(accounts.update().where(accounts.c.id == tenant.id)
                            .values(allowed_origins=json.dumps([site, "https://m.shop.example.ru"])))
        await cabinet.account_changed(tenant.id)
        for _ in range(200):
            status = await driver.status()
            if status["cloud"]["origins"]:
                break
            await asyncio.sleep(0.02)
        assert status["cloud"]["origins"] == [site, "https://m.shop.example.ru"]
        assert await preflight(port, site) == 204  # in effect, no restart
        assert await preflight(port, "https://other.example.ru") == 403
    finally:
        driver.stop()
        for service in nodes:
            await service.stop()
            await service.store.close()


async def start_proxy_without_websocket(target: str):
    """An HTTP proxy in front of the cloud that refuses WebSocket upgrades, as some corporate proxies do."""
    from aiohttp import web

    http = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return web.Response(status=403, text="WebSocket is not allowed here")
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "transfer-encoding", "connection")}
        async with http.request(request.method, target + request.path_qs, data=await request.read(),
                                headers=headers) as answer:
            return web.Response(body=await answer.read(), status=answer.status,
                                content_type=answer.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()

    async def close() -> None:
        await runner.cleanup()
        await http.close()

    return f"http://127.0.0.1:{runner.addresses[0][1]}", close


async def test_auto_falls_back_to_long_polling_where_websocket_is_blocked(tmp_path, emulator_process):
    emulator = emulator_process("atol", "--tcp", "127.0.0.1:0", "--journal", str(tmp_path / "atol.jsonl"),
                                "--no-fsync")
    db = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    tenant = await new_tenant(db)
    cloud = CloudProcess(db, "--heartbeat", "0.2").start()
    proxy, close_proxy = await start_proxy_without_websocket(cloud.url)
    port = driver_config(tmp_path / "driver", tenant, emulator.info["tcp"], [proxy])
    driver = DriverProcess(tmp_path / "driver" / "driver.toml", port).start()
    shop = Shop(None, proxy, [tenant])
    try:
        status = await driver.until_linked()
        assert status["cloud"]["via"] == "poll" and status["cloud"]["url"] == proxy
        status_code, body, _ = await shop.post_form(shop.form(tenant, "through-the-proxy"))
        assert status_code == 201, body
        done = await wait_done(shop, tenant, body["receipt"]["id"])
        assert done["state"] == "done" and len(receipts_in(tmp_path / "atol.jsonl")) == 1
    finally:
        await shop.close()
        driver.stop()
        cloud.stop()  # first: it answers the poll the proxy still holds
        await close_proxy()


async def test_a_finished_receipt_the_cloud_still_doubts_is_answered_from_the_journal_not_printed(tmp_path,
                                                                                                 emulator_process):
    """The result was lost on its way (here: the cloud's row is put back in doubt): the resend on reconnect is
    answered from the driver's journal, and the register prints nothing more."""
    rig = await Rig(tmp_path, emulator_process).start()
    try:
        receipt_id = await rig.post("lost-result")
        first = await wait_done(rig.shop, rig.tenant, receipt_id)
        assert first["state"] == "done"
        rig.driver.kill()
        store = await Store.open(rig.db, migrate=False)
        try:
            async with store.engine.begin() as c:
                await c.execute(receipts.update().where(receipts.c.uuid == uuid.UUID(receipt_id))
                                .values(state="unknown", result=None, finished_at=None))
        finally:
            await store.close()
        rig.driver.start()
        again = await wait_done(rig.shop, rig.tenant, receipt_id)
        assert again["state"] == "done" and again["result"] == first["result"]
        assert len(receipts_in(rig.journal)) == 1
    finally:
        await rig.close()
