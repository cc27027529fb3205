"""The vendor's own clients over real HTTP, on an emulated ATOL and an emulated Mercury with an Arcus terminal: each
shape prints with the payments the register records and the adjustments reported in the answer, the journal and
the status page; strict mode refuses each before anything runs (no card is charged)."""

from __future__ import annotations

import json
import logging

import pytest

from kktbridge.emulators.fncore import read_journal

from ..vendor_shapes import SHAPES, request
from .conftest import close_stand, make_stand


@pytest.fixture
async def shop(tmp_path, arccom_library):
    stand = await make_stand(tmp_path, mercury=True, terminal=arccom_library)
    yield stand  # tokens: [atol, mercury, arcus]
    await close_stand(stand)


def receipts(stand, register: str) -> list[dict]:
    name = "atol0.jsonl" if register == "atol" else "mercury.jsonl"
    return [r for r in read_journal(stand.tmp / name) if r["doc"] == "receipt"]


async def send(stand, shape, style: str, register: str, order: str):
    kkt = stand.tokens[0] if register == "atol" else stand.tokens[1]
    headers, body = request(json.dumps(shape.packet, ensure_ascii=False), style, kkt,
                            stand.tokens[2] if shape.card else None, order)
    return await stand.post(body, headers)


@pytest.mark.parametrize("register", ["atol", "mercury"])
async def test_each_vendor_shape_prints_in_both_header_styles(shop, register):
    for number, shape in enumerate(SHAPES):
        for style in ("1.3", "1.2"):
            status, answer, _ = await send(shop, shape, style, register, f"{register}-{number}-{style}")
            assert status == 200 and isinstance(answer, list), (shape.name, style, answer)
            result = answer[-1]
            assert result["success"].startswith("OK: чек"), (shape.name, style, answer)
            assert [w["code"] for w in result["warnings"]] == list(shape.warnings), shape.name
            assert "исправлено драйвером" in result["success"]  # what the vendor's page shows the cashier
            if shape.card:
                assert answer[0]["success"] == "OK: ОДОБРЕНО" and "warnings" not in answer[0]
            printed = receipts(shop, register)[-1]
            assert printed["fd"] == result["fdNumber_1040"] and printed["total"] == shape.total
            assert printed["payments"] == shape.payments, (shape.name, style, printed["payments"])
            if "cashier_inn_dropped" in shape.warnings:
                assert not (printed["cashier"] or {}).get("inn")
    assert len(receipts(shop, register)) == 2 * len(SHAPES)


async def test_the_adjustments_are_in_the_journal_and_on_the_status_page(shop):
    shape = SHAPES[0]
    _, answer, response = await send(shop, shape, "1.3", "atol", "journal-1")
    packet_id = int(response["X-Kktbridge-Packet"])
    stored = shop.driver.journal.commands(packet_id)[1].result
    assert stored["warnings"] == answer[1]["warnings"]
    _, again, replayed = await send(shop, shape, "1.3", "atol", "journal-1")  # the stored answer, warnings included
    assert again == answer and replayed["X-Kktbridge-Replayed"] == "true"
    async with shop.session.get(shop.url + "/") as page:
        text = await page.text()
    for warning in answer[1]["warnings"]:
        assert warning["path"] in text and warning["en"] in text
    assert len(receipts(shop, "atol")) == 1


@pytest.mark.parametrize("strict_on", ["driver", "device"])
async def test_strict_mode_refuses_each_vendor_shape(tmp_path, arccom_library, strict_on):
    where = {"driver": {"strict": True}} if strict_on == "driver" else {"mercury_options": {"strict": True}}
    stand = await make_stand(tmp_path, mercury=True, terminal=arccom_library, **where)
    try:
        register = "mercury"
        for number, shape in enumerate(SHAPES):
            for style in ("1.3", "1.2"):
                _, answer, _ = await send(stand, shape, style, register, f"strict-{number}-{style}")
                assert isinstance(answer, dict) and answer["result"] is False, (shape.name, style, answer)
                assert answer["errorCode"] == "bad_packet" and answer["fields"]
        assert receipts(stand, register) == []
        terminal = next(e for e in stand.driver.registry.entries if e.role == "bnk").adapter
        assert (await terminal.report()).extra["emu_purchase_count"] == "0"  # no card was charged
        if strict_on == "device":  # the other register is lenient: the same packet prints there
            _, answer, _ = await send(stand, SHAPES[1], "1.2", "atol", "lenient-atol")
            assert answer[0]["success"].startswith("OK: чек") and len(receipts(stand, "atol")) == 1
    finally:
        await close_stand(stand)


async def test_keys_outside_the_format_are_named_in_the_debug_log(shop, caplog):
    caplog.set_level(logging.DEBUG, logger="kktbridge.driver")
    _, answer, _ = await send(shop, SHAPES[1], "1.2", "atol", "debug-1")
    assert "success" in answer[0]
    assert "keys ignored" in caplog.text and "[0].data.purchases[0].getVatRate" in caplog.text
