"""What the vendor's own clients send short or inconsistent: adjusted at decoding, each change reported; never
a change to complete, consistent data; and strict decoding refuses all of it as sent."""

import json

import pytest

from kktbridge.bitapi import ReceiptCommand
from kktbridge.examples import example_packet
from kktbridge.fiscal import Cashier, Limits, Payments

from ..vendor_shapes import ADMIN, SHAPES


def receipt_command(packet) -> ReceiptCommand:
    (command,) = [c for c in packet.commands if isinstance(c, ReceiptCommand)]
    return command


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_each_vendor_shape_is_made_whole_and_said_so(decode, shape):
    command = receipt_command(decode(shape.packet))
    receipt = command.receipt
    assert receipt.total == shape.total
    assert {k: v for k, v in vars_of(receipt.payments).items() if v} == shape.payments
    assert tuple(w.code for w in command.warnings) == shape.warnings
    for warning in command.warnings:
        assert warning.path.startswith(f"[{len(shape.packet) - 1}].data") and warning.ru and warning.en


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_strict_refuses_each_vendor_shape(refusal, shape):
    codes = set(refusal(shape.packet, strict=True).values())
    expected = {"amount_recomputed": "sum_mismatch", "payments_completed": "underpaid",
                "cashier_inn_dropped": "format", "price_from_total": "required"}
    if "price_from_total" in shape.warnings:  # a line that cannot be read: the totals are not checked
        assert codes == {"required"}
    else:
        assert codes == {expected[w] for w in shape.warnings}


def vars_of(payments: Payments) -> dict[str, int]:
    return {"cash": payments.cash, "electronic": payments.electronic, "prepayment": payments.prepayment,
            "credit": payments.credit, "other": payments.other}


def test_the_texts_name_what_was_done(decode):
    demo = receipt_command(decode(SHAPES[0].packet))
    amount, payments = demo.warnings
    assert amount.path == "[1].data.1059[1].amount_1043" and "27.70" in amount.ru and "27.15" in amount.en
    assert payments.path == "[1].data.payments"
    assert "11.00 безналичными" in payments.ru and "16.15 наличными" in payments.ru
    assert "11.00 electronically" in payments.en and "16.15 in cash" in payments.en
    bitrix = receipt_command(decode(SHAPES[1].packet))
    assert bitrix.receipt.cashier == Cashier(ADMIN, None)  # the name stays, the "INN" goes
    assert bitrix.warnings[0].path == "[0].data.cashierInn_1203" and ADMIN in bitrix.warnings[0].ru
    assert "оплата не указана" in bitrix.warnings[1].ru and "12.00 наличными" in bitrix.warnings[1].ru
    woo = receipt_command(decode(SHAPES[3].packet))
    assert woo.receipt.items[0].price == 1200 and woo.receipt.items[0].amount == 1200
    assert woo.warnings[0].path == "[0].data.purchases[0].price_1079"


def test_complete_and_consistent_data_is_never_touched(decode, receipt_packet, item):
    example = decode(example_packet())  # card 12.00, then a receipt of 11.00 paid 10 cash + 1 card: complete
    command = receipt_command(example)
    assert command.warnings == () and command.receipt.payments == Payments(cash=1000, electronic=100)
    assert all(c.warnings == () for c in example.commands) and example.unread == ()
    full = receipt_packet([item(price_1079=22, qty_1023=1.234, amount_1043=27.15, sum=27.15)],
                          cashierInn_1203="500100732259", payments={"cash_1031": 20, "ecash_1081": 7.15})
    command = receipt_command(decode(full))
    assert command.warnings == () and command.receipt.cashier.inn == "500100732259"
    assert command.receipt.payments == Payments(cash=2000, electronic=715)
    overpaid = receipt_packet(payments={"cash_1031": 1000})  # change from cash: not short, left as sent
    assert receipt_command(decode(overpaid)).receipt.payments == Payments(cash=100000)


def test_card_money_is_counted_once_across_receipts(decode, item):
    def receipt(price, **data):
        return {"name": "чек", "type": "kktReceiptFiscalization",
                "data": {"purchases": [item(price_1079=price)], "receiptType_1054": 1, **data}}

    card = {"name": "карта", "type": "bnkCardPayment", "data": {"sum": 12}}
    packet = decode([card, receipt(5), receipt(10), receipt(3)])
    first, second, third = [c.receipt.payments for c in packet.commands[1:]]
    assert first == Payments(electronic=500) and second == Payments(cash=300, electronic=700)
    assert third == Payments(cash=300)  # the card's 12.00 are shown already
    shown = decode([card, receipt(12, payments={"ecash_1081": 12}), receipt(4)])
    assert shown.commands[2].receipt.payments == Payments(cash=400)  # the first receipt showed the card money
    after = decode([receipt(12), card])  # a card payment after the receipt pays nothing of it
    assert after.commands[0].receipt.payments == Payments(cash=1200)
    refund = decode([{"name": "возврат", "type": "bnkCardReturn", "data": {"sum": 12, "rrn": "123456789012"}},
                     receipt(12, receiptType_1054=2)])
    assert refund.commands[1].receipt.payments == Payments(electronic=1200)
    sale_after_refund = decode([{"name": "возврат", "type": "bnkCardReturn", "data": {"sum": 12, "rrn": "1"}},
                                receipt(12)])
    assert sale_after_refund.commands[1].receipt.payments == Payments(cash=1200)


def test_a_line_total_that_does_not_divide_is_refused(refusal, receipt_packet, item):
    inexact = receipt_packet([item(price_1079=None, sum=10, qty_1023=3)])
    found = refusal(inexact)
    assert found == {"[0].data.purchases[0].price_1079": "required"}
    no_total = receipt_packet([item(price_1079=None, sum=0)])
    assert refusal(no_total) == {"[0].data.purchases[0].price_1079": "required"}
    bad_total = receipt_packet([item(price_1079=None, sum="двенадцать")])
    assert refusal(bad_total) == {"[0].data.purchases[0].sum": "money_format"}


def test_the_line_total_as_amount_1043_and_a_fractional_quantity(decode, receipt_packet, item):
    packet = receipt_packet([item(price_1079=None, amount_1043=27.15, qty_1023=1.5)])  # 27.15 / 1.5 = 18.10
    command = receipt_command(decode(packet))
    assert command.receipt.items[0].price == 1810 and command.warnings[0].code == "price_from_total"


def test_a_register_that_needs_the_line_total_keeps_the_refusal(refusal, receipt_packet, item):
    packet = receipt_packet([item(amount_1043=12)], payments={"cash_1031": 12})
    assert refusal(packet, limits=Limits(line_total_by_register=False)) == {
        "[0].data.purchases[0].amount_1043": "sum_mismatch"}


def test_unknown_keys_are_named_not_refused(decode):
    packet = decode(SHAPES[1].packet)
    assert packet.unread == ("[0].data.purchases[0].getVatRate",)
    text = json.dumps([{"name": "смена", "type": "kktOpenShift", "data": {"cashierName_1021": "И", "mood": "ok"}},
                       {"name": "внесение", "type": "kktCashIn", "data": {"cashSum": 5}},
                       {"name": "карта", "type": "bnkCardReturn", "data": {"sum": 1, "rrn": "1"}}])
    assert decode(text).unread == ("[0].data.mood",)


def test_the_buyer_inn_and_other_fiscal_fields_are_never_dropped(refusal, receipt_packet):
    packet = receipt_packet(clientInfo={"email_1008": "a@b.ru", "inn_1228": "1234567890"},
                            cashierInn_1203="Иванов")
    assert refusal(packet) == {"[0].data.clientInfo.inn_1228": "inn"}  # the cashier's goes, the buyer's is refused
