"""Exactly once, through real processes (issue 9): each numbered scenario of the issue, on a driver process killed
with SIGKILL and registers whose power is cut, ending with one document per confirmed order in the emulator's
journal and every answer agreeing with it.

The moments are reached by what can be seen from outside: the register's control port says which document it
prints (`printing`), its journal which documents it made, the terminal's state file which operations it made, and
for the moments only the driver knows (a packet received, a command started) its journal, read-only. Where the
issue fixes what the answer is, it is asserted; where the code is a design choice, the property is (retryable or
not, no document, one document, the answer's FD equals the journal's).
"""

from __future__ import annotations

import asyncio

import pytest

from bench.shop import (
    BASKETS,
    POWER_LOSS_AT_CLOSE,
    PRINTING_CLOSE,
    PRINTING_OPEN_SHIFT,
    PRINTING_TEXT,
    Register,
    Shop,
    Verdict,
    agrees,
    basket_total,
    card_packet,
    receipt_command,
    terminal_operations,
    wait_until,
)
from kktbridge.fiscal import kopecks_to_decimal

RECEIPT = "kktReceiptFiscalization"
PAYMENT = "bnkCardPayment"
REFUND = "bnkCardReturn"
KINDS = pytest.mark.parametrize("kind", ["atol", "mercury"])


@pytest.fixture
async def make_shop(tmp_path):
    shops: list[Shop] = []

    async def make(kind: str, *, terminal: dict | None = None, faults: dict | None = None) -> Shop:
        shop = Shop(tmp_path, [Register(kind, tmp_path, faults or {})], terminal=terminal)
        shops.append(shop)
        await shop.start()
        return shop

    yield make
    for shop in shops:
        await shop.close()


def receipt(order: str, basket: int = 0) -> list[dict]:
    return [receipt_command(order, BASKETS[basket])]


async def print_slowly(register: Register, seconds: float) -> None:
    await register.control({"faults": {"print_latency": seconds}})


async def kill_while_printing(shop: Shop, register: Register, what: str, posted: asyncio.Task) -> None:
    """SIGKILL the driver while the register prints `what` for the `posted` request; an AssertionError with the
    driver's answer and log when that request ended before the register ever printed it."""

    async def printing_or_answered() -> bool:
        return posted.done() or await register.printing(what)

    await wait_until(printing_or_answered, f"the {register.kind} register prints {what}")
    if posted.done():
        verdict = posted.result()
        raise AssertionError(f"the driver answered before the {register.kind} register printed {what}: "
                             f"{verdict.outcome} {verdict.reason} {verdict.answer}; its log: "
                             f"{shop.driver.log_tail()}")
    shop.driver.kill()


async def the_driver_dies_while_a_prints(shop: Shop, register: Register) -> None:
    """Order A is posted, the register prints it slowly, and the driver is SIGKILLed meanwhile."""
    await print_slowly(register, 0.6)
    first = asyncio.create_task(shop.post("A", receipt("A"), register.kind))
    await kill_while_printing(shop, register, PRINTING_CLOSE[register.kind], first)
    assert not (await first).definitive


def one_document_each(register: Register, answers: dict[str, Verdict]) -> None:
    """Every order confirmed, with exactly one receipt in the register's journal, and its answer names it."""
    for order, verdict in answers.items():
        documents = register.receipts(order)
        said = verdict.element(RECEIPT) or {}
        assert len(documents) == 1, (f"order {order}: {len(documents)} receipts in the register's journal; answered "
                                     f"{verdict.outcome} {verdict.reason}, FD {said.get('fdNumber_1040')}")
        assert verdict.outcome == "success", f"order {order}: {verdict.reason} {verdict.answer}"
        assert agrees(verdict.element(RECEIPT), documents[0]), (
            f"order {order} answered FD {verdict.element(RECEIPT).get('fdNumber_1040')}, its receipt is FD "
            f"{documents[0]['fd']}")


# --- registers -------------------------------------------------------------------------------------------


@KINDS
async def test_two_clients_on_one_register(make_shop, kind):
    """A prints (the driver holds the register), B waits for it in the driver; the driver dies; the register
    finishes A. B's client retries first, then A's: each has its own receipt, once."""
    shop = await make_shop(kind)
    register = shop.registers[kind]
    await print_slowly(register, 1.2)  # time for B to reach the driver while A prints
    first = asyncio.create_task(shop.post("A", receipt("A"), kind))
    await wait_until(lambda: register.printing(PRINTING_CLOSE[kind]), "A's receipt prints")
    second = asyncio.create_task(shop.post("B", receipt("B"), kind))  # the same basket and total
    await wait_until(lambda: shop.driver.command_status("B") is not None, "the driver has B's packet")
    shop.driver.kill()
    assert not (await first).definitive and not (await second).definitive
    await wait_until(lambda: register.receipts("A"), "the register finishes A after the driver died")
    await print_slowly(register, 0)
    await shop.driver.start()
    b = await shop.until_definitive("B", receipt("B"), kind)
    a = await shop.until_definitive("A", receipt("A"), kind)
    one_document_each(register, {"A": a, "B": b})


@KINDS
async def test_the_register_finishes_after_the_driver_died(make_shop, kind):
    """Scenario 2: the driver is killed while the register prints A, which it finishes; after the restart B
    (same total) prints; A's retry is A's receipt, not a refusal, and one more press prints nothing new."""
    shop = await make_shop(kind)
    register = shop.registers[kind]
    await the_driver_dies_while_a_prints(shop, register)
    await wait_until(lambda: register.receipts("A"), "the register finishes A after the driver died")
    await print_slowly(register, 0)
    await shop.driver.start()
    b = await shop.until_definitive("B", receipt("B", 1), kind)
    a = await shop.until_definitive("A", receipt("A"), kind)
    one_document_each(register, {"A": a, "B": b})
    again = await shop.until_definitive("A", receipt("A"), kind)  # the cashier presses once more
    assert again.answer == a.answer
    one_document_each(register, {"A": again, "B": b})


@KINDS
@pytest.mark.parametrize("other", [0, 2], ids=["same_total", "different_total"])
async def test_another_order_printed_between_the_crash_and_the_retry(make_shop, kind, other):
    """Scenarios 1 and 3: the register loses power just before it closes A (A is lost with the open receipt);
    back on, B prints; A's retry must print A, not be answered with B's receipt nor refused."""
    shop = await make_shop(kind)
    register = shop.registers[kind]
    await register.control({"faults": {"power_loss_at": f"before:{POWER_LOSS_AT_CLOSE[kind]}"}})
    first = await shop.answer("A", receipt("A"), kind)
    assert first.outcome == "retry", f"A's first answer should be retryable: {first.answer}"
    await wait_until(lambda: not register.running, "the register is off")
    assert register.receipts("A") == []
    await register.start()
    b = await shop.until_definitive("B", receipt("B", other), kind)
    a = await shop.until_definitive("A", receipt("A"), kind)
    one_document_each(register, {"A": a, "B": b})


async def test_the_register_that_cannot_read_its_documents_back_is_settled_by_its_counters(make_shop):
    """Scenario 2 on an ATOL whose FN archive gives no document back by number: the driver is killed while A
    prints, the register finishes it, B (same total) prints after the restart; A's retry is A's receipt, found
    by the shift counters its checkpoint kept, and nothing prints twice."""
    shop = await make_shop("atol", faults={"documents_unreadable": True})
    register = shop.registers["atol"]
    await the_driver_dies_while_a_prints(shop, register)
    await wait_until(lambda: register.receipts("A"), "the register finishes A after the driver died")
    await print_slowly(register, 0)
    await shop.driver.start()
    b = await shop.until_definitive("B", receipt("B"), "atol")
    a = await shop.until_definitive("A", receipt("A"), "atol")
    one_document_each(register, {"A": a, "B": b})
    assert "cannot be read back by number" in shop.driver.log()


@KINDS
async def test_killed_during_the_automatic_shift_opening(make_shop, kind):
    """Scenario 3: the shift is closed; A makes the driver open it, and the driver dies while the register
    prints the opening. After the restart B (another total) prints; A must print once, not be refused."""
    shop = await make_shop(kind)
    register = shop.registers[kind]
    p = await shop.until_definitive("P", receipt("P"), kind)  # the driver knows the register's last FD
    close = [{"name": "Закрыть смену", "type": "kktCloseShift", "data": {"cashierName_1021": "Кассир"}}]
    assert (await shop.until_definitive("Z", close, kind)).outcome == "success"
    await print_slowly(register, 0.6)
    first = asyncio.create_task(shop.post("A", receipt("A"), kind))
    await kill_while_printing(shop, register, PRINTING_OPEN_SHIFT[kind], first)
    assert not (await first).definitive
    await wait_until(lambda: len(register.documents("open_shift")) == 2, "the register opens the shift anyway")
    await print_slowly(register, 0)
    await shop.driver.start()
    b = await shop.until_definitive("B", receipt("B", 2), kind)
    a = await shop.until_definitive("A", receipt("A"), kind)
    one_document_each(register, {"P": p, "A": a, "B": b})


@KINDS
@pytest.mark.parametrize("finished", [True, False], ids=["receipt_made", "receipt_lost"])
async def test_the_register_is_off_when_the_driver_resumes(make_shop, kind, finished):
    """Scenario 4: the driver dies mid-receipt and the register is off when A is sent again: a clear retryable
    answer (register unreachable, outcome not known yet), never `internal` nor a stack trace; once it is back, A
    is its receipt, made once."""
    shop = await make_shop(kind)
    register = shop.registers[kind]
    await the_driver_dies_while_a_prints(shop, register)
    if finished:
        await wait_until(lambda: register.receipts("A"), "the register finishes A")
    register.cut_power()  # an open receipt is lost with the power
    await shop.driver.start()
    for _ in range(2):
        while_off = await shop.answer("A", receipt("A"), kind)
        assert while_off.status == 200 and not while_off.internal, while_off.answer
        assert while_off.outcome == "retry", f"the register is off: retry later, not {while_off.answer}"
    await register.start()
    a = await shop.until_definitive("A", receipt("A"), kind)
    one_document_each(register, {"A": a})
    assert shop.driver.tracebacks() == 0, shop.driver.stderr.read_text(encoding="utf-8")


# --- bank terminal ---------------------------------------------------------------------------------------


def purchases(shop: Shop) -> list:
    """Approved purchases the terminal holds, not voided: the money taken."""
    return [op for op in terminal_operations(shop.terminal_state) if op.kind == "P" and op.approved and not op.voided]


async def test_a_refund_in_flight_is_not_repeated(make_shop, arccom_library):
    """Scenario 5: the terminal approves a bnkCardReturn (part of a payment), the driver dies while its slip
    prints; the packet sent again must not return the money twice: it is that refund and its return receipt."""
    shop = await make_shop("atol", terminal={"library": str(arccom_library)})
    register = shop.registers["atol"]
    sale = await shop.until_definitive("S", card_packet("S", BASKETS[2]), "atol", card=True)  # 250.00
    assert sale.outcome == "success"
    part = kopecks_to_decimal(basket_total(BASKETS[0]))  # 100.00 of it come back: room for a second refund
    refund = [{"name": "Возврат", "type": REFUND, "data": {"sum": part, "rrn": sale.element(PAYMENT)["rrn"]}},
              receipt_command("R", BASKETS[0], card=True, receipt_type=2)]
    await print_slowly(register, 0.6)
    first = asyncio.create_task(shop.post("R", refund, "atol", card=True))

    def refunds():
        return [op for op in terminal_operations(shop.terminal_state) if op.kind == "R" and op.approved]

    await wait_until(refunds, "the terminal approves the refund")
    await kill_while_printing(shop, register, PRINTING_TEXT["atol"], first)  # the slip
    assert not (await first).definitive
    await print_slowly(register, 0)
    await shop.driver.start()
    again = await shop.until_definitive("R", refund, "atol", card=True)
    assert len(refunds()) == 1, f"the money was returned {len(refunds())} times"
    (made,) = refunds()
    assert again.outcome == "success" and again.element(REFUND)["rrn"] == made.rrn, again.answer
    one_document_each(register, {"S": sale, "R": again})


async def test_a_payment_in_flight_after_an_identical_payment(make_shop, arccom_library):
    """Scenario 6: customer 1 pays 100.00; customer 2, same basket, and the driver dies while the terminal waits
    for the card. Customer 2's resend must never take customer 1's payment as its own: either it pays (a payment
    of its own, then its receipt) or it is refused for good with no receipt; never a receipt without payment."""
    shop = await make_shop("atol", terminal={"library": str(arccom_library), "emulator": {"latency_ms": 1500}})
    register = shop.registers["atol"]
    one = await shop.until_definitive("C1", card_packet("C1", BASKETS[0]), "atol", card=True)
    assert one.outcome == "success"
    first = asyncio.create_task(shop.post("C2", card_packet("C2", BASKETS[0]), "atol", card=True))
    await wait_until(lambda: shop.driver.command_status("C2", 0) == "started", "customer 2's payment starts")
    shop.driver.kill()  # the terminal waits for the card; with the driver gone, it never charges it
    assert not (await first).definitive
    assert len(purchases(shop)) == 1
    await shop.driver.start()
    two = await shop.until_definitive("C2", card_packet("C2", BASKETS[0]), "atol", card=True)
    taken = {op.rrn for op in purchases(shop)}
    if two.outcome == "success":
        rrn = two.element(PAYMENT)["rrn"]
        assert rrn != one.element(PAYMENT)["rrn"], "customer 2 got a receipt for customer 1's payment"
        assert rrn in taken and len(taken) == 2
        one_document_each(register, {"C1": one, "C2": two})
    else:
        assert register.receipts("C2") == [] and len(taken) == 1, "a receipt without a payment"
        one_document_each(register, {"C1": one})


async def test_a_reversed_payment_never_replays_paid(make_shop, arccom_library):
    """Scenario 7: with reverse_on_failure, the receipt fails after the payment (the register loses power as the
    receipt is opened; no paper would have been refused before the card was charged) and the payment is
    reversed; once the register is back, the resend must not replay "paid" and print a receipt for money
    returned: it pays anew (one live payment, one receipt) or is refused for good (no payment, no receipt)."""
    shop = await make_shop("atol", terminal={"library": str(arccom_library), "reverse_on_failure": True})
    register = shop.registers["atol"]
    packet = card_packet("V", BASKETS[0])
    await register.control({"faults": {"power_loss_at": "before:92"}})
    first = await shop.answer("V", packet, "atol", card=True)
    reversed_rrn = first.element(PAYMENT)["rrn"]
    assert first.element(RECEIPT)["reversal"]["responseCode"] == "00" and purchases(shop) == []
    await wait_until(lambda: not register.running, "the register is off")
    await register.start()
    again = await shop.until_definitive("V", packet, "atol", card=True)
    taken = {op.rrn for op in purchases(shop)}
    if again.outcome == "success":
        rrn = again.element(PAYMENT)["rrn"]
        assert rrn != reversed_rrn, "the receipt was printed for a payment that was returned"
        assert taken == {rrn}
        one_document_each(register, {"V": again})
    else:
        assert register.receipts("V") == [] and taken == set(), "a receipt for money that was returned"


async def test_no_reversal_while_the_receipt_outcome_is_unknown(make_shop, arccom_library):
    """Scenario 7, second part: the register makes the receipt and loses power before it answers. The receipt's
    outcome is unknown, so the payment is not reversed; once the register is back, the resend is that receipt,
    paid by that payment."""
    shop = await make_shop("atol", terminal={"library": str(arccom_library), "reverse_on_failure": True})
    register = shop.registers["atol"]
    packet = card_packet("U", BASKETS[0])
    await register.control({"faults": {"power_loss_at": f"after:{POWER_LOSS_AT_CLOSE['atol']}"}})
    first = await shop.answer("U", packet, "atol", card=True)
    assert first.outcome == "retry", first.answer
    await wait_until(lambda: not register.running, "the register is off")
    assert len(register.receipts("U")) == 1  # it was in the FN
    assert [op for op in terminal_operations(shop.terminal_state) if op.kind == "C"] == [], (
        "the payment was reversed although the receipt was made")
    await register.start()
    again = await shop.until_definitive("U", packet, "atol", card=True)
    one_document_each(register, {"U": again})
    assert len(purchases(shop)) == 1
    (paid,) = purchases(shop)
    assert again.element(PAYMENT)["rrn"] == paid.rrn == first.element(PAYMENT)["rrn"]
