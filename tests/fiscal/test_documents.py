"""The one rule for "is this document ours": what it compares, what it leaves out, and its journal form."""

from __future__ import annotations

from datetime import datetime

from kktbridge.fiscal import (
    DocumentKind,
    DocumentLine,
    Expected,
    FiscalResult,
    FnDocument,
    PaymentKind,
    Quantity,
    ReceiptType,
    ShiftCounters,
    counted,
)

from tests.support import receipt


def document(expected: Expected, **changes) -> FnDocument:
    result = FiscalResult(kind=expected.kind, fd_number=5, fiscal_sign="1", fn_number="9", shift_number=1,
                          datetime=datetime(2026, 1, 1), total=changes.pop("total", expected.total),
                          receipt_type=changes.pop("receipt_type", expected.receipt_type))
    return FnDocument(result, changes.pop("payments", dict(expected.payments)),
                      changes.pop("lines", expected.lines))


def test_a_receipt_is_recognised_by_type_total_payments_and_lines_not_by_names():
    mine = Expected.of_receipt(receipt(1000, 2000, electronic=500))
    assert mine.matches(document(mine))
    renamed = tuple(DocumentLine(line.price, line.quantity, line.amount, "ТОВАР") for line in mine.lines)
    assert mine.matches(document(mine, lines=renamed))  # a register may recode names
    assert not mine.matches(document(mine, total=3001))
    assert not mine.matches(document(mine, payments={PaymentKind.CASH: 3000}))
    swapped = tuple(reversed(mine.lines))
    assert not mine.matches(document(mine, lines=swapped))
    more = (*mine.lines, DocumentLine(0, Quantity.parse("1"), 0))
    assert not mine.matches(document(mine, lines=more))
    assert mine.matches(document(mine, payments=None, lines=None))  # a register that tells only the header
    assert not Expected(DocumentKind.OPEN_SHIFT).matches(document(mine))


def test_the_journal_form_round_trips():
    mine = Expected.of_receipt(receipt(1000, 2000, electronic=500))
    again = Expected.from_json(mine.to_json())
    assert again.matches(document(mine)) and again.payments == mine.payments
    def numbers(lines):
        return [(line.price, line.quantity, line.amount) for line in lines]

    assert numbers(again.lines) == numbers(mine.lines)
    assert Expected.from_json(Expected(DocumentKind.CLOSE_SHIFT).to_json()) == Expected(DocumentKind.CLOSE_SHIFT)


# --- the shift counters, where documents cannot be read back ---------------------------------------------------


def counters(receipts: int = 0, cash: int = 0, electronic: int = 0, *, shift: int = 3, returns: int = 0,
             returned_cash: int = 0, open_: bool = True) -> ShiftCounters:
    paid = {(ReceiptType.SALE, PaymentKind.CASH): cash, (ReceiptType.SALE, PaymentKind.ELECTRONIC): electronic,
            (ReceiptType.SALE_RETURN, PaymentKind.CASH): returned_cash}
    return ShiftCounters.of(shift, open_, {ReceiptType.SALE: receipts, ReceiptType.SALE_RETURN: returns}, paid)


def test_the_counters_say_made_only_for_exactly_this_receipt_and_not_made_only_for_nothing():
    mine = Expected.of_receipt(receipt(1000, 2000, electronic=500))  # 3000: 2500 cash, 500 electronic
    before = counters(4, cash=10_000, electronic=700)
    assert counted(mine, before, before, []) is False
    assert counted(mine, before, counters(5, cash=12_500, electronic=1200), []) is True
    same_total_other_kind = counters(5, cash=13_000, electronic=700)  # someone's 30.00 paid all in cash
    assert counted(mine, before, same_total_other_kind, []) is None
    both = counters(6, cash=15_500, electronic=1200)  # this receipt and another one
    assert counted(mine, before, both, []) is None
    other = document(Expected.of_receipt(receipt(3000)))  # read back: 30.00 cash, not this receipt
    assert counted(mine, before, both, [other]) is True  # the one read back accounts for its part
    assert counted(mine, before, counters(5, cash=13_000, electronic=700), [other]) is False
    assert counted(mine, before, counters(5, cash=13_000, electronic=700), [document(
        Expected.of_receipt(receipt(3000)), payments=None)]) is None  # read back without its payments
    assert counted(mine, before, counters(0, shift=4), []) is None  # another shift: the counters started again
    assert counted(mine, before, counters(4, cash=10_000, electronic=700, open_=False), []) is None
    assert counted(Expected(DocumentKind.OPEN_SHIFT), before, before, []) is None


def test_the_counters_keep_their_journal_form():
    before = counters(4, cash=10_000, electronic=700, returns=1, returned_cash=300)
    assert ShiftCounters.from_json(before.to_json()) == before
    assert before.to_json()["payments"] == [["SALE", "CASH", 10_000], ["SALE", "ELECTRONIC", 700],
                                            ["SALE_RETURN", "CASH", 300]]
