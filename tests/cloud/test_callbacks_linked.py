"""End to end through real processes: a shop posts to `kktbridge cloud`, the linked driver prints on the ATOL
emulator, and the shop's receiver (an aiohttp server here) gets the signed callback with the fiscal data, in both
APIs. The docs' own check verifies the signature."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from .support import receipt_packet
from .test_callbacks import Receiver, docs_verify
from .test_link import Rig, receipts_in


async def test_intake_push_register_and_the_signed_callback_in_both_apis(db_url, tmp_path, emulator_process):
    verify = docs_verify()
    receiver = await Receiver().start()
    rig = await Rig(tmp_path, emulator_process, db_url, cloud_args=("--allow-private-callbacks",)).start()
    try:
        secret = rig.tenant.account.webhook_secret
        started = time.monotonic()
        status, body, _ = await rig.shop.post_form(rig.shop.form(rig.tenant, "linked-1", success=receiver.url + "/ok",
                                                                 failed=receiver.url + "/failed"))
        assert status == 201, body
        await receiver.wait(1, timeout=20)
        elapsed = time.monotonic() - started
        (headers, raw), = receiver.at("/ok")
        assert verify(raw, headers["X-Kktbridge-Timestamp"], headers["X-Kktbridge-Signature"], secret)
        fields = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        result = [item for item in json.loads(fields["data"]) if item["type"] == "kktReceiptFiscalization"][0]
        journal = receipts_in(rig.journal)
        assert fields["result"] == "true" and result["fdNumber_1040"] == journal[-1]["fd"], (fields, journal)
        assert result["fiscalSign_1077"] and result["qr"]
        assert elapsed < 5, elapsed  # pushed and posted at once, not polled
        status, submitted, _ = await rig.shop.submit(rig.tenant, "linked-2", json.loads(receipt_packet()),
                                                     webhook_url=receiver.url + "/hook")
        assert status == 201, submitted
        await receiver.wait(2, timeout=20)
        (headers, raw), = receiver.at("/hook")
        assert verify(raw, headers["X-Kktbridge-Timestamp"], headers["X-Kktbridge-Signature"], secret)
        view = json.loads(raw)
        assert view["id"] == submitted["id"] and view["state"] == "done"
        assert view["payload"]["fiscal_document_number"] == receipts_in(rig.journal)[-1]["fd"]
        assert len(receipts_in(rig.journal)) == 2 and not receiver.at("/failed")
    finally:
        await rig.close()
        await receiver.stop()
