"""The receipt of kktReceiptFiscalization: tag rule, item shapes, tolerances, defaults, errors with paths."""

import base64
import json

from kktbridge.bitapi import ReceiptDefaults
from kktbridge.fiscal import (
    AgentType,
    Measure,
    PaymentMethod,
    PaymentObject,
    Payments,
    ReceiptType,
    TaxationSystem,
    VatRate,
)


def receipt_of(packet):
    return packet.commands[0].receipt


def test_purchases_list(decode, receipt_packet, item):
    r = receipt_of(decode(receipt_packet([item(), item(productName_1030="второй", price_1079=0)])))
    assert [i.name for i in r.items] == ["товар 123", "второй"]
    assert r.items[0].price == 1100 and r.items[0].vat is VatRate.NONE
    assert r.items[0].measure is Measure.PIECE and r.items[0].payment_method is PaymentMethod.FULL_PAYMENT
    assert r.type is ReceiptType.SALE and r.taxation is TaxationSystem.USN_INCOME
    assert r.payments == Payments(cash=1100)


def test_items_as_1059_list_and_object(decode, receipt_packet, item):
    packet = receipt_packet(None, **{"purchases": None, "1059": [item(), item(price_1079=0)]})
    assert len(receipt_of(decode(packet)).items) == 2
    packet = receipt_packet(None, **{"purchases": None, "1059": item()})
    assert len(receipt_of(decode(packet)).items) == 1


def test_items_as_prefixed_1059_keys_in_order(decode, receipt_packet, item):
    data = {"purchases": None, "purchase1_1059": item(productName_1030="a"), "p1_1059": item(productName_1030="b",
            price_1079=0), "pp_1059": item(productName_1030="c", price_1079=0)}
    assert [i.name for i in receipt_of(decode(receipt_packet(None, **data))).items] == ["a", "b", "c"]


def test_repeated_prefixed_item_keys_are_all_items(decode, item):
    text = ('[{"name":"x","type":"kktReceiptFiscalization","data":{"receiptType_1054":1,'
            '"pp_1059":' + json.dumps(item(price_1079=5)) + ',"pp_1059":' + json.dumps(item(price_1079=6)) +
            ',"payments":{"cash_1031":11}}}]')
    assert [i.price for i in receipt_of(decode(text)).items] == [500, 600]


def test_tag_is_after_the_last_underscore_and_prefix_is_a_label(decode, receipt_packet, item):
    packet = receipt_packet([item(**{"productName_1030": None, "my_long_item_name_1030": "по тегу"})],
                            payments={"prepayment_1216": 5.00, "credith_1217": 3.00, "consideration_1215": 3.00})
    r = receipt_of(decode(packet))
    assert r.items[0].name == "по тегу"
    assert r.payments == Payments(credit=500, other=300, prepayment=300)  # tags win over the prefixes


def test_payments_beside_the_items(decode, receipt_packet):
    r = receipt_of(decode(receipt_packet(payments=None, cash_1031=5, ecash_1081=6)))
    assert r.payments == Payments(cash=500, electronic=600)


def test_duplicate_key_last_wins(decode):
    text = ('[{"name":"x","type":"kktReceiptFiscalization","data":{"receiptType_1054":1,"purchases":[{'
            '"productName_1030":"m","price_1079":1,"qty_1023":1,"tax_1199":6,"mrkcode_2000":"MDEwNDYw",'
            '"imcType_2100":3,"imcType_2100":256}],"payments":{"cash_1031":1}}}]')
    assert receipt_of(decode(text)).items[0].marking.code_type == 256


def test_printed_unless_told_otherwise(decode, receipt_packet):
    assert receipt_of(decode(receipt_packet(printDoc=True))).electronically is False
    contact = {"sendToEmail_1008": "+79991234567"}
    assert receipt_of(decode(receipt_packet(printDoc=False, **contact))).electronically is True
    assert receipt_of(decode(receipt_packet(printDoc=None, electronically=True, **contact))).electronically is True
    assert receipt_of(decode(receipt_packet(printDoc=None, electronically="false"))).electronically is False
    assert receipt_of(decode(receipt_packet(printDoc=None))).electronically is False


def test_print_doc_conflict(refusal, receipt_packet):
    assert refusal(receipt_packet(printDoc=True, electronically=True, sendToEmail_1008="a@b.ru")) == {
        "[0].data.electronically": "conflict"}


def test_buyer_fields(decode, receipt_packet):
    r = receipt_of(decode(receipt_packet(sendToEmail_1008="kkmspb2008@yandex.ru")))
    assert r.buyer.contact == "kkmspb2008@yandex.ru"
    client = {"email_1008": "x@y.ru", "name_1227": "Иван", "inn_1228": "7707083893", "birthDate_1243": "01.01.1970",
              "citizenship_1244": "643", "identityDocumentCode_1245": "21", "identityDocumentData_1246": "4510 123456",
              "address_1254": "Москва"}
    r = receipt_of(decode(receipt_packet(clientInfo=client)))
    assert (r.buyer.contact, r.buyer.name, r.buyer.inn, r.buyer.address) == ("x@y.ru", "Иван", "7707083893", "Москва")
    assert r.buyer.has_details()


def test_buyer_errors_name_the_key_sent(refusal, receipt_packet):
    assert refusal(receipt_packet(clientInfo={"email_1008": "not-an-email", "inn_1228": "1234567890"})) == {
        "[0].data.clientInfo.email_1008": "format", "[0].data.clientInfo.inn_1228": "inn"}
    assert refusal(receipt_packet(sendToEmail_1008="@@")) == {"[0].data.sendToEmail_1008": "format"}


def test_industry_requisites(decode, receipt_packet, item):
    fields = {"a_1262": "001", "b_1263": "25.07.2025", "c_1264": "001", "d_1265": "jkersgdhfk8349544"}
    r = receipt_of(decode(receipt_packet(**{"1261": [fields]})))
    assert r.industry[0].foiv_id == "001" and r.industry[0].value == "jkersgdhfk8349544"
    r = receipt_of(decode(receipt_packet(foiv={"idFOIV_1262": "1", "foivDocDate_1263": "14.12.2018",
                                               "foivDocNum_1264": "003", "foivValue_1265": "tm=mdlp"})))
    assert r.industry[0].foiv_id == "001"  # "атоловский вариант 1.05": one object, not a list
    it = item(industryInfo_1261=[{"foivId_1262": "030", "foivDate_1263": "21.11.2023",
                                  "foidDocNumber_1264": "1944", "industryAttribute_1265": "UUID=x&Time=1"}])
    r = receipt_of(decode(receipt_packet([it])))
    assert r.items[0].industry[0].document_number == "1944"


def test_industry_requisite_missing_parts(refusal, receipt_packet):
    assert refusal(receipt_packet(**{"1261": [{"a_1262": "001"}]})) == {
        "[0].data.1261[0].foivDate_1263": "required", "[0].data.1261[0].foivDocNumber_1264": "required",
        "[0].data.1261[0].industryAttribute_1265": "required"}


def test_marking(decode, receipt_packet, item):
    raw = b"0104603586014674215012516640247\x1d91EE10\x1d92EC9TS/3CdrTuO7M5+9nrNhy8o0zq2CHV74v7qv77+Pk="
    it = item(mrkcode_2000=base64.b64encode(raw).decode(), imcType_2100=256, imcModeProcessing_2102=0,
              itemEstimatedStatus_2003=1, productTypeCode_1212=33)
    m = receipt_of(decode(receipt_packet([it]))).items[0].marking
    assert (m.code, m.code_type, m.processing_mode, m.planned_status) == (raw, 256, 0, 1)
    nested = item(markirovka={"markingCode_2000": base64.b64encode(raw).decode(), "processingMode_2102": 0,
                              "plannedStatus_2003": 1, "part_1291": "1/10"})
    m = receipt_of(decode(receipt_packet([nested]))).items[0].marking
    assert m.code == raw and m.fraction == "1/10"
    as_text = item(mrkcode_2000=raw.decode())
    assert receipt_of(decode(receipt_packet([as_text]))).items[0].marking.code == raw


def test_marking_not_base64(refusal, receipt_packet, item):
    assert refusal(receipt_packet([item(mrkcode_2000="не base64!")])) == {"[0].data.purchases[0].mrkcode_2000": "format"}


def test_agent_block(decode, receipt_packet, item):
    agent = {"agentCode_1222": 4, "payingOp_1044": "оп. №123", "payingPhone_1073": "+712345678",
             "supplierPhone_1171": "+79990000000", "supplierINN_1226": "7707083893", "supplierName_1225": "ООО Ромашка",
             "transfName_1026": "ООО Оператор", "transfINN_1016": "7707083893", "transfPhone_1075": ["+7111", "+7222"]}
    r = receipt_of(decode(receipt_packet([item(agent=agent)])))
    a, s = r.items[0].agent, r.items[0].supplier
    assert a.agent_type is AgentType.PAYING_AGENT and a.paying_phones == ("+712345678",)
    assert a.transfer_operator_phones == ("+7111", "+7222")
    assert (s.name, s.inn, s.phones) == ("ООО Ромашка", "7707083893", ("+79990000000",))


def test_agent_supplier_inn_error_path(refusal, receipt_packet, item):
    agent = {"agentCode_1222": 4, "supplierINN_1226": "7878787878", "supplierName_1225": "ООО"}
    assert refusal(receipt_packet([item(agent=agent)])) == {"[0].data.purchases[0].agent.supplierINN_1226": "inn"}


def test_amount_zero_means_compute(decode, receipt_packet, item):
    r = receipt_of(decode(receipt_packet([item(price_1079=1.23, qty_1023=2.345, amount_1043=0)],
                                         payments={"cash_1031": 1000})))
    assert r.items[0].amount == 288 and r.change == 100000 - 288


def test_amount_that_disagrees_is_refused_when_strict(refusal, receipt_packet, item):
    """Lenient decoding lets the register's price × quantity stand (tests/bitapi/test_compat.py)."""
    assert refusal(receipt_packet([item(price_1079=1.23, qty_1023=2.345, amount_1043=2.89)],
                                  payments={"cash_1031": 10}), strict=True) == {
        "[0].data.purchases[0].amount_1043": "sum_mismatch"}


def test_defaults_fill_what_the_caller_left_out(decode, refusal, receipt_packet, item):
    bare = {"productName_1030": "x", "price_1079": 11, "qty_1023": 1}
    packet = receipt_packet([bare], taxationType_1055=None)
    assert refusal(packet) == {"[0].data.purchases[0].tax_1199": "required"}
    r = receipt_of(decode(packet, defaults=ReceiptDefaults(vat=VatRate.VAT22, taxation=TaxationSystem.OSN,
                                                         payment_object=PaymentObject.SERVICE)))
    assert r.items[0].vat is VatRate.VAT22 and r.taxation is TaxationSystem.OSN
    assert r.items[0].payment_object is PaymentObject.SERVICE


def test_missing_mandatory_tags_are_named(refusal, receipt_packet):
    assert refusal(receipt_packet([{"tax_1199": 6}], receiptType_1054=None)) == {
        "[0].data.receiptType_1054": "required",
        "[0].data.purchases[0].productName_1030": "required",
        "[0].data.purchases[0].price_1079": "required",
        "[0].data.purchases[0].qty_1023": "required",
    }


def test_wrong_value_types(refusal, receipt_packet, item):
    assert refusal(receipt_packet(receiptType_1054=True, purchases=None)) == {
        "[0].data.receiptType_1054": "type", "[0].data.purchases": "required"}
    assert refusal(receipt_packet([item(price_1079="дорого", qty_1023=[1], tax_1199="six")])) == {
        "[0].data.purchases[0].price_1079": "money_format", "[0].data.purchases[0].qty_1023": "quantity_format",
        "[0].data.purchases[0].tax_1199": "type"}
    assert refusal(receipt_packet("not a list")) == {"[0].data.purchases": "type"}
    assert refusal(receipt_packet(["not an object"])) == {"[0].data.purchases[0]": "type"}


def test_errors_of_other_lines_still_found_when_one_line_is_bad(refusal, receipt_packet, item):
    bad = receipt_packet([item(price_1079="x"), item(productName_1030="я" * 129, price_1079=0)])
    assert refusal(bad) == {"[0].data.purchases[0].price_1079": "money_format",
                            "[0].data.purchases[1].productName_1030": "too_long"}


def test_taxation_values(decode, refusal, receipt_packet):
    for sent, expected in [(0, TaxationSystem.OSN), (1, TaxationSystem.USN_INCOME), (5, TaxationSystem.PATENT),
                           (32, TaxationSystem.PATENT), ("2", TaxationSystem.USN_INCOME_OUTCOME)]:
        assert receipt_of(decode(receipt_packet(taxationType_1055=sent))).taxation is expected
    assert refusal(receipt_packet(taxationType_1055=6)) == {"[0].data.taxationType_1055": "code"}


def test_receipt_types(decode, refusal, receipt_packet):
    assert receipt_of(decode(receipt_packet(receiptType_1054=0))).type is ReceiptType.SALE  # API 1.1
    assert receipt_of(decode(receipt_packet(receiptType_1054=2))).type is ReceiptType.SALE_RETURN
    assert refusal(receipt_packet(receiptType_1054=5)) == {"[0].data.receiptType_1054": "code"}


def test_php_escapes_and_numbers_as_strings(decode, receipt_packet, item):
    text = json.dumps(receipt_packet([item(price_1079="11.00", qty_1023="1", tax_1199="6")]))  # \uXXXX escapes
    r = receipt_of(decode(text))
    assert r.items[0].name == "товар 123" and r.items[0].price == 1100 and r.items[0].vat is VatRate.NONE


def test_null_values_are_absent(decode, receipt_packet, item):
    r = receipt_of(decode(receipt_packet([item(additionalAttribut_1191=None)], sendToEmail_1008=None)))
    assert r.buyer is None and r.items[0].additional_info is None
    text = json.dumps(receipt_packet()).replace('"printDoc": true', '"printDoc": true, "sendToEmail_1008": null')
    assert receipt_of(decode(text)).buyer is None


def test_country_code_padded_and_excise(decode, receipt_packet, item):
    r = receipt_of(decode(receipt_packet([item(countryOfOrigin_1230=51, exciseAmount_1229=3.44,
                                               customsDeclaration_1231="11/141117/0004455")])))
    assert r.items[0].country_code == "051" and r.items[0].excise == 344
    assert r.items[0].customs_declaration == "11/141117/0004455"


def test_device_defaults_keep_their_form_between_driver_and_cloud_and_garbage_leaves_the_plain_ones():
    from kktbridge.fiscal import Measure, PaymentMethod, PaymentObject

    sent = ReceiptDefaults(taxation=TaxationSystem.PATENT, vat=VatRate.VAT10, payment_method=PaymentMethod.CREDIT,
                           payment_object=PaymentObject.SERVICE, measure=Measure.KILOGRAM, time_zone=3)
    assert ReceiptDefaults.from_json(sent.to_json()) == sent
    assert ReceiptDefaults.from_json(ReceiptDefaults().to_json()) == ReceiptDefaults()
    for garbage in (None, [], "x", {"vat": 99, "taxation": True, "measure": "0", "timeZone": 12,
                                    "paymentMethod": 2 ** 80, "paymentObject": -1}):
        assert ReceiptDefaults.from_json(garbage) == ReceiptDefaults()
