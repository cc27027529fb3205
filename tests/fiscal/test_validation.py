"""Validation: every rule a register would enforce later, all problems reported at once, with paths."""

from datetime import date

import pytest

from kktbridge.fiscal import (
    AgentInfo,
    AgentType,
    Buyer,
    CashOperation,
    CashOperationKind,
    Cashier,
    Item,
    Limits,
    MarkingCode,
    Payments,
    Quantity,
    Receipt,
    ReceiptType,
    Supplier,
    ValidationFailed,
    VatRate,
    check_receipt,
    is_valid_contact,
    is_valid_inn,
    validate_cash_operation,
    validate_receipt,
)

TODAY = date(2026, 11, 23)


def item(name="Товар", price=1000, qty="1", vat=VatRate.NONE, **kw) -> Item:
    return Item(name=name, price=price, quantity=Quantity.parse(qty), vat=vat, **kw)


def receipt(items=None, payments=None, **kw) -> Receipt:
    items = items if items is not None else (item(),)
    total = sum(i.amount for i in items)
    return Receipt(type=kw.pop("type", ReceiptType.SALE), items=tuple(items),
                   payments=payments if payments is not None else Payments(cash=total), **kw)


def problems(r: Receipt, **kw) -> dict[str, str]:
    return {e.path: e.code for e in validate_receipt(r, on_date=kw.pop("on_date", TODAY), **kw)}


def test_good_receipt_has_no_problems():
    assert problems(receipt()) == {}
    assert check_receipt(receipt()) is not None


def test_item_sum_is_price_times_quantity():
    it = item(price=123, qty="2.345")
    assert it.amount == 288
    assert problems(receipt([it], Payments(cash=288))) == {}
    wrong = item(price=123, qty="2.345", amount=300)
    errors = validate_receipt(receipt([wrong], Payments(cash=300)), on_date=TODAY)
    assert [e.code for e in errors] == ["sum_mismatch"]
    assert errors[0].path == "items[0].amount"
    assert "2.88" in errors[0].ru and "2.88" in errors[0].en


def test_payments_must_cover_total():
    assert problems(receipt([item(price=1000)], Payments(cash=999))) == {"payments": "underpaid"}


def test_change_only_from_cash():
    assert problems(receipt([item(price=1000)], Payments(cash=500, electronic=600))) == {}
    assert receipt([item(price=1000)], Payments(cash=5000)).change == 4000
    bad = receipt([item(price=1000)], Payments(electronic=1200))
    assert problems(bad) == {"payments.electronic": "non_cash_above_total"}
    bad = receipt([item(price=1000)], Payments(prepayment=700, credit=700))
    assert problems(bad) == {"payments": "non_cash_above_total"}


def test_zero_total_paid_in_cash_is_all_change():
    r = receipt([item(price=0)], Payments(cash=100000))
    assert problems(r) == {} and r.change == 100000


def test_name_rules():
    assert problems(receipt([item(name="x" * 128)])) == {}
    assert problems(receipt([item(name="x" * 129)])) == {"items[0].name": "too_long"}
    assert problems(receipt([item(name="  ")])) == {"items[0].name": "required"}


def test_item_count_limit():
    many = [item(price=1) for _ in range(101)]
    assert problems(receipt(many)) == {"items": "too_many"}
    assert problems(receipt(many), limits=Limits(max_items=250)) == {}
    assert problems(receipt([])) == {"items": "required"}


def test_vat_required_and_dates():
    assert problems(receipt([item(vat=None)])) == {"items[0].vat": "required"}
    assert problems(receipt([item(vat=VatRate.VAT22)]), on_date=date(2025, 12, 31)) == {
        "items[0].vat": "vat_not_yet"}
    assert problems(receipt([item(vat=VatRate.VAT22)])) == {}
    assert problems(receipt([item(vat=VatRate.VAT20)])) == {"items[0].vat": "vat_expired"}
    assert problems(receipt([item(vat=VatRate.VAT20)], type=ReceiptType.SALE_RETURN)) == {}
    assert problems(receipt([item(vat=VatRate.VAT20)]), on_date=date(2025, 6, 1)) == {}
    assert problems(receipt([item(vat=VatRate.VAT5_105)]), on_date=date(2024, 12, 31)) == {
        "items[0].vat": "vat_not_yet"}
    assert validate_receipt(receipt([item(vat=VatRate.VAT20)])) == []  # no date given: no date rules


@pytest.mark.parametrize("inn, ok", [
    ("7707083893", True), ("500100732259", True), ("7830002293", True), ("7707083894", False),
    ("500100732258", False), ("12345", False), ("77070838931", False), ("77O7083893", False), ("", False),
    ("٧٧٠٧٠٨٣٨٩٣", False),
])
def test_inn_checksum(inn, ok):
    assert is_valid_inn(inn) is ok


def test_inn_fields():
    assert problems(receipt(cashier=Cashier("Иванов", "500100732259"))) == {}
    assert problems(receipt(cashier=Cashier("Иванов", "7707083893"))) == {"cashier.inn": "inn"}  # a person: 12
    assert problems(receipt(cashier=Cashier("Иванов", None))) == {}
    assert problems(receipt(buyer=Buyer(inn="7707083894"))) == {"buyer.inn": "inn"}
    assert problems(receipt([item(supplier=Supplier(name="ООО", inn="7707083894"))])) == {
        "items[0].supplier.inn": "inn"}


@pytest.mark.parametrize("contact, ok", [
    ("kkmspb2008@yandex.ru", True), ("+79991234567", True), ("8 (999) 123-45-67", True), ("79991234567", True),
    ("a@b", False), ("mail@", False), ("12345", False), ("+7999abc4567", False), ("two@@at.ru", False),
])
def test_contact_form(contact, ok):
    assert is_valid_contact(contact) is ok
    expected = {} if ok else {"buyer.contact": "format"}
    assert problems(receipt(buyer=Buyer(contact=contact))) == expected


def test_electronic_receipt_needs_a_contact():
    assert problems(receipt(electronically=True)) == {"buyer.contact": "required"}
    assert problems(receipt(electronically=True, buyer=Buyer(contact="a@b.ru"))) == {}


def test_all_problems_at_once():
    bad = receipt(
        [item(name="", price=100, amount=5), item(vat=None)],
        Payments(electronic=99999),
        cashier=Cashier("x" * 65, "1"),
        buyer=Buyer(contact="nope"),
        time_zone=12,
    )
    found = problems(bad)
    assert found == {
        "items[0].name": "required",
        "items[0].amount": "sum_mismatch",
        "items[1].vat": "required",
        "payments.electronic": "non_cash_above_total",
        "cashier.name": "too_long",
        "cashier.inn": "inn",
        "buyer.contact": "format",
        "time_zone": "range",
    }
    with pytest.raises(ValidationFailed) as info:
        check_receipt(bad, on_date=TODAY)
    assert len(info.value.fields) == 8
    assert "8 полей" in info.value.ru and "8 fields" in info.value.en


def test_paths_come_from_the_caller():
    wire = {("items", 0, "price"): "data.purchases[0].price_1079"}
    errors = validate_receipt(receipt([item(price=5_000_000_000)]), on_date=TODAY,
                              where=lambda p: wire.get(p, "?"))
    assert [e.path for e in errors] == ["data.purchases[0].price_1079", "?"]


def test_agent_items_need_supplier():
    agent = AgentInfo(agent_type=AgentType.PAYING_AGENT)
    assert problems(receipt([item(agent=agent)])) == {"items[0].supplier": "required"}
    assert problems(receipt([item(agent=agent, supplier=Supplier(name="ООО Ромашка", inn="7707083893"))])) == {}


def test_marking_and_country():
    assert problems(receipt([item(marking=MarkingCode(code=b""))])) == {"items[0].marking.code": "required"}
    assert problems(receipt([item(country_code="RUS")])) == {"items[0].country_code": "format"}
    assert problems(receipt([item(country_code="643")])) == {}


def test_cash_operation():
    ok = CashOperation(CashOperationKind.CASH_IN, 11111, Cashier("Иванов"))
    assert validate_cash_operation(ok) == []
    zero = CashOperation(CashOperationKind.CASH_OUT, 0)
    assert [e.path for e in validate_cash_operation(zero)] == ["amount"]


def test_vat_totals_per_rate():
    r = receipt([item(price=12200, vat=VatRate.VAT22), item(price=11000, vat=VatRate.VAT10),
                 item(price=100, vat=VatRate.VAT22), item(price=500, vat=VatRate.NONE)])
    assert r.vat_totals() == {VatRate.VAT10: 1000, VatRate.NONE: 0, VatRate.VAT22: VatRate.VAT22.amount_of(12300)}
    assert r.total == 23800
