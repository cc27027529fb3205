"""The Arcus adapter through the real ctypes path against the compiled arccom emulator library."""

from __future__ import annotations

import asyncio

import pytest

from kktbridge.devices.arcus import ArcusTerminal
from kktbridge.devices.base import CardOperation
from kktbridge.devices.errors import DeviceError


@pytest.fixture
def terminal(arccom_library, tmp_path):
    def make(**settings) -> ArcusTerminal:
        base = {"emu_state_file": str(tmp_path / "ops.txt"), "emu_slip_file": str(tmp_path / "cheq.out")}
        return ArcusTerminal(arccom_library, settings={**base, **{f"emu_{k}": v for k, v in settings.items()}})
    return make


async def test_payment_approved(terminal, tmp_path):
    pos = terminal()
    card = await pos.pay(1200)
    assert card.approved and card.response_code == "00" and card.operation is CardOperation.PAYMENT
    assert card.amount == 1200 and len(card.rrn) == 12 and card.auth_code and card.card_mask == "4276********1234"
    assert "СУММА: 12.00" in card.slip and f"RRN:{card.rrn}" in card.slip
    assert (tmp_path / "cheq.out").read_bytes().decode("cp1251").replace("\r\n", "\n").strip() == card.slip
    await pos.close()


async def test_declined_is_an_answer_not_an_error(terminal):
    pos = terminal(decline_over=100000)
    card = await pos.pay(100001)
    assert not card.approved and card.response_code == "51" and "НЕ ОПЛАЧИВАТЬ" in card.slip
    assert (await pos.pay(1000)).approved
    await pos.close()


async def test_refund_by_rrn_and_cancel(terminal):
    pos = terminal()
    paid = await pos.pay(5000)
    refund = await pos.refund(2000, paid.rrn)
    assert refund.approved and refund.operation is CardOperation.REFUND and refund.amount == 2000
    too_much = await pos.refund(3001, paid.rrn)
    assert not too_much.approved and too_much.response_code == "13"
    unknown = await pos.refund(100, "999999999999")
    assert not unknown.approved and unknown.response_code == "25"
    second = await pos.pay(700)
    cancelled = await pos.cancel(rrn=second.rrn)
    assert cancelled.approved and cancelled.operation is CardOperation.CANCEL
    assert not (await pos.cancel(rrn=second.rrn)).approved  # not twice
    third = await pos.pay(300)
    last = await pos.cancel()  # without an RRN: the last operation
    assert last.approved and last.amount == third.amount
    await pos.close()


async def test_settlement_reports_and_last_operation(terminal):
    pos = terminal()
    await pos.pay(1000)
    await pos.pay(2500)
    short = await pos.report(full=False)
    full = await pos.report(full=True)
    assert short.approved and full.approved and short.operation is CardOperation.SHORT_REPORT
    assert short.extra["emu_purchase_total"] == "3500" and full.slip
    last = await pos.last_operation()
    assert last.operation is CardOperation.PAYMENT and last.amount == 2500 and last.approved
    settled = await pos.settlement()
    assert settled.approved and settled.operation is CardOperation.SETTLEMENT
    assert (await pos.report()).extra["emu_purchase_total"] == "0"  # the batch is closed
    await pos.close()


async def test_terminal_not_answering(terminal):
    pos = terminal(no_answer=1)
    card = await pos.pay(1000)
    assert not card.approved and card.response_code == "999"
    await pos.close()


async def test_user_cancel_and_stop_from_the_driver(terminal):
    pos = terminal(user_cancel=1)
    card = await pos.pay(1000)
    assert not card.approved and card.response_code == "17"
    await pos.close()
    slow = terminal(latency_ms=30000)
    running = asyncio.create_task(slow.pay(1000))
    while not slow._running:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    await slow.abort()  # Stop from the loop's thread while ITPosRun blocks the worker thread
    card = await asyncio.wait_for(running, 10)
    assert not card.approved and card.response_code == "17"
    await slow.close()


async def test_the_event_loop_is_free_while_the_terminal_waits(terminal):
    pos = terminal(latency_ms=500)
    running = asyncio.create_task(pos.pay(1000))
    ticks = 0
    while not running.done():
        await asyncio.sleep(0.01)
        ticks += 1
    assert running.result().approved and ticks > 5  # the loop kept turning during the blocking call


async def test_a_request_that_cannot_run(terminal):
    pos = terminal()
    with pytest.raises(DeviceError) as info:
        await pos.refund(100, "")  # no rrn: the library refuses to run it
    assert info.value.device_code == -6 and info.value.device_text
    await pos.close()


async def test_configurable_operation_codes(arccom_library, tmp_path):
    pos = ArcusTerminal(arccom_library, operations={"purchase": 10, "refund": 20},
                        settings={"emu_ops": "purchase=10,refund=20,last_operation=113",
                                  "emu_state_file": str(tmp_path / "ops.txt")})
    paid = await pos.pay(100)
    assert paid.approved and (await pos.refund(100, paid.rrn)).approved
    with pytest.raises(DeviceError):
        await pos.settlement()  # 11 is not in this installation's table
    await pos.close()


async def test_missing_library_is_a_clear_error(tmp_path):
    pos = ArcusTerminal(tmp_path / "nope.so")
    with pytest.raises(DeviceError) as info:
        await pos.connect()
    assert info.value.code == "link" and "nope.so" in info.value.device_text
