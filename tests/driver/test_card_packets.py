"""Card payments in packets: the Arcus emulator library behind the driver, next to an emulated ATOL register."""

from __future__ import annotations

import asyncio
import json


from kktbridge.examples import example_packet

from .conftest import close_stand, make_stand

EXAMPLE = json.loads(example_packet())


def headers(stand, order: str) -> dict:
    return {"BIT_KKT_TOKEN": stand.tokens[0], "BIT_BNK_TRM_TOKEN": stand.tokens[1], "BIT_ORDER_ID": order}


def terminal(stand):
    return next(e for e in stand.driver.registry.entries if e.role == "bnk").adapter


async def test_the_whole_example_packet_of_api_1_2(shop):
    _, answer, _ = await shop.post(EXAMPLE, headers(shop, "ex-1"))
    pay, receipt = answer
    assert pay["success"] == "OK: ОДОБРЕНО" and pay["responseCode"] == "00" and len(pay["rrn"]) == 12
    assert pay["amount"] == 12.0 and pay["cardMask"] == "4276********1234" and pay["slipPrinted"] is True
    assert "СУММА: 12.00 РУБ" in pay["slip"]
    assert receipt["success"].startswith("OK: чек") and receipt["total_1020"] == 11.0 and receipt["qr"]
    paper = shop.emulators[0].paper.text()
    assert paper.index("СУММА: 12.00 РУБ") < paper.index(receipt["qr"])  # the slip, then the receipt
    assert len(shop.receipts()) == 1


async def test_the_1_2_header_style_with_both_tokens_as_header_names(shop):
    _, answer, _ = await shop.post(EXAMPLE, {shop.tokens[0]: "1", shop.tokens[1]: "1", "Action": "toLocalhost",
                                             "BIT_ORDER_ID": "ex-2"})
    assert "success" in answer[0] and "success" in answer[1]


async def test_no_paper_refuses_the_packet_before_the_card_is_charged(shop):
    shop.emulators[0].faults.no_paper = True
    _, answer, _ = await shop.post(EXAMPLE, headers(shop, "paper-1"))
    pay, receipt = answer
    assert pay["errorCode"] == "no_paper" and pay["retryable"] and "not charged" in pay["error"]
    assert receipt["skipped"] and "emu_purchase_count" not in (await terminal(shop).report()).extra or \
        (await terminal(shop).report()).extra["emu_purchase_count"] == "0"
    shop.emulators[0].faults.no_paper = False
    _, again, _ = await shop.post(EXAMPLE, headers(shop, "paper-1"))
    assert "success" in again[0] and "success" in again[1] and len(shop.receipts()) == 1


async def test_a_failing_receipt_after_an_approved_payment_says_so_and_resumes(shop):
    shop.emulators[0].faults.power_loss_at = "before:92"  # the register restarts when the receipt is opened
    _, answer, _ = await shop.post(EXAMPLE, headers(shop, "paid-1"))
    pay, receipt = answer
    assert "success" in pay
    assert receipt["paidRrn"] == pay["rrn"] and receipt["paidAmount"] == 12.0
    assert "оплата картой прошла" in receipt["error"] and pay["rrn"] in receipt["error"]
    assert "the card was charged" in receipt["error"] and receipt["errorCode"] == "link" and receipt["retryable"]
    assert shop.receipts() == []
    _, again, _ = await shop.post(EXAMPLE, headers(shop, "paid-1"))  # the cashier presses again
    assert again[0] == pay and "success" in again[1]  # the card is not charged twice
    report = await terminal(shop).report()
    assert report.extra["emu_purchase_count"] == "1" and len(shop.receipts()) == 1


async def test_automatic_reversal_when_configured(tmp_path, arccom_library):
    stand = await make_stand(tmp_path, terminal=arccom_library, terminal_options={"reverse_on_failure": True})
    try:
        stand.emulators[0].faults.power_loss_at = "before:92"
        _, answer, _ = await stand.post(EXAMPLE, headers(stand, "rev-1"))
        assert answer[1]["reversal"]["responseCode"] == "00" and "оплата отменена" in answer[1]["error"]
        report = await terminal(stand).report()
        assert report.extra["emu_cancel_count"] == "1"
    finally:
        await close_stand(stand)


async def test_a_declined_payment_skips_the_receipt(shop):
    terminal(shop).settings["emu_decline_amounts"] = "1200:51"
    await terminal(shop).close()  # the next use creates the handle with the new setting
    _, answer, _ = await shop.post(EXAMPLE, headers(shop, "decl-1"))
    pay, receipt = answer
    assert pay["errorCode"] == "declined" and pay["deviceError"]["code"] == "51" and "НЕ ОПЛАЧИВАТЬ" in pay["slip"]
    assert receipt["skipped"] is True and shop.receipts() == []


async def test_terminal_not_answering(shop):
    terminal(shop).settings["emu_no_answer"] = "1"
    await terminal(shop).close()
    _, answer, _ = await shop.post(EXAMPLE, headers(shop, "999"))
    assert answer[0]["errorCode"] == "link" and answer[0]["retryable"] and answer[0]["responseCode"] == "999"
    assert answer[1]["skipped"]


async def test_every_bank_command(shop):
    bnk = {"BIT_BNK_TRM_TOKEN": shop.tokens[1]}
    _, paid, _ = await shop.post([{"name": "pay", "type": "bnkCardPayment", "data": {"sum": 50}}], bnk)
    rrn = paid[0]["rrn"]
    packet = [
        {"name": "возврат", "type": "bnkCardReturn", "data": {"sum": 20, "rrn": rrn}},
        {"name": "краткий", "type": "bnkCardShortReport"},
        {"name": "полный", "type": "bnkCardFullReport"},
        {"name": "последняя", "type": "bnkCardLastOperationResult"},
        {"name": "сверка", "type": "bnkCardSverkaItogov"},
    ]
    _, answer, _ = await shop.post(packet, bnk)
    assert [("success" in r) for r in answer] == [True] * 5
    assert answer[0]["amount"] == 20.0 and answer[3]["amount"] == 20.0  # the last operation is the refund
    _, cancel, _ = await shop.post([{"name": "pay", "type": "bnkCardPayment", "data": {"sum": 7}},
                                    {"name": "отмена", "type": "bnkCardCancel"}], bnk)
    assert "success" in cancel[1] and cancel[1]["amount"] == 7.0


async def test_two_packets_for_one_terminal_at_once_are_serialized(shop):
    terminal(shop).settings["emu_latency_ms"] = "300"
    await terminal(shop).close()
    bnk = {"BIT_BNK_TRM_TOKEN": shop.tokens[1]}
    answers = await asyncio.gather(
        shop.post([{"name": "a", "type": "bnkCardPayment", "data": {"sum": 10}}], {**bnk, "BIT_ORDER_ID": "p1"}),
        shop.post([{"name": "b", "type": "bnkCardPayment", "data": {"sum": 20}}], {**bnk, "BIT_ORDER_ID": "p2"}))
    first, second = answers[0][1][0], answers[1][1][0]
    assert "success" in first and "success" in second and first["rrn"] != second["rrn"]


async def test_a_payment_in_flight_at_a_crash_is_not_charged_twice(shop):
    """The journal as a crash leaves it (payment `started`, no answer kept) and the terminal's own record of
    that payment: resending the packet takes the terminal's answer instead of charging the card again."""
    await crashed_during_payment(shop, "crash-pay")
    charged = await terminal(shop).pay(1200)  # the terminal approved it just before the driver died
    _, answer, _ = await shop.post(EXAMPLE, headers(shop, "crash-pay"))
    assert answer[0]["rrn"] == charged.rrn and "success" in answer[0] and "success" in answer[1]
    assert (await terminal(shop).report()).extra["emu_purchase_count"] == "1"


async def test_a_payment_the_terminal_never_made_runs_when_resent(shop):
    """The journal says the payment started; the terminal's last operation is another one (5.00): so the payment
    never reached the terminal, and the resent packet pays and prints."""
    await crashed_during_payment(shop, "crash-2")
    await terminal(shop).pay(500)
    _, answer, _ = await shop.post(EXAMPLE, headers(shop, "crash-2"))
    assert "success" in answer[0] and answer[0]["amount"] == 12.0 and "success" in answer[1]
    assert (await terminal(shop).report()).extra["emu_purchase_count"] == "2" and len(shop.receipts()) == 1


async def crashed_during_payment(shop, order: str) -> int:
    """The journal as a crash during the example's card payment leaves it: the payment `started`, no answer."""
    from kktbridge.bitapi import decode_request
    from kktbridge.driver.reconcile import expectation

    packet = decode_request(headers(shop, order), json.dumps(EXAMPLE, ensure_ascii=False).encode())
    tokens = {"kkt": shop.tokens[0], "bnk": shop.tokens[1]}
    packet_id, _ = await shop.driver.journal.create_packet(
        order_id=order, fingerprint=packet.fingerprint, source="browser", origin=None, packet_json="{}",
        commands=[(c.name, c.type.wire, tokens[c.device], expectation(c)) for c in packet.commands])
    await shop.driver.journal.start_command(packet_id, 0)
    return packet_id
