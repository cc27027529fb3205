"""The shared fiscal storage: state machines, numbering, counters, fiscal sign, journal, power loss."""

import json
from datetime import datetime, timedelta

import pytest

from kktbridge.emulators.fncore import FiscalCore, FnCode, FnError, Registration, read_journal
from kktbridge.fiscal import (
    CashOperationKind,
    DocumentKind,
    Item,
    PaymentKind,
    Quantity,
    ReceiptQr,
    ReceiptType,
    TaxationSystem,
    VatRate,
)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 23, 10, 0, 0)

    def __call__(self):
        return self.now


def item(price=1000, qty="1", vat=VatRate.VAT22, name="Товар"):
    return Item(name=name, price=price, quantity=Quantity.parse(qty), vat=vat)


@pytest.fixture
def core(tmp_path):
    return FiscalCore(state_path=tmp_path / "fn.json", journal_path=tmp_path / "journal.jsonl", clock=Clock())


def sell(core, *items, cash=None, **payments):
    core.begin_receipt(ReceiptType.SALE, taxation=TaxationSystem.OSN, cashier={"name": "Иванов"})
    for it in items or (item(),):
        core.add_item(it)
    total = core.receipt.total
    for kind, value in payments.items():
        core.add_payment(PaymentKind[kind.upper()], value)
    core.add_payment(PaymentKind.CASH, total if cash is None else cash)
    return core.close_receipt()


def test_shift_and_receipt_numbering(core):
    opened = core.open_shift({"name": "Иванов"})
    assert (opened.kind, opened.fd_number, opened.shift_number) == (DocumentKind.OPEN_SHIFT, 1, 1)
    first = sell(core, item(12200), item(500, vat=VatRate.NONE))
    second = sell(core)
    assert (first.fd_number, first.receipt_number, first.total) == (2, 1, 12700)
    assert (second.fd_number, second.receipt_number) == (3, 2)
    closed = core.close_shift()
    assert (closed.kind, closed.fd_number, closed.shift_number) == (DocumentKind.CLOSE_SHIFT, 4, 1)
    core.open_shift()
    assert sell(core).receipt_number == 1 and core.shift_number == 2


def test_receipt_qr_and_fiscal_sign(core):
    core.open_shift()
    result = sell(core, item(1100))
    qr = ReceiptQr.parse(result.qr)
    assert qr.fn_number == "9999078900012345" and qr.total == 1100 and qr.fd_number == 2
    assert result.fiscal_sign.isdigit() and 0 <= int(result.fiscal_sign) < 2**32
    assert core.last_result() == result


def test_fiscal_sign_is_deterministic_and_keyed(tmp_path):
    signs = []
    for key in ("a", "a", "b"):
        core = FiscalCore(Registration(sign_key=key), clock=Clock())
        core.open_shift()
        signs.append(sell(core).fiscal_sign)
    assert signs[0] == signs[1] != signs[2]


def test_state_machine_refusals(core):
    with pytest.raises(FnError) as info:
        core.begin_receipt(ReceiptType.SALE)
    assert info.value.code is FnCode.SHIFT_CLOSED
    with pytest.raises(FnError) as info:
        core.close_shift()
    assert info.value.code is FnCode.SHIFT_CLOSED
    core.open_shift()
    with pytest.raises(FnError) as info:
        core.open_shift()
    assert info.value.code is FnCode.SHIFT_OPEN
    with pytest.raises(FnError) as info:
        core.close_receipt()
    assert info.value.code is FnCode.NO_RECEIPT
    core.begin_receipt(ReceiptType.SALE)
    with pytest.raises(FnError) as info:
        core.open_shift()
    assert info.value.code is FnCode.RECEIPT_OPEN
    with pytest.raises(FnError) as info:
        core.close_receipt()
    assert info.value.code is FnCode.NO_ITEMS
    core.add_item(item(1000))
    with pytest.raises(FnError) as info:
        core.add_payment(PaymentKind.ELECTRONIC, 1001)
    assert info.value.code is FnCode.NON_CASH_ABOVE_TOTAL
    assert core.add_payment(PaymentKind.ELECTRONIC, 400) == (600, 0)
    with pytest.raises(FnError) as info:
        core.add_item(item())
    assert info.value.code is FnCode.ITEM_AFTER_PAYMENT
    with pytest.raises(FnError) as info:
        core.close_receipt()
    assert info.value.code is FnCode.UNDERPAID
    assert core.add_payment(PaymentKind.CASH, 1000) == (0, 400)
    result = core.close_receipt()
    assert core.last_document()["change"] == 400 and core.cash == 600 and result.total == 1000


def test_bad_items_and_taxation():
    core = FiscalCore(Registration(taxations=("USN_INCOME",)), clock=Clock())
    core.open_shift()
    with pytest.raises(FnError) as info:
        core.begin_receipt(ReceiptType.SALE, taxation=TaxationSystem.OSN)
    assert info.value.code is FnCode.TAXATION
    core.begin_receipt(ReceiptType.SALE, taxation=TaxationSystem.USN_INCOME)
    with pytest.raises(FnError):
        core.add_item(Item(name="x", price=100, quantity=Quantity.parse(1), vat=VatRate.NONE, amount=99))
    assert core.cancel_receipt() and not core.cancel_receipt()


def test_shift_over_24_hours(core):
    clock = core._clock
    core.open_shift()
    clock.now += timedelta(hours=23, minutes=59)
    sell(core)
    clock.now += timedelta(minutes=2)
    assert core.shift_expired
    with pytest.raises(FnError) as info:
        sell(core)
    assert info.value.code is FnCode.SHIFT_EXPIRED
    core.cancel_receipt()
    core.close_shift()
    core.open_shift()
    assert not core.shift_expired


def test_advance_clock_switch(core):
    core.open_shift()
    core.advance_clock(25 * 3600)
    assert core.shift_expired


def test_cash_and_drawer(core):
    core.open_shift()
    assert core.cash_operation(CashOperationKind.CASH_IN, 5000) == 1
    with pytest.raises(FnError) as info:
        core.cash_operation(CashOperationKind.CASH_OUT, 5001)
    assert info.value.code is FnCode.NOT_ENOUGH_CASH
    core.cash_operation(CashOperationKind.CASH_OUT, 1000)
    sell(core, item(1000), cash=5000)
    assert core.cash == 5000
    core.begin_receipt(ReceiptType.SALE_RETURN)
    core.add_item(item(10000))
    core.add_payment(PaymentKind.CASH, 10000)
    with pytest.raises(FnError) as info:
        core.close_receipt()
    assert info.value.code is FnCode.NOT_ENOUGH_CASH


def test_x_report_and_z_totals(core):
    core.open_shift()
    sell(core, item(1000))
    sell(core, item(2000))
    assert core.x_report() == {"shift": 1, "open": True, "receipts": 2, "totals": {"SALE": 3000}, "cash": 3000}
    core.close_shift()
    closing = core.last_document()
    assert closing["receipts"] == 2 and closing["totals"] == {"SALE": 3000}


def test_journal_lines(core, tmp_path):
    core.open_shift()
    core.cash_operation(CashOperationKind.CASH_IN, 100)
    sell(core, item(12200), item(500, vat=VatRate.NONE), cash=12000, electronic=700)
    records = read_journal(tmp_path / "journal.jsonl")
    assert [r["doc"] for r in records] == ["open_shift", "cash_in", "receipt"]
    receipt = records[-1]
    assert receipt["fd"] == 2 and receipt["receipt"] == 1 and receipt["total"] == 12700
    assert receipt["payments"] == {"electronic": 700, "cash": 12000} and receipt["vat"] == {"6": 0, "11": 2200}
    assert receipt["items"][0] == {"name": "Товар", "price": 12200, "quantity": "1", "amount": 12200, "vat": 11,
                                   "method": 4, "object": 1, "measure": 0}
    assert records[1]["fd"] is None and records[1]["amount"] == 100


def test_power_loss_continues_numbering(tmp_path):
    paths = {"state_path": tmp_path / "fn.json", "journal_path": tmp_path / "j.jsonl"}
    core = FiscalCore(**paths, clock=Clock())
    core.open_shift()
    sell(core)
    core.begin_receipt(ReceiptType.SALE)  # open when the power fails: lost, like the register's RAM
    core.add_item(item())
    again = FiscalCore(**paths, clock=Clock())
    assert again.receipt is None and again.shift_open and again.last_fd_number == 2
    assert sell(again).fd_number == 3 and again.receipts_in_shift == 2
    assert [r["fd"] for r in read_journal(paths["journal_path"])] == [1, 2, 3]


def test_power_loss_between_state_and_journal_is_repaired(tmp_path):
    paths = {"state_path": tmp_path / "fn.json", "journal_path": tmp_path / "j.jsonl"}
    core = FiscalCore(**paths, clock=Clock())
    core.open_shift()
    sell(core)
    # cut the last journal line as if the power failed after the state write
    lines = paths["journal_path"].read_text(encoding="utf-8").splitlines(keepends=True)
    paths["journal_path"].write_text("".join(lines[:-1]) + lines[-1][:20], encoding="utf-8")
    FiscalCore(**paths, clock=Clock())
    fds = [r["fd"] for r in read_journal(paths["journal_path"])]
    assert fds == [1, 2]
    FiscalCore(**paths, clock=Clock())  # a second start adds nothing more
    assert [r["fd"] for r in read_journal(paths["journal_path"])] == [1, 2]


def test_state_file_is_json(core, tmp_path):
    core.open_shift()
    data = json.loads((tmp_path / "fn.json").read_text(encoding="utf-8"))
    assert data["next_fd"] == 2 and data["shift_open"] is True
