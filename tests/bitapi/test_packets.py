"""Whole packets: the published examples, fingerprints, refusals with every reason, and no crash on any input."""

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kktbridge.bitapi import (
    MAX_COMMANDS,
    CardOperationCommand,
    CashCommand,
    PacketError,
    ReceiptCommand,
    ServiceCommand,
    decode_request,
)
from kktbridge.examples import example_packet
from kktbridge.fiscal import Measure, PaymentMethod, PaymentObject, Payments, ReceiptType, TaxationSystem, VatRate

KKT = "c751398cbf6f97b912050906923da1d6"
BNK = "2bb9bbe5a103c897a4896cab18c394ae"


def test_example_packet_of_api_1_2(decode):
    """test.php of API 1.2: a card payment of 12.00, then the receipt."""
    text = example_packet()
    packet = decode(text, headers={"Action": "toLocalhost", KKT: "1", BNK: "1"})
    pay, check = packet.commands
    assert isinstance(pay, CardOperationCommand) and pay.amount == 1200
    assert isinstance(check, ReceiptCommand)
    r = check.receipt
    assert r.type is ReceiptType.SALE and r.taxation is TaxationSystem.PATENT
    assert r.total == 1100 and r.payments == Payments(cash=1000, electronic=100)
    (only,) = r.items
    assert (only.measure, only.payment_method, only.payment_object, only.vat) == (
        Measure.GRAM, PaymentMethod.PREPAYMENT, PaymentObject.JOB, VatRate.NONE)
    assert only.additional_info == "что-то дополнительное"
    assert r.cashier.name == "Пупкин Иван Трофимович" and r.buyer.contact == "kkmspb2008@yandex.ru"
    assert packet.headers.style == "1.2" and packet.headers.tokens == (KKT, BNK)


def test_example_packet_as_the_1_2_page_sends_it(decode):
    """jQuery $.ajax with data {json: text}: a form body."""
    body = urlencode({"json": example_packet()})
    packet = decode(body, headers={"Action": "toLocalhost", KKT: "1", BNK: "1",
                                   "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert len(packet.commands) == 2


def php_demo_receipt(extra_items: int = 0) -> list:
    """test-from-php.php (2025): 1.23 × 2.345 = 2.88, paid 1000 cash, plus the 20/40/80-line variants."""
    data = {
        "1261": [{"a_1262": "001", "b_1263": "25.07.2025", "c_1264": "001", "d_1265": "jkersgdhfk8349544"}],
        "1059": [{"productName_1030": "Отладка программы ", "price_1079": 1.23, "qty_1023": 2.345,
                  "amount_1043": 2.88, "unit_2108": 0, "paymentFormCode_1214": 4, "productTypeCode_1212": 1,
                  "tax_1199": 6}],
        "cashierName_1021": "Пупкин Иван Трофимович", "cashierInn_1203": "",
        "payments": {"cash_1031": 1000, "ecash_1081": 0, "prepayment_1215": 0, "credit_1216": 0, "barter_1217": 0},
        "taxationType_1055": 1, "receiptType_1054": 1, "sendToEmail_1008": "kkmspb2008@yandex.ru", "printDoc": True,
    }
    for _ in range(extra_items):
        data["1059"].append({"productName_1030": "Отладка Программы №1 Тест на длинные названия", "price_1079": 0,
                             "qty_1023": 1, "amount_1043": 0, "unit_2108": 0, "paymentFormCode_1214": 4,
                             "productTypeCode_1212": 1, "tax_1199": 6})
    return [{"name": "2. Фискализируем чек", "type": "kktReceiptFiscalization", "data": data}]


@pytest.mark.parametrize("extra", [0, 20, 40, 80])
def test_php_demo_receipts(decode, extra):
    headers = {"Content-Type": "application/json", "Action": "command_list", "BIT_ENCODE_TYPE": "PHP",
               "BIT_ORDER_ID": "122", "BIT_KKT_TOKEN": KKT, "Origin": "https://kkmspb.ru"}
    packet = decode(json.dumps(php_demo_receipt(extra)), headers=headers)  # json_encode escapes as \uXXXX
    r = packet.commands[0].receipt
    assert len(r.items) == 1 + extra and r.total == 288 and r.change == 100000 - 288
    assert r.industry[0].value == "jkersgdhfk8349544"
    assert packet.order_id == "122" and packet.headers.kkt_token == KKT


def test_php_demo_service_packets(decode):
    cashier = {"cashierName_1021": "Пупкин Иван Трофимович", "cashierInn_1203": ""}
    packets = [
        [{"name": "Открытие смены", "type": "kktOpenShift", "data": cashier}],
        [{"name": "Закрытие смены", "type": "kktCloseShift", "data": cashier}],
        [{"name": "Внесение", "type": "kktCashIn", "cashSum": 111.11, "data": cashier}],
        [{"name": "Внесение", "type": "kktCashOut", "cashSum": 1.23, "data": cashier}],
        [{"name": "X отчет", "type": "kktXReport", "data": cashier}],
        [{"name": "открыть денежный ящик", "type": "kktOpenCashDraw", "data": cashier}],
    ]
    kinds = [type(decode(p).commands[0]) for p in packets]
    assert kinds == [ServiceCommand, ServiceCommand, CashCommand, CashCommand, ServiceCommand, ServiceCommand]


def test_bitrix_plugin_packet(decode):
    """The Bitrix module: purchases from the basket, 1.2 header style."""
    packet = [{"name": "Оплата", "type": "bnkCardPayment", "data": {"sum": 1500}},
              {"name": "Чек", "type": "kktReceiptFiscalization", "data": {
                  "purchases": [{"productName_1030": "Футболка", "price_1079": 750, "qty_1023": 2, "unit_2108": 0,
                                 "paymentFormCode_1214": 2, "productTypeCode_1212": 3, "tax_1199": 6}],
                  "taxationType_1055": 5, "receiptType_1054": 1, "electronically": False,
                  "payments": {"ecash_1081": 1500}}}]
    result = decode(json.dumps(packet), headers={"Action": "toLocalhost", KKT: "1", BNK: "1"})
    assert result.commands[1].receipt.total == 150000


def test_one_bad_receipt_refuses_the_whole_packet_before_the_card_is_charged(refusal, decode):
    packet = json.loads(example_packet())
    packet[1]["data"]["payments"]["ecash_1081"] = 100.00
    assert refusal(packet) == {"[1].data.payments.ecash_1081": "non_cash_above_total"}


def test_all_reasons_of_all_commands_at_once():
    body = json.dumps([{"name": "a", "type": "bnkCardPayment", "data": {"sum": -1}},
                       {"name": "b", "type": "kktOops"},
                       {"name": "c", "type": "kktCashIn"}]).encode()
    with pytest.raises(PacketError) as info:
        decode_request({"Action": "nope", "BIT_KKT_TOKEN": "bad"}, body)
    paths = [f.path for f in info.value.fields]
    assert paths == ["headers.Action", "headers.BIT_KKT_TOKEN", "[0].data.sum", "[1].type", "[2].cashSum"]
    assert info.value.code == "bad_packet" and not info.value.retryable
    error = info.value
    for path in paths:  # each problem once in each text, the languages apart in errorRu/errorEn
        assert error.text().count(f"{path}:") == error.text_ru().count(f"{path}:") == 1
        assert error.text_en().count(f"{path}:") == 1
    assert "не указана сумма" in error.text_ru() and "missing" not in error.text_ru()
    assert "missing" in error.text_en() and "не указана" not in error.text_en()


@pytest.mark.parametrize("body, path, code", [
    (b"{}", "body", "type"),
    (b"[]", "body", "required"),
    (b'"text"', "body", "body_format"),
    (b"[1,", "body", "json"),
    (b"[NaN]", "body", "json"),
    (json.dumps([{"type": "kktXReport"}] * (MAX_COMMANDS + 1)).encode(), "body", "too_many"),
])
def test_packet_level_refusals(refusal, body, path, code):
    assert refusal(body) == {path: code}


def test_single_command_object_is_a_packet_of_one(decode):
    assert len(decode({"name": "x", "type": "kktXReport"}).commands) == 1


def test_fingerprint():
    def fp(text: str, headers=None) -> str:
        return decode_request(headers or {"BIT_KKT_TOKEN": KKT}, text.encode()).fingerprint

    base = '[{"name":"x","type":"kktCashIn","cashSum":12,"data":{"cashierName_1021":"И"}}]'
    same = '[ {"data":{"cashierName_1021":"\\u0418"}, "type":"kktCashIn", "cashSum":12.00, "name":"x"} ]'
    assert fp(base) == fp(same)
    assert fp(base) == fp(base, {"Action": "toLocalhost", KKT: "1"})  # the same device, named the 1.2 way
    assert fp(base) != fp(base.replace("12", "13"))
    assert fp(base) != fp(base, {"BIT_KKT_TOKEN": BNK})
    encoded = decode_request({"BIT_KKT_TOKEN": KKT}, base64.b64encode(quote(base).encode())).fingerprint
    assert encoded == fp(base)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "type", "data", "purchases", "1059", "x_1059", "price_1079", "qty_1023",
                         "tax_1199", "payments", "cash_1031", "receiptType_1054", "cashSum", "sum", "rrn",
                         "showMode", "productName_1030", "1261", "agent", "clientInfo", "mrkcode_2000",
                         "printDoc", "electronically", "km_2000"]) | st.text(max_size=6),
        children, max_size=5),
    max_leaves=25,
)
command_types = st.sampled_from(["kktReceiptFiscalization", "kktCashIn", "bnkCardReturn", "kktCheckKM",
                                 "kktOpenShift", "bnkCardPayment", "x"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({"type": command_types}, optional={"name": json_values, "data": json_values,
                                                                        "cashSum": json_values}),
                max_size=3), st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4))
def test_no_input_escapes_as_anything_but_packet_error(commands, headers):
    body = json.dumps(commands, default=str).encode()
    try:
        packet = decode_request(headers, body)
    except PacketError as exc:
        assert exc.fields and all(f.path and f.ru and f.en for f in exc.fields)
    else:
        assert len(packet.commands) == len(commands)


@given(st.binary(max_size=300))
def test_random_bodies(body):
    try:
        decode_request({}, body)
    except PacketError as exc:
        assert exc.fields
