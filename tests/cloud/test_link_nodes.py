"""The link across several cloud nodes on one PostgreSQL database, all real processes: a receipt posted to node B
reaches the driver linked to node A at once (LISTEN/NOTIFY); node A killed with SIGKILL mid-receipt: the driver
moves to node B, the lease runs out into `unknown`, and the driver's report settles it `done`, printed once."""

from __future__ import annotations

import time

from .support import CloudProcess, Shop
from .test_link import (
    DriverProcess,
    driver_config,
    emulator_printing,
    new_tenant,
    receipts_in,
    set_faults,
    until_receipts,
    wait_done,
)

NODE_ARGS = ("--heartbeat", "0.2", "--lease", "1")


class TwoNodes:
    def __init__(self, pg_url: str, tmp, emulator_process, args: tuple[str, ...] = NODE_ARGS) -> None:
        self.db, self.tmp, self.args = pg_url, tmp, args
        self.journal = tmp / "atol.jsonl"
        self.emulator = emulator_process("atol", "--tcp", "127.0.0.1:0", "--state", str(tmp / "fn.json"),
                                         "--journal", str(self.journal), "--control", "127.0.0.1:0", "--no-fsync")

    async def start(self) -> TwoNodes:
        self.tenant = await new_tenant(self.db)
        self.a = CloudProcess(self.db, "--node", "node-a", *self.args).start()
        self.b = CloudProcess(self.db, "--node", "node-b", *self.args).start()
        port = driver_config(self.tmp / "driver", self.tenant, self.emulator.info["tcp"], [self.a.url, self.b.url])
        self.driver = DriverProcess(self.tmp / "driver" / "driver.toml", port).start()
        status = await self.driver.until_linked()
        assert status["cloud"]["url"] == self.a.url
        self.shop_b = Shop(None, self.b.url, [self.tenant])
        return self

    async def post_to_b(self, order: str) -> str:
        status, body, _ = await self.shop_b.post_form(self.shop_b.form(self.tenant, order))
        assert status == 201, body
        return body["receipt"]["id"]

    async def close(self) -> None:
        await self.shop_b.close()
        self.driver.stop()
        self.a.stop()
        self.b.stop()


async def test_a_receipt_posted_to_node_b_reaches_the_driver_linked_to_node_a_at_once(pg_url, tmp_path,
                                                                                        emulator_process):
    # A slow heartbeat and a slow wait poll (so the rescan and the re-read are 30 s away): only the notes are quick.
    rig = await TwoNodes(pg_url, tmp_path, emulator_process, ("--heartbeat", "30", "--lease", "60",
                                                              "--wait-poll", "30")).start()
    try:
        assert (await wait_done(rig.shop_b, rig.tenant, await rig.post_to_b("warm-up")))["state"] == "done"
        started = time.monotonic()
        receipt_id = await rig.post_to_b("via-b")
        body = await wait_done(rig.shop_b, rig.tenant, receipt_id)  # node B's wait: woken by node A's note
        elapsed = time.monotonic() - started
        assert body["state"] == "done" and body["payload"]["fiscal_document_number"], body
        # node B → A "queued", node A → B "final": notes (milliseconds), not the rescan or the wait's poll (30 s)
        assert elapsed < 10, elapsed
        assert len(receipts_in(rig.journal)) == 2
    finally:
        await rig.close()


async def test_node_a_killed_mid_receipt_the_driver_moves_to_b_and_its_report_settles_it_once(pg_url, tmp_path,
                                                                                                emulator_process):
    rig = await TwoNodes(pg_url, tmp_path, emulator_process).start()
    try:
        assert (await wait_done(rig.shop_b, rig.tenant, await rig.post_to_b("warm-up")))["state"] == "done"
        await set_faults(rig, print_latency=3)
        receipt_id = await rig.post_to_b("during-the-kill")
        await emulator_printing(rig)
        rig.a.process.kill()  # SIGKILL: no goodbye to the driver, no lease given back
        rig.a.process.wait(10)
        status = await rig.driver.until_linked()
        assert status["cloud"]["url"] == rig.b.url
        body = await wait_done(rig.shop_b, rig.tenant, receipt_id, timeout=30)
        assert body["state"] == "done", body
        assert body["unknown_at"] is not None  # the lease held by the dead node ran out first
        receipts = await until_receipts(rig, 2)
        assert len(receipts) == 2 and body["payload"]["fiscal_document_number"] == receipts[1]["fd"]
        await set_faults(rig, print_latency=0)
        after = await rig.post_to_b("after-the-kill")  # node B serves the driver from now on
        assert (await wait_done(rig.shop_b, rig.tenant, after))["state"] == "done"
        assert len(receipts_in(rig.journal)) == 3
    finally:
        await rig.close()
