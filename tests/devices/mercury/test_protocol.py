"""The Mercury JSON codec without I/O: units, codes, blocks, the public example sequence, replies and errors."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest

from kktbridge.devices.errors import DeviceError, LinkError, OutcomeUnknown
from kktbridge.devices.mercury import protocol
from kktbridge.devices.mercury.protocol import UNVERIFIED
from kktbridge.fiscal import (
    AgentInfo,
    AgentType,
    Buyer,
    CashOperation,
    CashOperationKind,
    Cashier,
    DocumentKind,
    FormatError,
    IndustryRequisite,
    Item,
    MarkingCode,
    Measure,
    PaymentMethod,
    PaymentObject,
    Payments,
    Quantity,
    Receipt,
    ReceiptType,
    Supplier,
    TaxationSystem,
    ValidationFailed,
    VatRate,
)

K = "0123456789abcdef"


def item(price: int = 10000, quantity: str = "1", **fields) -> Item:
    return Item(name=fields.pop("name", "Товар"), price=price, quantity=Quantity.parse(quantity),
                vat=fields.pop("vat", VatRate.NONE), **fields)


def receipt(*items: Item, **fields) -> Receipt:
    lines = items or (item(),)
    total = sum(line.amount for line in lines)
    fields.setdefault("payments", Payments(cash=total))
    return Receipt(type=fields.pop("type", ReceiptType.SALE), items=tuple(lines), **fields)


# --- the example sequence of spec/devices.md §2.3, field for field ------------------------------------------


def test_the_public_example_sequence_field_for_field():
    cashier = Cashier("Иванов И.И.", "500100732259")
    sale = receipt(item(10000, "1", vat=VatRate.NONE, payment_object=PaymentObject.COMMODITY),
                   taxation=TaxationSystem.OSN, cashier=cashier, payments=Payments(cash=10000))
    requests = protocol.receipt_requests(sale)

    # 1. {"sessionKey":null,"command":"OpenSession","portName":"COM2","model":"185F"}
    assert protocol.keyed(protocol.open_session("COM2", "185F"), None) == {
        "sessionKey": None, "command": "OpenSession", "portName": "COM2", "model": "185F"}
    # 2. {"sessionKey":K,"command":"OpenCheck","checkType":0,"taxSystem":0,"printDoc":true,"cashierInfo":{...}}
    assert protocol.keyed(requests.open, K) == {
        "sessionKey": K, "command": "OpenCheck", "checkType": 0, "taxSystem": 0, "printDoc": True,
        "cashierInfo": {"cashierName": "Иванов И.И.", "cashierINN": "500100732259"}}
    # 3. {"sessionKey":K,"command":"AddGoods","productName":"…","qty":10000,"taxCode":6,"productTypeCode":1,
    #     "price":10000}, plus the three fields kktbridge always states: the FFD 1.2 measure (2108), the payment
    #     method (1214, KKTServiceLib marks it required) and the line sum.
    example = {"sessionKey": K, "command": "AddGoods", "productName": "Товар", "qty": 10000, "taxCode": 6,
               "productTypeCode": 1, "price": 10000}
    assert protocol.keyed(requests.goods[0], K) == {**example, "measureUnit": 0, "paymentFormCode": 4, "sum": 10000}
    # 4. {"sessionKey":K,"command":"CloseCheck","payment":{"cash":10000,"ecash":0}}
    assert protocol.keyed(requests.close, K) == {
        "sessionKey": K, "command": "CloseCheck", "payment": {"cash": 10000, "ecash": 0}}
    # 5. CloseSession
    assert protocol.keyed(protocol.simple("CloseSession"), K) == {"sessionKey": K, "command": "CloseSession"}
    assert list(protocol.keyed(requests.open, K))[:2] == ["sessionKey", "command"]


def test_the_public_close_reply_reads_as_a_fiscal_result():
    reply = protocol.check_reply({"result": 0, "shiftNum": 3, "checkNum": 7, "fiscalDocNum": 41,
                                  "fiscalSign": "2918241905", "dateTime": "2019-04-18T21:16:55"})
    result = protocol.parse_document(reply, DocumentKind.RECEIPT, "9282000100072197", "0000000001012345",
                                     total=394326, receipt_type=ReceiptType.SALE)
    assert (result.fd_number, result.fiscal_sign, result.shift_number, result.receipt_number) == (
        41, "2918241905", 3, 7)
    assert result.datetime == datetime(2019, 4, 18, 21, 16, 55) and result.reg_number == "0000000001012345"
    assert result.qr == "t=20190418T2116&s=3943.26&fn=9282000100072197&i=41&fp=2918241905&n=1"


# --- units -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("quantity", "qty"), [("1", 10000), ("1.5", 15000), ("0.001", 10), ("2.0005", 20005),
                                                ("0.0001", 1), ("12345", 123450000)])
def test_quantity_is_an_integer_times_10000(quantity, qty):
    assert protocol.add_goods(item(quantity=quantity))["qty"] == qty


def test_quantity_with_more_than_four_decimals_is_refused_clearly():
    with pytest.raises(FormatError) as info:
        protocol.add_goods(item(quantity="1.00001"))
    assert info.value.code == "quantity_precision" and "1/10000" in info.value.en and "1/10000" in info.value.ru
    with pytest.raises(ValidationFailed) as failed:
        protocol.receipt_requests(receipt(item(), item(quantity="0.12345")))
    assert [f.path for f in failed.value.fields] == ["items[1].quantity"]


def test_money_is_integer_kopecks():
    line = protocol.add_goods(item(12345, "3", vat=VatRate.VAT10, excise=1500))
    assert (line["price"], line["sum"], line["exciseAmount"]) == (12345, 37035, 1500)
    assert protocol.cash_operation(CashOperation(CashOperationKind.CASH_IN, 50000)) == {
        "command": "BringMoney", "cash": 50000}
    assert protocol.cash_operation(CashOperation(CashOperationKind.CASH_OUT, 1, Cashier("Петров"))) == {
        "command": "WithdrawMoney", "cash": 1, "cashierInfo": {"cashierName": "Петров"}}


# --- codes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "check_type"), [(ReceiptType.SALE, 0), (ReceiptType.SALE_RETURN, 1),
                                                   (ReceiptType.PURCHASE, 2), (ReceiptType.PURCHASE_RETURN, 3)])
def test_check_type(kind, check_type):
    assert protocol.open_check(receipt(type=kind))["checkType"] == check_type
    assert protocol.receipt_type_of(check_type) is kind


@pytest.mark.parametrize(("taxation", "ordinal"), [(TaxationSystem.OSN, 0), (TaxationSystem.USN_INCOME, 1),
                                                    (TaxationSystem.USN_INCOME_OUTCOME, 2), (TaxationSystem.ENVD, 3),
                                                    (TaxationSystem.ESHN, 4), (TaxationSystem.PATENT, 5)])
def test_tax_system_is_the_ordinal_not_the_mask(taxation, ordinal):
    assert protocol.open_check(receipt(taxation=taxation))["taxSystem"] == ordinal
    assert protocol.taxation_of(ordinal) is taxation


def test_no_taxation_sends_no_tax_system():
    assert "taxSystem" not in protocol.open_check(receipt())


@pytest.mark.parametrize("rate", list(VatRate))
def test_tax_code_is_the_1199_code(rate):
    assert protocol.add_goods(item(vat=rate))["taxCode"] == int(rate)


def test_no_vat_given_is_sent_as_no_vat():
    assert protocol.add_goods(item(vat=None))["taxCode"] == 6


def test_payment_method_object_and_measure_are_the_ffd_codes():
    line = protocol.add_goods(item(quantity="0.25", payment_method=PaymentMethod.FULL_PREPAYMENT,
                                   payment_object=PaymentObject.SERVICE, measure=Measure.KILOGRAM))
    assert (line["paymentFormCode"], line["productTypeCode"], line["measureUnit"]) == (1, 4, 11)
    assert protocol.add_goods(item(payment_object=PaymentObject.COMMODITY_MARKED,
                                   measure=Measure.OTHER))["productTypeCode"] == 33
    assert protocol.add_goods(item(measure=Measure.LITER))["measureUnit"] == 41


# --- blocks ------------------------------------------------------------------------------------------------


def test_marked_item_carries_mc_info():
    code = b"0104600439931256215ABC\x1d91EE06\x1d92abcd"
    line = protocol.add_goods(item(payment_object=PaymentObject.COMMODITY_MARKED,
                                   marking=MarkingCode(code, code_type=256, processing_mode=0, planned_status=1,
                                                       fraction="1/4")))
    assert line["mcInfo"] == {"mc": base64.b64encode(code).decode(), "processingMode": 0, "plannedStatus": 1,
                              "part": {"numerator": 1, "denominator": 4}}
    assert "markingCode" not in line and "nomenclatureCode" not in line


def test_agent_and_supplier():
    agent = AgentInfo(AgentType.PAYING_AGENT, paying_phones=("+79001234567",), operator_phones=("+74951234567",))
    supplier = Supplier(name="ООО Поставщик", inn="7707083893", phones=("+79007654321",))
    line = protocol.add_goods(item(agent=agent, supplier=supplier))
    assert line["agent"] == {"code": 2, "payingPhone": ["+79001234567"], "operatorPhone": ["+74951234567"],
                             "supplierPhone": ["+79007654321"], "supplierINN": "7707083893",
                             "supplierName": "ООО Поставщик"}
    bank = AgentInfo(AgentType.BANK_PAYING_AGENT, paying_operation="Перевод", transfer_operator_name="Банк",
                     transfer_operator_inn="7707083893", transfer_operator_address="Москва",
                     transfer_operator_phones=("+74950000000",))
    assert protocol.agent_info(bank, None) == {
        "code": 0, "payingOp": "Перевод", "transfName": "Банк", "transfINN": "7707083893",
        "transfAddress": "Москва", "transfPhone": ["+74950000000"]}
    assert protocol.agent_info(AgentInfo(AgentType.ANOTHER), None) == {"code": 6}
    with pytest.raises(FormatError):
        protocol.agent_info(AgentInfo(AgentType.ATTORNEY | AgentType.ANOTHER), None)


def test_receipt_level_agent_goes_to_lines_without_their_own():
    own = AgentInfo(AgentType.ATTORNEY)
    shared = AgentInfo(AgentType.COMMISSION_AGENT)
    requests = protocol.receipt_requests(receipt(item(agent=own), item(), agent=shared,
                                                 supplier=Supplier(inn="7707083893")))
    assert [g["agent"]["code"] for g in requests.goods] == [4, 5]
    assert all(g["agent"]["supplierINN"] == "7707083893" for g in requests.goods)


def test_industry_requisites_with_the_services_date_form():
    requisite = IndustryRequisite("030", "26.03.2022", "477", "mode=horeca")
    line = protocol.add_goods(item(industry=(requisite,)))
    assert line["industryAttribute"] == [{"idFOIV": "030", "docDate": "2022-03-26", "docNum": "477",
                                          "value": "mode=horeca"}]
    assert protocol.industry_of(line["industryAttribute"][0]) == requisite
    assert protocol.open_check(receipt(industry=(requisite,)))["industryInfo"] == line["industryAttribute"]


def test_buyer_and_cashier():
    buyer = Buyer(contact="buyer@example.com", name="ООО Покупатель", inn="7707083893", birth_date="01.02.1990",
                  citizenship="643", document_code="21", document_data="4510 123456", address="Москва")
    sale = receipt(buyer=buyer, cashier=Cashier("Кассир"), electronically=True, additional_info="BSO-1",
                   internet=True, time_zone=2)
    opening = protocol.open_check(sale)
    assert opening["buyerInfo"] == {"buyerName": "ООО Покупатель", "buyerINN": "7707083893",
                                    "birthday": "1990-02-01", "citizenship": "643", "docType": 21,
                                    "docData": "4510 123456", "address": "Москва"}
    assert opening["cashierInfo"] == {"cashierName": "Кассир"} and opening["printDoc"] is False
    assert (opening["additionalProps"], opening["internet"], opening["timeZone"]) == ("BSO-1", True, 2)
    assert protocol.close_check(sale)["sendCheckTo"] == "buyer@example.com"
    assert protocol.buyer_of(opening["buyerInfo"], "buyer@example.com") == buyer
    assert "buyerInfo" not in protocol.open_check(receipt(buyer=Buyer(contact="+79001234567")))


def test_close_check_payment_fields():
    paid = Payments(cash=100, electronic=200, prepayment=300, credit=400, other=500)
    request = protocol.close_check(receipt(item(1500), payments=paid))
    assert request["payment"] == {"cash": 100, "ecash": 200, "prepayment": 300, "credit": 400, "consideration": 500}
    assert protocol.payments_of(request["payment"]) == paid
    assert protocol.close_check(receipt(item(1500), payments=Payments(electronic=1500)))["payment"] == {
        "cash": 0, "ecash": 1500}
    with pytest.raises(ValueError):
        protocol.payments_of({"bitcoin": 1})


def test_shift_and_report_requests():
    assert protocol.open_shift(Cashier("Иванов", "500100732259")) == {
        "command": "OpenShift", "printDoc": True, "cashierInfo": {"cashierName": "Иванов",
                                                                  "cashierINN": "500100732259"}}
    assert protocol.close_shift() == {"command": "CloseShift", "printDoc": True}
    assert protocol.print_report() == {"command": "PrintReport", "reportCode": 1}
    assert protocol.print_text("Слип") == {"command": "PrintText", "text": "Слип"}
    assert protocol.open_session("/dev/ttyACM0", "119F", 57600, "00106100000001") == {
        "command": "OpenSession", "portName": "/dev/ttyACM0", "model": "119F", "baudRate": 57600,
        "serialNumber": "00106100000001"}
    with pytest.raises(FormatError):
        protocol.open_session("COM1", "180F")


def test_add_goods_reads_back_to_the_same_item():
    rich = item(11050, "2.5", name="Сыр «Российский»", vat=VatRate.VAT10, payment_method=PaymentMethod.ADVANCE,
                payment_object=PaymentObject.EXCISE, measure=Measure.KILOGRAM, additional_info="партия 7",
                country_code="643", customs_declaration="10702070/010120/0000001", excise=100,
                nomenclature_code=b"\x44\x4d\x01", industry=(IndustryRequisite("030", "26.03.2022", "477", "x"),),
                marking=MarkingCode(b"010460043993125621JgXJ5.T", processing_mode=0, planned_status=2,
                                    fraction="1/2"),
                agent=AgentInfo(AgentType.PAYING_AGENT, paying_phones=("+79001234567",)),
                supplier=Supplier(name="ООО Сыр", inn="7707083893", phones=("+79000000000",)))
    assert protocol.item_of(protocol.add_goods(rich)) == rich


# --- replies -----------------------------------------------------------------------------------------------


def test_status_reply():
    reply = protocol.check_reply({
        "result": 0, "description": "", "dateTime": "2024-05-06T10:11:12", "paperPresence": False,
        "shiftInfo": {"isOpen": True, "is24Expired": True, "num": 12, "lastOpen": "2024-05-05T09:00:00",
                      "cash": 150000},
        "checkInfo": {"isOpen": True, "num": 4, "goodsQty": 2},
        "fnInfo": {"status": 3, "fnNum": "9999078900012345", "unsignedDocs": {"qty": 5},
                   "lastDoc": {"num": 77, "dateTime": "2024-05-06T10:00:00", "fiscalSign": "123", "docType": 3,
                               "shiftNum": 12, "checkNum": 4, "checkType": 1, "sum": 2500}},
    })
    status = protocol.parse_status(reply)
    assert (status.shift_open, status.shift_expired, status.shift_number, status.paper) == (True, True, 12, False)
    assert (status.receipt_open, status.receipt_number, status.goods, status.cash) == (True, 4, 2, 150000)
    assert (status.fn_number, status.unsent, status.last_fd_number) == ("9999078900012345", 5, 77)
    assert status.shift_opened_at == datetime(2024, 5, 5, 9)
    result = status.last.to_result("9999078900012345", "1")
    assert (result.kind, result.fiscal_sign, result.total, result.receipt_type, result.receipt_number) == (
        DocumentKind.RECEIPT, "123", 2500, ReceiptType.SALE_RETURN, 4)


def test_last_document_fields_round_trip():
    status = protocol.parse_status({"dateTime": "2024-05-06T10:11:12", "shiftInfo": {"isOpen": False},
                                    "fnInfo": {"fnNum": "1"}})
    assert status.last is None and status.last_fd_number == 0
    public_only = protocol.parse_last_document({"num": 5, "dateTime": "2024-05-06T10:00:00"})
    assert public_only.fd_number == 5
    with pytest.raises(DeviceError) as info:
        public_only.to_result("1")
    assert info.value.code == "not_supported"


def test_malformed_replies_are_device_errors():
    with pytest.raises(DeviceError) as info:
        protocol.parse_status({"result": 0})
    assert info.value.code == "device_error" and "GetStatus" in info.value.device_text
    with pytest.raises(DeviceError):
        protocol.check_reply(["not", "an", "object"])
    with pytest.raises(DeviceError):
        protocol.parse_session({"result": 0})


def test_errors_keep_the_services_code_and_description():
    with pytest.raises(DeviceError) as info:
        protocol.check_reply({"result": protocol.error_code("no_paper"), "description": "Нет бумаги в принтере"})
    assert info.value.code == "no_paper" and info.value.retryable
    assert info.value.device_code == 101 and info.value.device_text == "Нет бумаги в принтере"
    unknown = protocol.mercury_error(9999, "Что-то новое")
    assert unknown.code == "device_error" and unknown.device_code == 9999 and unknown.device_text == "Что-то новое"
    assert protocol.mercury_error(9999).device_text == "Ошибка службы ККТ Меркурий 9999"


@pytest.mark.parametrize(("name", "code"), [
    ("no_paper", "no_paper"), ("cover_open", "cover_open"), ("shift_closed", "shift_closed"),
    ("shift_open", "shift_open"), ("shift_expired", "shift_expired"), ("receipt_open", "receipt_open"),
    ("receipt_closed", "receipt_closed"), ("not_enough_cash", "not_enough_cash"), ("bad_value", "bad_value"),
    ("underpaid", "underpaid"), ("unknown_command", "not_supported")])
def test_the_common_situations_map_to_kktbridge_codes(name, code):
    reply = protocol.error_reply(name, "подробности")
    assert reply["description"].endswith(": подробности")
    with pytest.raises(DeviceError) as info:
        protocol.check_reply(reply)
    assert info.value.code == code and info.value.device_code == protocol.error_code(name)


def test_link_and_unknown_outcome_errors_have_their_classes():
    assert isinstance(protocol.mercury_error(protocol.error_code("port_unavailable")), LinkError)
    assert isinstance(protocol.mercury_error(protocol.error_code("no_answer")), OutcomeUnknown)
    assert protocol.is_session_error(protocol.error_reply("session_unknown"))
    assert not protocol.is_session_error(protocol.ok_reply())


def test_the_unverified_error_table_is_consistent():
    codes = [code for code, _, _ in UNVERIFIED["ERRORS"].values()]
    assert len(codes) == len(set(codes)) and 0 not in codes
    from kktbridge.devices.errors import _TEXTS

    assert all(kind in _TEXTS for _, _, kind in UNVERIFIED["ERRORS"].values())
