"""The vendor's form, as shop servers and the vendor's pages post it: every field spelling, every encoding of
BIT_DATA, both signature inputs, de-duplication, refusals with field paths, BIT_PROG_URL, floods."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import aiohttp
import pytest

from kktbridge.bitapi import PacketError, decode_request
from kktbridge.cloud.intake import FORM_PATHS
from kktbridge.cloud.states import State
from kktbridge.examples import example_packet

from .support import RECEIPT_TEXT, receipt_packet

# The API 1.1 example: BIT_JSON holds one receipt object, not a command list (receipt type 0 there means 1).
RECEIPT_1_1 = json.dumps(json.loads(example_packet())[1]["data"] | {"receiptType_1054": 0}, ensure_ascii=False)


@pytest.mark.parametrize("path", FORM_PATHS)
async def test_the_1_2_example_is_queued_and_found_by_id_and_by_order(cloud, path):
    status, answer, headers = await cloud.post_form(cloud.form(cloud.a, "order-1"), path=path)
    assert status == 201 and answer["result"] is True and answer["duplicate"] is False
    receipt = answer["receipt"]
    assert receipt["state"] == "queued" and receipt["status"] == "wait" and receipt["order_id"] == "order-1"
    assert receipt["device"] == {"id": cloud.a.register.id, "name": cloud.a.register.name}
    assert headers["Location"] == receipt["links"]["self"] == f"/api/v1/receipts/{receipt['id']}"
    for link in (receipt["links"]["self"], receipt["links"]["by_order"]):
        status, found, _ = await cloud.api(cloud.a, "GET", link)
        assert status == 200 and found["id"] == receipt["id"] and found["state"] == "queued"
    stored = await cloud.store.receipt_by_order(cloud.a.id, "order-1")
    assert json.loads(stored.packet) == json.loads(RECEIPT_TEXT)  # the driver will run exactly what was sent


@pytest.mark.parametrize("encoding", ["btoa", "uri", "base64", "raw"])
async def test_every_encoding_of_bit_data_gives_the_same_receipt(cloud, encoding):
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "order-1", encoding=encoding))
    assert status == 201, answer
    again = cloud.form(cloud.a, "order-1", encoding="btoa")  # the same packet, the vendor's way: the same receipt
    status, duplicate, _ = await cloud.post_form(again)
    assert status == 200 and duplicate["duplicate"] and duplicate["receipt"]["id"] == answer["receipt"]["id"]


async def test_base64_posted_without_url_encoding_and_multipart_forms(cloud):
    fields = cloud.form(cloud.a, "plus-as-space", receipt_packet(name="товар ~~~~~~~~~"))  # `~` stays as is: base64 `+`
    assert "+" in fields["BIT_DATA"]
    body = "&".join(f"{key}={value}" for key, value in fields.items())  # `+` arrives as a space
    status, answer, _ = await cloud.post_form(body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 201, answer
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "multipart"), multipart=True)  # PHP curl's arrays
    assert status == 201, answer


@pytest.mark.parametrize("signed", ["json", "data"])
async def test_both_documented_signature_inputs_are_accepted(cloud, signed):
    for encoding in ("btoa", "raw"):
        status, answer, _ = await cloud.post_form(cloud.form(cloud.a, f"{signed}-{encoding}", signed=signed,
                                                             encoding=encoding))
        assert status == 201, answer


async def test_api_1_0_and_1_1_field_names_and_one_receipt_object(cloud):
    names = {"BIT_ORDER_ID": "BIT_TRANSACTION_ID", "BIT_DATA": "BIT_JSON", "BIT_CALLBACK_SUCCESS":
             "BIT_CALBACK_SUCCESSFUL", "BIT_CALLBACK_FAILED": "BIT_CALBACK_FAILED"}
    fields = cloud.form(cloud.a, "tx-1", RECEIPT_1_1, encoding="raw", names=names,
                        success="https://shop.example.ru/ok.php", failed="https://shop.example.ru/failed.php")
    status, answer, _ = await cloud.post_form(fields)
    assert status == 201, answer
    assert answer["receipt"]["callbacks"] == {"success": "https://shop.example.ru/ok.php",
                                              "failed": "https://shop.example.ru/failed.php", "webhook": None}
    (command,) = json.loads((await cloud.store.receipt_by_order(cloud.a.id, "tx-1")).packet)
    assert command["type"] == "kktReceiptFiscalization" and command["data"]["purchases"][0]["price_1079"] == 11.0
    lower = {key.lower(): value for key, value in cloud.form(cloud.a, "lower-case").items()}
    assert (await cloud.post_form(lower))[0] == 201
    both = cloud.form(cloud.a, "tx-2") | {"BIT_TRANSACTION_ID": "tx-3"}
    status, answer, _ = await cloud.post_form(both)
    assert status == 400 and answer["fields"][0]["path"] == "BIT_TRANSACTION_ID"
    assert answer["fields"][0]["code"] == "conflict"


async def test_another_packet_under_a_queued_order_id_is_a_conflict(cloud):
    _, first, _ = await cloud.post_form(cloud.form(cloud.a, "order-1", receipt_packet("11.00")))
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "order-1", receipt_packet("12.00")))
    assert status == 409 and answer["result"] is False and answer["errorCode"] == "order_conflict"
    stored = await cloud.store.receipt_by_order(cloud.a.id, "order-1")
    assert answer["stored_request_hash"] == stored.request_hash
    assert answer["receipt"] == {"id": first["receipt"]["id"], "state": "queued"}
    status, _, _ = await cloud.post_form(cloud.form(cloud.a, "order-1", receipt_packet("11.00"),
                                                    success="https://shop.example.ru/new-callback"))
    assert status == 409  # the callbacks are part of the request


async def test_a_receipt_the_till_would_refuse_is_refused_here_with_the_drivers_field_paths(cloud):
    text = receipt_packet("1.005")
    with pytest.raises(PacketError) as driver:
        decode_request({}, text.encode())
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "bad", text))
    assert status == 400 and answer["errorCode"] == "bad_packet"
    assert [f["path"] for f in answer["fields"]] == ["BIT_DATA" + f.path for f in driver.value.fields] == [
        "BIT_DATA[0].data.purchases[0].price_1079", "BIT_DATA[0].data.payments.cash_1031"]
    single = json.loads(RECEIPT_1_1)
    single["purchases"][0]["qty_1023"] = 0  # (an amount_1043 off price × quantity is adjusted, at the till too)
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "bad-1.1", json.dumps(single, ensure_ascii=False),
                                                         names={"BIT_DATA": "BIT_JSON"}))
    assert status == 400 and answer["fields"][0]["path"] == "BIT_JSON.purchases[0].qty_1023"
    assert await cloud.store.list_receipts(cloud.a.id) == []


async def test_a_card_payment_is_refused_clearly_and_nothing_is_queued(cloud):
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "with-card", example_packet()))
    assert status == 400
    (problem,) = answer["fields"]
    assert problem["path"] == "BIT_DATA[0].type" and problem["code"] == "card_in_cloud"
    assert "bnkCardPayment" in problem["en"] and "терминал" in problem["ru"]
    assert await cloud.store.list_receipts(cloud.a.id) == []


async def test_forged_foreign_and_malformed_forms_are_refused_with_the_field_named(cloud):
    a, b = cloud.a, cloud.b
    cases = {
        "wrong integrity code": (cloud.form(a, "1", code=b.account.integrity_code), 403, "BIT_SIGNATURE"),
        "tampered packet": (cloud.form(a, "2") | {"BIT_DATA": cloud.form(a, "2", receipt_packet("1.00"))["BIT_DATA"]},
                            403, "BIT_SIGNATURE"),
        "unknown account": (cloud.form(a, "3") | {"BIT_ACCOUNT_ID": "999999"}, 403, "BIT_ACCOUNT_ID"),
        "another account's register": (cloud.form(a, "4", token=b.token), 400, "BIT_KKT_TOKEN"),
        "a bank terminal's token": (cloud.form(a, "5", token=a.terminal_token), 400, "BIT_KKT_TOKEN"),
        "a token that is not 32 hex": (cloud.form(a, "6", token="12345"), 400, "BIT_KKT_TOKEN"),
        "an account id that is not a number": (cloud.form(a, "7") | {"BIT_ACCOUNT_ID": "1; drop"}, 400,
                                               "BIT_ACCOUNT_ID"),
        "an account id beyond 32 bits": (cloud.form(a, "8") | {"BIT_ACCOUNT_ID": "99999999999999"}, 400,
                                         "BIT_ACCOUNT_ID"),
        "a callback that is not http": (cloud.form(a, "9", success="file:///etc/passwd"), 400, "BIT_CALLBACK_SUCCESS"),
        "a signature that is not md5": (cloud.form(a, "10") | {"BIT_SIGNATURE": "x" * 40}, 400, "BIT_SIGNATURE"),
        "an order id too long": (cloud.form(a, "o" * 129), 400, "BIT_ORDER_ID"),
        "BIT_DATA that is not JSON": (cloud.form(a, "11") | {"BIT_DATA": "bm90IGpzb24="}, 400, "BIT_DATA"),
    }
    for name, (fields, status, path) in cases.items():
        got, answer, _ = await cloud.post_form(fields)
        assert got == status and answer["result"] is False, (name, answer)
        assert path in [f["path"] for f in answer["fields"]], (name, answer)
        assert answer["errorRu"] and answer["errorEn"] and answer["errorCode"]
    status, answer, _ = await cloud.post_form({"BIT_ACCOUNT_ID": str(a.id)})
    assert status == 400 and {f["path"] for f in answer["fields"]} == {"BIT_KKT_TOKEN", "BIT_ORDER_ID", "BIT_DATA",
                                                                        "BIT_SIGNATURE"}
    status, answer, _ = await cloud.post_form(b'{"BIT_ACCOUNT_ID": 1}', headers={"Content-Type": "application/json"})
    assert status == 400 and answer["fields"][0]["path"] == "body"
    assert await cloud.store.list_receipts(a.id) == [] and await cloud.store.list_receipts(b.id) == []


async def test_an_oversized_body_and_other_methods_get_json_answers(cloud):
    huge = cloud.form(cloud.a, "huge", receipt_packet(name="x" * (2 * 1024 * 1024)))
    status, answer, _ = await cloud.post_form(huge)
    assert status == 413 and answer["errorCode"] == "too_large" and answer["result"] is False
    async with cloud.http.get(cloud.url + FORM_PATHS[0]) as response:
        assert response.status == 405 and (await response.json())["errorCode"] == "method_not_allowed"
    async with cloud.http.post(cloud.url + "/api/nothing-here.php") as response:
        assert response.status == 404 and (await response.json())["errorCode"] == "not_found"


@pytest.mark.parametrize("cloud_options", [{"prog_url_wait": 0.3}])
async def test_bit_prog_url_waits_a_bounded_time_and_the_receipt_stays_queued(cloud):
    fetched = []
    server = await asyncio.start_server(lambda r, w: fetched.append(w.close()), "127.0.0.1", 0)
    prog_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    status, answer, headers = await cloud.post_form(cloud.form(cloud.a, "now", prog_url=prog_url))
    assert status == 202 and answer["result"] is False and answer["errorCode"] == "result_not_ready"
    assert answer["retryable"] is True and "не отправляйте новый заказ" in answer["errorRu"]
    assert answer["receipt"]["state"] == "queued" and answer["receipt"]["prog_url"] == prog_url
    assert headers["X-Kktbridge-Receipt"] == answer["receipt"]["id"]
    status, again, _ = await cloud.post_form(cloud.form(cloud.a, "now", prog_url=prog_url))  # asking again: the same
    assert status == 202 and again["receipt"]["id"] == answer["receipt"]["id"]
    server.close()
    await server.wait_closed()
    assert fetched == []  # the URL was recorded, never called


@pytest.mark.parametrize("cloud_options", [{"prog_url_wait": 30}])
async def test_bit_prog_url_returns_the_full_result_once_the_driver_reports_it(cloud):
    result = [{"name": "2. Фискализируем чек", "type": "kktReceiptFiscalization", "success": "OK: чек №1",
               "fdNumber_1040": 12, "fiscalSign_1077": "2918241905", "total_1020": Decimal("11.00")}]

    async def driver() -> None:  # what the link of issue 13 will do: take the receipt and report its result
        while not (claimed := await cloud.store.claim(cloud.a.driver.id, node="test", lease=timedelta(seconds=30))):
            await asyncio.sleep(0.02)
        await cloud.store.finish(claimed[0].uuid, State.DONE, driver_id=cloud.a.driver.id, result=result)

    task = asyncio.ensure_future(driver())
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "now", prog_url="https://203.0.113.5:44735"))
    await task
    assert status == 200 and answer == result  # the driver's answer itself, as the vendor's cloud returns it


@pytest.mark.parametrize("cloud_options", [{"rate_limit": "3/minute"}])
async def test_an_account_that_floods_gets_429_with_retry_after(cloud):
    answers = [await cloud.post_form(cloud.form(cloud.a, f"flood-{i}")) for i in range(5)]
    assert [status for status, _, _ in answers] == [201, 201, 201, 429, 429]
    _, body, headers = answers[3]
    assert body["errorCode"] == "rate_limited" and body["retryable"] and 1 <= int(headers["Retry-After"]) <= 60
    assert (await cloud.post_form(cloud.form(cloud.b, "other-shop")))[0] == 201  # the limit is per account


@pytest.mark.parametrize("cloud_options", [{"auth_failure_limit": "5/minute"}])
async def test_forged_forms_count_against_the_sender_not_the_account(cloud):
    for i in range(5):
        assert (await cloud.post_form(cloud.form(cloud.a, f"forged-{i}", code="guess")))[0] == 403
    status, answer, headers = await cloud.post_form(cloud.form(cloud.a, "real"))
    assert status == 429 and int(headers["Retry-After"]) >= 1
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))  # the shop's own server, another address
    async with aiohttp.ClientSession(connector=connector) as shop_server:
        async with shop_server.post(cloud.url + FORM_PATHS[0], data=cloud.form(cloud.a, "real")) as response:
            assert response.status == 201
