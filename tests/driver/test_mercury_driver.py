"""Every register command of the BIT API on a Mercury token works as on an ATOL token: one driver, both kinds."""

from __future__ import annotations

import base64
import json

import pytest

from kktbridge.emulators.fncore import read_journal
from kktbridge.examples import example_packet

from .conftest import close_stand, make_stand

CASHIER = {"cashierName_1021": "Пупкин Иван Трофимович", "cashierInn_1203": ""}
EXAMPLE = json.loads(example_packet())


@pytest.fixture
async def shop(tmp_path, arccom_library):
    stand = await make_stand(tmp_path, mercury=True, terminal=arccom_library)
    yield stand  # tokens: [atol, mercury, arcus]
    await close_stand(stand)


def every_register_command() -> list:
    return [
        {"name": "Открытие смены", "type": "kktOpenShift", "data": CASHIER},
        {"name": "Внесение", "type": "kktCashIn", "cashSum": 111.11, "data": CASHIER},
        {"name": "Чек", "type": "kktReceiptFiscalization", "data": EXAMPLE[1]["data"]},
        {"name": "Возврат", "type": "kktReceiptFiscalization", "data": {**EXAMPLE[1]["data"], "receiptType_1054": 2}},
        {"name": "Выплата", "type": "kkt\u0421ashOut", "sum": 1.23, "data": CASHIER},
        {"name": "X отчет", "type": "kktXReport", "data": CASHIER},
        {"name": "ящик", "type": "kktOpenCashDraw", "data": CASHIER},
        {"name": "КМ", "type": "kktCheckKM", "data": {"km_2000": base64.b64encode(b"010460358601467421abc").decode()}},
        {"name": "Закрытие смены", "type": "kktCloseShift", "data": CASHIER},
    ]


def shape(answer: list) -> list:
    """What must be equal on both kinds: outcome, type, document numbers, totals, the QR's fields but the device's."""
    out = []
    for result in answer:
        qr = result.get("qr")
        out.append((("success" in result), result["type"], result.get("fdNumber_1040"), result.get("total_1020"),
                    result.get("receiptNumber_1042"), qr.split("&")[1] if qr else None, qr.split("&")[-1] if qr else None))
    return out


async def test_the_same_packet_on_an_atol_and_a_mercury_token(shop):
    atol, mercury = shop.tokens[0], shop.tokens[1]
    _, on_atol, _ = await shop.post(every_register_command(), {"BIT_KKT_TOKEN": atol})
    _, on_mercury, _ = await shop.post(every_register_command(), {"BIT_KKT_TOKEN": mercury})
    assert all("success" in r for r in on_mercury), on_mercury
    assert shape(on_atol) == shape(on_mercury)
    assert on_mercury[2]["fnNumber_1041"] == "9999078900054321" and on_atol[2]["fnNumber_1041"] != "9999078900054321"
    atol_docs = [r for r in read_journal(shop.tmp / "atol0.jsonl") if r.get("fd")]
    mercury_docs = [r for r in read_journal(shop.tmp / "mercury.jsonl") if r.get("fd")]
    assert [d["doc"] for d in atol_docs] == [d["doc"] for d in mercury_docs] == [
        "open_shift", "receipt", "receipt", "close_shift"]
    for a, m in zip(atol_docs[1:3], mercury_docs[1:3]):
        assert (a["total"], a["vat"], a["items"], a["payments"]) == (m["total"], m["vat"], m["items"], m["payments"])


async def test_card_payment_and_receipt_on_mercury(shop):
    headers = {"BIT_KKT_TOKEN": shop.tokens[1], "BIT_BNK_TRM_TOKEN": shop.tokens[2], "BIT_ORDER_ID": "m-1"}
    _, answer, _ = await shop.post(EXAMPLE, headers)
    pay, receipt = answer
    assert pay["slipPrinted"] is True and receipt["success"].startswith("OK: чек")
    mercury = shop.emulators[1]
    assert "СУММА: 12.00 РУБ" in mercury.paper.text() and receipt["qr"] in mercury.paper.text()
    _, again, response = await shop.post(EXAMPLE, headers)
    assert again == answer and response["X-Kktbridge-Replayed"] == "true"
    assert len([r for r in read_journal(shop.tmp / "mercury.jsonl") if r["doc"] == "receipt"]) == 1


async def test_errors_on_mercury_keep_the_service_code(shop):
    shop.emulators[1].faults.no_paper = True
    _, answer, _ = await shop.post(EXAMPLE[1:], {"BIT_KKT_TOKEN": shop.tokens[1], "BIT_ORDER_ID": "m-paper"})
    assert answer[0]["errorCode"] == "no_paper" and answer[0]["deviceError"]["code"] is not None
    assert [r for r in read_journal(shop.tmp / "mercury.jsonl") if r["doc"] == "receipt"] == []
    shop.emulators[1].faults.no_paper = False
    _, answer, _ = await shop.post(EXAMPLE[1:], {"BIT_KKT_TOKEN": shop.tokens[1], "BIT_ORDER_ID": "m-paper"})
    assert "success" in answer[0]


async def test_several_registers_need_the_token(shop):
    _, answer, _ = await shop.post(EXAMPLE[1:])
    assert answer["result"] is False and answer["fields"][0]["code"] == "token_required"
    assert "BIT_KKT_TOKEN" in answer["fields"][0]["en"]
