"""A receipt through ATOL's 0xE6 line and 0xE8 requisites and back: nothing lost on the way."""

from kktbridge.devices import tlv
from kktbridge.devices.atol.requisites import ReceiptRequisites, item_from, item_requisites, receipt_requisites
from kktbridge.fiscal import (
    AgentInfo,
    AgentType,
    Buyer,
    Cashier,
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
    VatRate,
)


def back(item: Item) -> Item:
    line, tlvs = item_requisites(item)
    line = type(line).decode(line.encode())  # through the wire bytes
    return item_from(line, [t for raw in tlvs for t in tlv.decode(raw)])


def test_plain_item():
    item = Item(name="Хлеб", price=5500, quantity=Quantity.parse("2"), vat=VatRate.VAT10)
    assert back(item) == item


def test_rich_item_survives():
    item = Item(
        name="Очень длинное наименование товара, которое не помещается в шестьдесят четыре байта поля 0xE6",
        price=12345, quantity=Quantity.parse("1.2345"), vat=VatRate.VAT22_122,
        payment_method=PaymentMethod.PREPAYMENT, payment_object=PaymentObject.COMMODITY_MARKED, measure=Measure.KILOGRAM,
        additional_info="доп", country_code="643", customs_declaration="11/141117/0004455", excise=344,
        marking=MarkingCode(code=b"0104603586014674215012516640247\x1d91EE10", code_type=256, processing_mode=0,
                            planned_status=2, fraction="1/10"),
        industry=(IndustryRequisite("030", "21.11.2023", "1944", "UUID=x&Time=1"),),
        agent=AgentInfo(agent_type=AgentType.PAYING_AGENT, paying_operation="оп", paying_phones=("+7111",),
                        transfer_operator_inn="7707083893"),
        supplier=Supplier(name="ООО Ромашка", inn="7707083893", phones=("+7999",)),
    )
    assert back(item) == item


def test_receipt_requisites():
    receipt = Receipt(type=ReceiptType.SALE, items=(), payments=Payments(), taxation=TaxationSystem.USN_INCOME,
                      cashier=Cashier("Пупкин", "500100732259"),
                      buyer=Buyer(contact="a@b.ru", name="Иван", inn="7707083893"), time_zone=2,
                      industry=(IndustryRequisite("001", "25.07.2025", "001", "x"),))
    gathered = ReceiptRequisites()
    for raw in receipt_requisites(receipt):
        for t in tlv.decode(raw):
            gathered.add(t)
    assert gathered.cashier == Cashier("Пупкин", "500100732259")
    assert gathered.taxation is TaxationSystem.USN_INCOME
    assert gathered.buyer == Buyer(contact="a@b.ru", name="Иван", inn="7707083893")
    assert gathered.extra["time_zone"] == 2
    assert gathered.extra["industry"] == [{"foiv_id": "001", "document_date": "25.07.2025", "document_number": "001",
                                           "value": "x"}]
