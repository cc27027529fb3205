"""The driver through real sockets: an HTTP client posts packets, the driver drives emulated ATOL registers."""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import quote, urlencode


from kktbridge.examples import example_packet
from kktbridge.fiscal import ReceiptQr

from .conftest import ORIGIN, close_stand, make_stand

RECEIPT = json.loads(example_packet())[1:]  # the 1.2 example without the card payment (no terminal here)
CASHIER = {"cashierName_1021": "Пупкин Иван Трофимович", "cashierInn_1203": ""}


def receipt_packet(price: float = 11.00, items: int = 1, order: str = "") -> list:
    data = {"purchases": [{"productName_1030": f"товар {i}", "price_1079": price, "qty_1023": 1, "tax_1199": 6,
                           "paymentFormCode_1214": 4, "productTypeCode_1212": 1} for i in range(items)],
            "payments": {"cash_1031": round(price * items, 2)}, "receiptType_1054": 1, "taxationType_1055": 1}
    return [{"name": f"чек {order}", "type": "kktReceiptFiscalization", "data": data}]


def encodings(text: str, token: str):
    js = quote(text, safe="-_.!~*'()")
    return {
        "1.3 raw JSON (PHP)": ({"Action": "command_list", "BIT_KKT_TOKEN": token, "BIT_ENCODE_TYPE": "PHP",
                                "Content-Type": "application/json"}, text),
        "1.3 encodeURIComponent (JS)": ({"Action": "command_list", "bit_kkt_token": token, "BIT_ENCODE_TYPE": "JS"}, js),
        "1.2 form json= with the token as a header name": (
            {"Action": "toLocalhost", token: "1", "Content-Type": "application/x-www-form-urlencoded"},
            urlencode({"json": text})),
        "rawurlencode": ({"BIT_KKT_TOKEN": token, "Content-Type": "application/x-www-form-urlencoded"},
                         quote(text, safe="-_.~")),
        "base64": ({"BIT_KKT_TOKEN": token, "Content-Type": "text/plain"}, base64.b64encode(text.encode()).decode()),
        "hex": ({"BIT_KKT_TOKEN": token, "Content-Type": "text/plain"}, text.encode().hex()),
    }


async def test_the_example_receipt_in_every_header_style_and_body_encoding(stand):
    text = json.dumps(RECEIPT, ensure_ascii=False)
    for number, (name, (headers, body)) in enumerate(encodings(text, stand.token).items()):
        status, answer, response = await stand.post(body, {**headers, "BIT_ORDER_ID": f"enc-{number}"})
        assert status == 200, name
        (result,) = answer
        assert result["name"] == "2. Фискализируем чек" and result["success"].startswith("OK: чек"), (name, answer)
        assert result["total_1020"] == 11.0 and result["fnNumber_1041"] == "9999078900012345"
        qr = ReceiptQr.parse(result["qr"])
        assert qr.fd_number == result["fdNumber_1040"] and qr.fiscal_sign == result["fiscalSign_1077"]
        assert "device;dur=" in response["Server-Timing"]
    receipts = stand.receipts()
    assert len(receipts) == 6 and all(r["total"] == 1100 for r in receipts)


async def test_every_register_command(stand):
    headers = {"BIT_KKT_TOKEN": stand.token}
    packet = [
        {"name": "Открытие смены", "type": "kktOpenShift", "data": CASHIER},
        {"name": "Внесение", "type": "kktCashIn", "cashSum": 111.11, "data": CASHIER},
        {"name": "Чек", "type": "kktReceiptFiscalization", "data": RECEIPT[0]["data"]},
        {"name": "Выплата", "type": "kkt\u0421ashOut", "sum": 1.23, "data": CASHIER},
        {"name": "X отчет", "type": "kktXReport", "data": CASHIER},
        {"name": "ящик", "type": "kktOpenCashDraw", "data": CASHIER},
        {"name": "КМ", "type": "kktCheckKM", "data": {"km_2000": base64.b64encode(b"010460358601467421abc\x1d91EE10").decode()}},
        {"name": "Закрытие смены", "type": "kktCloseShift", "data": CASHIER},
    ]
    status, answer, _ = await stand.post(packet, headers)
    assert [("success" in r, r["type"]) for r in answer] == [
        (True, "kktOpenShift"), (True, "kktCashIn"), (True, "kktReceiptFiscalization"), (True, "kktCashOut"),
        (True, "kktXReport"), (True, "kktOpenCashDraw"), (True, "kktCheckKM"), (True, "kktCloseShift")]
    assert answer[0]["fdNumber_1040"] == 1 and answer[2]["fdNumber_1040"] == 2 and answer[7]["fdNumber_1040"] == 3
    assert "qr" not in answer[0] and "qr" in answer[2] and answer[1]["success"] == "OK: внесено 111.11 ₽"
    assert [d["doc"] for d in stand.documents()] == ["open_shift", "receipt", "close_shift"]
    assert stand.emulators[0].core.cash == 11111 - 123 + 1000  # the receipt's cash


async def test_a_failing_command_stops_the_packet(stand):
    stand.emulators[0].faults.no_paper = True
    packet = RECEIPT + [{"name": "ящик", "type": "kktOpenCashDraw"}]
    status, answer, _ = await stand.post(packet, {"BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": "paper"})
    receipt, drawer = answer
    assert receipt["errorCode"] == "no_paper" and receipt["deviceError"]["code"] == 103 and receipt["retryable"]
    assert "Нет бумаги" in receipt["error"] and drawer["skipped"] is True and "error" in drawer
    assert stand.receipts() == []
    stand.emulators[0].faults.no_paper = False  # paper loaded: the same packet again goes on from the receipt
    status, answer, response = await stand.post(packet, {"BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": "paper"})
    assert "success" in answer[0] and "success" in answer[1] and "X-Kktbridge-Replayed" not in response
    assert len(stand.receipts()) == 1


async def test_preflight_from_an_allowed_origin(stand):
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": f"action,bit_kkt_token,bit_order_id,bit_encode_type,{stand.token}",
               "Access-Control-Request-Private-Network": "true"}
    async with stand.session.options(stand.url, headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "bit_kkt_token" in response.headers["Access-Control-Allow-Headers"]
        assert stand.token in response.headers["Access-Control-Allow-Headers"]  # the 1.2 style sends it as a name
        assert response.headers["Access-Control-Allow-Private-Network"] == "true"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]


async def test_a_refused_origin_is_told_what_to_add(stand):
    evil = "https://evil.example.com"
    async with stand.session.options(stand.url, headers={"Origin": evil, "Access-Control-Request-Method": "POST"}) as r:
        assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        body = await r.json(content_type=None)
    assert evil in body["errorRu"] and "allowed_origins" in body["errorEn"] and evil in body["errorEn"]
    status, answer, _ = await stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.token}, origin=evil)
    assert status == 403 and answer["errorCode"] == "origin_not_allowed"
    assert stand.receipts() == []


async def test_requests_without_origin_need_the_token(stand):
    status, answer, _ = await stand.post(RECEIPT, origin=None)
    assert answer["result"] is False and answer["fields"][0]["code"] == "token_required"
    status, answer, _ = await stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.token}, origin=None)
    assert "success" in answer[0]
    status, answer, _ = await stand.post(RECEIPT, origin=ORIGIN)  # one register and an allowed page: it is meant
    assert "success" in answer[0]
    status, answer, _ = await stand.post(RECEIPT, {"BIT_KKT_TOKEN": "0" * 32})
    assert answer["fields"][0] == {"path": "headers.BIT_KKT_TOKEN", "code": "unknown_token",
                                   "ru": answer["fields"][0]["ru"], "en": answer["fields"][0]["en"]}
    status, answer, _ = await stand.post([{"name": "оплата", "type": "bnkCardPayment", "data": {"sum": 12}}])
    assert answer["fields"][0]["code"] == "no_device"


async def test_identical_retry_is_answered_from_the_journal(stand):
    headers = {"BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": "A-1001"}
    _, first, first_headers = await stand.post(RECEIPT, headers)
    _, second, second_headers = await stand.post(RECEIPT, headers)
    assert first == second and second_headers["X-Kktbridge-Replayed"] == "true"
    assert first_headers["X-Kktbridge-Packet"] == second_headers["X-Kktbridge-Packet"]
    assert len(stand.receipts()) == 1


async def test_double_click_at_the_same_moment(stand):
    headers = {"BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": "double"}
    stand.emulators[0].faults.print_latency = 0.3
    answers = await asyncio.gather(*(stand.post(RECEIPT, headers) for _ in range(3)))
    assert answers[0][1] == answers[1][1] == answers[2][1]
    assert len(stand.receipts()) == 1


async def test_reused_order_id_with_a_different_packet_runs_again(stand):
    headers = {"BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": "122"}  # the vendor's PHP demo sends 122 every time
    _, first, _ = await stand.post(receipt_packet(11.00), headers)
    _, second, response = await stand.post(receipt_packet(12.00), headers)
    assert "success" in second[0] and "X-Kktbridge-Replayed" not in response
    assert [r["total"] for r in stand.receipts()] == [1100, 1200]
    packets = stand.driver.journal.recent()
    assert packets[0].order_reused and not packets[1].order_reused


async def test_two_packets_for_one_register_at_once_are_serialized(stand):
    stand.emulators[0].faults.print_latency = 0.2
    headers = {"BIT_KKT_TOKEN": stand.token}
    first, second = await asyncio.gather(stand.post(receipt_packet(10.0, items=5), {**headers, "BIT_ORDER_ID": "t1"}),
                                         stand.post(receipt_packet(20.0, items=5), {**headers, "BIT_ORDER_ID": "t2"}))
    assert "success" in first[1][0] and "success" in second[1][0]
    receipts = stand.receipts()
    assert sorted(r["total"] for r in receipts) == [5000, 10000]
    assert [len(r["items"]) for r in receipts] == [5, 5]  # each receipt whole: never mixed


async def test_a_second_register_is_served_while_the_first_prints(two_registers):
    stand = two_registers
    stand.emulators[0].faults.print_latency = 3.0
    slow = asyncio.create_task(stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.tokens[0]}))
    while not stand.emulators[0]._busy:  # the first register is printing now
        await asyncio.sleep(0.01)
    _, answer, _ = await stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.tokens[1]})
    assert "success" in answer[0]
    assert not slow.done()  # the second receipt came out while the first was still printing
    _, first, _ = await slow
    assert "success" in first[0]
    assert len(stand.receipts(0)) == len(stand.receipts(1)) == 1


async def test_bad_packets(stand):
    headers = {"BIT_KKT_TOKEN": stand.token}
    for body, code in [(b"", "body_empty"), (b"<xml/>", "body_format"), (b"[1,", "json"),
                       (b'[{"name":"x","type":"kktPrint"}]', "unknown_command")]:
        status, answer, _ = await stand.post(body, headers)
        assert status == 200 and answer["result"] is False and answer["fields"][0]["code"] == code
        assert answer["errorRu"] and answer["errorEn"]
    bad = receipt_packet()
    bad[0]["data"]["purchases"][0]["price_1079"] = "дорого"
    status, answer, _ = await stand.post(bad, headers)
    assert answer["fields"][0]["path"] == "[0].data.purchases[0].price_1079"
    assert stand.receipts() == []
    async with stand.session.post(stand.url, data=b"x" * (3 * 1024 * 1024), headers=headers) as response:
        assert response.status == 413


async def test_status_json_and_page(stand):
    await stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": "s-1"})
    async with stand.session.get(stand.url + "/status") as response:
        state = await response.json()
    (device,) = state["devices"]
    assert device["token"] == stand.token and device["connected"] and device["kind"] == "atol"
    assert device["status"]["fnNumber"] == "9999078900012345" and device["status"]["shiftOpen"]
    assert device["status"]["paper"] and device["lastError"] is None
    async with stand.session.get(stand.url + "/") as response:
        page = await response.text()
    assert "s-1" in page and "<svg" in page and stand.token in page and "Касса 1" in page


async def test_two_different_register_tokens_in_one_request_are_refused(two_registers):
    stand = two_registers
    first, second = stand.tokens
    status, answer, _ = await stand.post(RECEIPT, {"BIT_KKT_TOKEN": first, second: "1"})
    assert answer["result"] is False and answer["fields"][0]["code"] == "conflicting_tokens"
    assert "BIT_KKT_TOKEN" in answer["fields"][0]["en"] and "API 1.2" in answer["fields"][0]["ru"]
    assert stand.receipts(0) == stand.receipts(1) == []
    _, same, _ = await stand.post(RECEIPT, {"BIT_KKT_TOKEN": first, first: "1"})  # the same one twice is one device
    assert "success" in same[0] and len(stand.receipts(0)) == 1


async def test_a_default_register_takes_pages_without_a_token(tmp_path):
    stand = await make_stand(tmp_path, registers=1, mercury=True, mercury_options={"default": True})
    try:
        _, answer, _ = await stand.post(RECEIPT)  # an allowed page, no token: the default register
        assert answer[0]["fnNumber_1041"] == "9999078900054321" and stand.receipts(0) == []
        _, answer, _ = await stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.tokens[0]})  # a token still picks
        assert "success" in answer[0] and len(stand.receipts(0)) == 1
        _, answer, _ = await stand.post(RECEIPT, origin=None)  # without an Origin the token stays required
        assert answer["fields"][0]["code"] == "token_required"
    finally:
        await close_stand(stand)


async def test_the_status_page_names_the_device_of_each_packet(two_registers):
    stand = two_registers
    await stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.tokens[0], "BIT_ORDER_ID": "on-1"})
    await stand.post(RECEIPT, {"BIT_KKT_TOKEN": stand.tokens[1], "BIT_ORDER_ID": "on-2"})
    async with stand.session.get(stand.url + "/") as response:
        page = await response.text()
    rows = page.split('<tbody id="packets">')[1].split("</tbody>")[0].split("<tr>")[1:]
    assert "on-2" in rows[0] and "Касса 2" in rows[0] and "Касса 1" not in rows[0]
    assert "on-1" in rows[1] and "Касса 1" in rows[1] and "Касса 2" not in rows[1]
    assert "bnkCardPayment" not in page.split('id="packet">')[1].split("</textarea>")[0]  # no terminal: no card
