"""Reconciliation and de-duplication inside one driver: a real driver on a real port, emulated registers and the
Arcus emulator behind it; crash states are made the way a stop leaves them (rows `started` in the journal) or by
the emulators' own faults. The crash campaign and the process-level scenarios are in test_crash*.py and
test_exactly_once.py."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta

import pytest

from kktbridge.bitapi import decode_request
from kktbridge.driver.executor import CLOUD_ORDER_PREFIX
from kktbridge.driver.intake import admit
from kktbridge.driver.journal import Journal
from kktbridge.driver.reconcile import expectation
from kktbridge.examples import example_packet
from kktbridge.fiscal import ReceiptType

from .conftest import close_stand, make_stand
from .test_driver_http import CASHIER, receipt_packet

EXAMPLE = json.loads(example_packet())


async def crash_state(stand, order: str, packet: list, started: int, headers: dict | None = None,
                      **checkpoint) -> int:
    """The journal as a stop leaves it: the packet's command `started` (with its checkpoint), no answer kept."""
    headers = headers or {"BIT_KKT_TOKEN": stand.tokens[0], "BIT_ORDER_ID": order}
    decoded = decode_request(headers, json.dumps(packet, ensure_ascii=False).encode())
    token = {"kkt": stand.tokens[0], "bnk": stand.tokens[-1]}
    packet_id, _ = await stand.driver.journal.create_packet(
        order_id=order, fingerprint=decoded.fingerprint, source="browser", origin=None, packet_json="{}",
        commands=[(c.name, c.type.wire, token[c.device], expectation(c)) for c in decoded.commands])
    await stand.driver.journal.start_command(packet_id, started, **checkpoint)
    return packet_id


def kkt(stand, order: str) -> dict:
    return {"BIT_KKT_TOKEN": stand.tokens[0], "BIT_ORDER_ID": order}


async def test_a_receipt_made_while_the_driver_was_away_is_answered_by_its_content(stand):
    """The register made the receipt (and, before it, another one with the same total that another row claimed):
    the resend is answered with its own document, found by content and not claimed by the other row."""
    await stand.post(receipt_packet(11.0), kkt(stand, "other"))  # FD 1 shift, FD 2 claimed by "other"
    before = stand.documents()[-1]["fd"]
    mine = receipt_packet(11.0, items=2)
    await crash_state(stand, "mine", mine, 0, fd_before=before)
    register = stand.driver.registry.entries[0].adapter
    made = await register.fiscalize(decode_request(kkt(stand, "mine"), json.dumps(mine).encode()).commands[0].receipt)
    _, answer, _ = await stand.post(mine, kkt(stand, "mine"))
    assert answer[0]["fdNumber_1040"] == made.fd_number and answer[0]["fiscalSign_1077"] == made.fiscal_sign
    assert len(stand.receipts()) == 2


async def test_a_receipt_never_made_runs_and_a_foreign_one_is_not_taken_for_it(stand):
    """After the checkpoint the register made a receipt of the same total but other lines: not ours. Nothing of ours
    is in the FN and no receipt is open, so the resend prints it, once."""
    await stand.post(receipt_packet(11.0), kkt(stand, "warm"))
    before = stand.documents()[-1]["fd"]
    mine = receipt_packet(11.0, items=2)  # 2 × 11.00
    other = receipt_packet(22.0, items=1)  # 1 × 22.00: the same total, other lines
    await crash_state(stand, "mine", mine, 0, fd_before=before)
    register = stand.driver.registry.entries[0].adapter
    await register.fiscalize(decode_request(kkt(stand, "x"), json.dumps(other).encode()).commands[0].receipt)
    _, answer, _ = await stand.post(mine, kkt(stand, "mine"))
    assert "success" in answer[0]
    made = [r for r in stand.receipts() if len(r["items"]) == 2]
    assert len(made) == 1 and made[0]["fd"] == answer[0]["fdNumber_1040"] and made[0]["fd"] == before + 2


async def test_a_receipt_left_open_is_cancelled_and_printed_once(stand):
    """The driver stopped while it sent the lines: the register holds an open, unfiscalized receipt."""
    await stand.post(receipt_packet(), kkt(stand, "warm"))
    before = stand.documents()[-1]["fd"]
    mine = receipt_packet(5.0)
    await crash_state(stand, "open", mine, 0, fd_before=before)
    core = stand.emulators[0].core
    core.begin_receipt(ReceiptType.SALE)
    _, answer, _ = await stand.post(mine, kkt(stand, "open"))
    assert "success" in answer[0] and core.receipt is None
    assert [r["total"] for r in stand.receipts()] == [1100, 500]


async def test_a_register_that_cannot_be_asked_leaves_the_command_in_doubt_then_resolves(tmp_path):
    stand = await make_stand(tmp_path)
    try:
        await stand.post(receipt_packet(), kkt(stand, "warm"))
        before = stand.documents()[-1]["fd"]
        await crash_state(stand, "doubt", receipt_packet(7.0), 0, fd_before=before)
        emulator = stand.emulators[0]
        address = emulator._servers[0].sockets[0].getsockname()
        await emulator.close()  # the register is off
        stand.driver.registry.entries[0].connected = False
        _, answer, _ = await stand.post(receipt_packet(7.0), kkt(stand, "doubt"))
        assert answer[0]["errorCode"] == "outcome_unknown" and answer[0]["retryable"] is True
        _, other, _ = await stand.post(receipt_packet(8.0), kkt(stand, "next"))  # nothing else runs there either
        assert other[0]["retryable"] is True and "success" not in other[0]
        await emulator.serve_tcp(*address)  # back
        _, answer, _ = await stand.post(receipt_packet(7.0), kkt(stand, "doubt"))
        assert "success" in answer[0]
        assert [r["total"] for r in stand.receipts()] == [1100, 700]
    finally:
        await close_stand(stand)


async def test_a_lost_answer_to_the_closing_command_is_found_at_once(tmp_path):
    """The register lost power right after fiscalizing the receipt (it restarts in place): the same request is
    answered with the receipt, found by content, and a retry is answered from the journal."""
    stand = await make_stand(tmp_path)
    try:
        stand.emulators[0].faults.power_loss_at = "after:4a"
        _, answer, _ = await stand.post(receipt_packet(), kkt(stand, "cut"))
        (printed,) = stand.receipts()
        assert answer[0]["fdNumber_1040"] == printed["fd"] and answer[0]["fiscalSign_1077"] == printed["fp"]
        _, again, headers = await stand.post(receipt_packet(), kkt(stand, "cut"))
        assert again == answer and headers["X-Kktbridge-Replayed"] == "true" and len(stand.receipts()) == 1
    finally:
        await close_stand(stand)


async def test_cash_in_flight_is_decided_by_the_drawer(stand):
    cash_in = [{"name": "внесение", "type": "kktCashIn", "data": {"cashSum": 100, **CASHIER}}]
    await stand.post(receipt_packet(), kkt(stand, "shift"))
    core = stand.emulators[0].core
    await crash_state(stand, "made", cash_in, 0, cash_before=core.cash)
    await stand.driver.registry.entries[0].adapter.cash_operation(
        decode_request(kkt(stand, "m"), json.dumps(cash_in).encode()).commands[0].operation)
    _, answer, _ = await stand.post(cash_in, kkt(stand, "made"))
    assert answer[0]["success"] == "OK: внесено 100.00 ₽" and core.cash == 1100 + 10000
    await crash_state(stand, "not-made", cash_in, 0, cash_before=core.cash)
    _, answer, _ = await stand.post(cash_in, kkt(stand, "not-made"))
    assert "success" in answer[0] and core.cash == 1100 + 20000
    await crash_state(stand, "moved", cash_in, 0, cash_before=core.cash - 1)
    _, answer, _ = await stand.post(cash_in, kkt(stand, "moved"))
    assert answer[0]["errorCode"] == "outcome_unknown" and answer[0]["retryable"] is False
    _, again, _ = await stand.post(cash_in, kkt(stand, "moved"))  # never repeated blindly
    assert again[0]["errorCode"] == "outcome_unknown" and core.cash == 1100 + 20000


async def test_an_x_report_in_flight_is_not_repeated(stand):
    x = [{"name": "X", "type": "kktXReport", "data": CASHIER}]
    await crash_state(stand, "x", x, 0)
    _, answer, _ = await stand.post(x, kkt(stand, "x"))
    assert answer[0]["errorCode"] == "outcome_unknown" and not answer[0]["retryable"]
    assert "не повторяется" in answer[0]["error"]


async def test_captions_do_not_make_a_new_packet(stand):
    first = receipt_packet(order="1")
    _, answer, _ = await stand.post(first, kkt(stand, "caption"))
    renamed = receipt_packet(order="renamed")
    _, again, headers = await stand.post(renamed, kkt(stand, "caption"))
    assert headers["X-Kktbridge-Replayed"] == "true" and again[0]["name"] == "чек renamed"
    assert again[0]["fdNumber_1040"] == answer[0]["fdNumber_1040"] and len(stand.receipts()) == 1


async def test_a_daily_order_id_closes_the_next_days_shift(tmp_path):
    """The vendor's PHP demo sends BIT_ORDER_ID 122 with every action: a shift command under a reused order id is
    a retry only within `service_retry`."""
    stand = await make_stand(tmp_path, journal={"service_retry_minutes": 0})
    try:
        close = [{"name": "Z", "type": "kktCloseShift", "data": CASHIER}]
        await stand.post(receipt_packet(), kkt(stand, "122"))
        _, first, _ = await stand.post(close, kkt(stand, "122"))
        await stand.post(receipt_packet(), kkt(stand, "123"))  # the next day opens a shift again
        _, second, headers = await stand.post(close, kkt(stand, "122"))
        assert "X-Kktbridge-Replayed" not in headers
        assert second[0]["shiftNumber_1038"] == first[0]["shiftNumber_1038"] + 1
        assert [r["doc"] for r in stand.documents()].count("close_shift") == 2
    finally:
        await close_stand(stand)


async def test_a_receipt_under_its_order_id_replays_within_the_window(stand):
    _, answer, _ = await stand.post(receipt_packet(), kkt(stand, "sale"))
    _, again, headers = await stand.post(receipt_packet(), kkt(stand, "sale"))
    assert headers["X-Kktbridge-Replayed"] == "true" and again == answer and len(stand.receipts()) == 1


async def test_waiting_for_a_busy_register_can_be_cancelled_without_a_leak(stand):
    stand.emulators[0].faults.print_latency = 0.5
    entry = stand.driver.registry.entries[0]
    packet = decode_request(kkt(stand, "slow"), json.dumps(receipt_packet()).encode())
    first = asyncio.create_task(stand.driver.executor.run(packet, {"kkt": entry}))
    while not entry.lock.locked():
        await asyncio.sleep(0.01)
    waiting = asyncio.create_task(stand.driver.executor.run(
        decode_request(kkt(stand, "waits"), json.dumps(receipt_packet(3.0)).encode()), {"kkt": entry}))
    await asyncio.sleep(0.05)
    waiting.cancel()  # the caller gives up while it waits for the lock: nothing of it runs
    with pytest.raises(asyncio.CancelledError):
        await waiting
    outcome = await first
    assert outcome.ok and not entry.lock.locked()
    assert [r["total"] for r in stand.receipts()] == [1100]


async def test_a_caller_giving_up_mid_receipt_cancels_nothing_on_the_register(stand):
    stand.emulators[0].faults.print_latency = 0.3
    entry = stand.driver.registry.entries[0]
    packet = decode_request(kkt(stand, "gone"), json.dumps(receipt_packet()).encode())
    run = asyncio.create_task(stand.driver.executor.run(packet, {"kkt": entry}))
    while not stand.emulators[0]._busy:
        await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    while entry.lock.locked():  # the packet ends on its own
        await asyncio.sleep(0.01)
    _, answer, headers = await stand.post(receipt_packet(), kkt(stand, "gone"))
    assert headers["X-Kktbridge-Replayed"] == "true" and "success" in answer[0] and len(stand.receipts()) == 1


def receipt_of(stand, packet: list, order: str = "x"):
    return decode_request(kkt(stand, order), json.dumps(packet).encode()).commands[0].receipt


async def test_where_documents_cannot_be_read_back_the_shift_counters_find_the_receipt(stand):
    """A register whose FN archive gives nothing back by number: each receipt's checkpoint keeps its shift counters,
    and the receipt made while the driver was away is found by them (and answered with the register's last
    document, whose number is the one missing), not printed again."""
    stand.emulators[0].faults.documents_unreadable = True
    await stand.post(receipt_packet(11.0), kkt(stand, "warm"))
    register = stand.driver.registry.entries[0].adapter
    before, counters = stand.documents()[-1]["fd"], await register.counters()
    mine = receipt_packet(11.0, items=2)
    await crash_state(stand, "mine", mine, 0, fd_before=before, counters_before=counters.to_json())
    made = await register.fiscalize(receipt_of(stand, mine))
    _, answer, _ = await stand.post(mine, kkt(stand, "mine"))
    assert (answer[0]["fdNumber_1040"], str(answer[0]["fiscalSign_1077"])) == (made.fd_number, made.fiscal_sign)
    assert len(stand.receipts()) == 2


async def test_where_documents_cannot_be_read_back_a_foreign_receipt_leaves_it_in_doubt_and_nothing_prints(stand):
    """The receipt made meanwhile has this one's total but was paid by card: the counters show it is not this one,
    and cannot show this one was not made as well; it stays in doubt (retryable), and nothing prints."""
    stand.emulators[0].faults.documents_unreadable = True
    await stand.post(receipt_packet(11.0), kkt(stand, "warm"))
    register = stand.driver.registry.entries[0].adapter
    before, counters = stand.documents()[-1]["fd"], await register.counters()
    mine = receipt_packet(22.0)
    await crash_state(stand, "mine", mine, 0, fd_before=before, counters_before=counters.to_json())
    by_card = receipt_packet(22.0)
    by_card[0]["data"]["payments"] = {"ecash_1081": 22.0}
    await register.fiscalize(receipt_of(stand, by_card))
    _, answer, _ = await stand.post(mine, kkt(stand, "mine"))
    assert answer[0]["errorCode"] == "outcome_unknown" and answer[0]["retryable"] is True, answer
    assert len(stand.receipts()) == 2


async def test_where_documents_cannot_be_read_back_the_checkpoint_keeps_the_counters_and_nothing_made_runs(stand):
    """The first receipt on such a register keeps the counters in its journal row; a receipt whose crash came
    before anything was made prints once when it is sent again."""
    stand.emulators[0].faults.documents_unreadable = True
    await stand.post(receipt_packet(11.0), kkt(stand, "warm"))
    with sqlite3.connect(stand.driver.journal.path) as db:
        (kept,) = db.execute("select counters_json from commands join packets on packets.id = packet_id"
                             " where order_id = 'warm'").fetchone()
    assert json.loads(kept)["open"] is True and json.loads(kept)["receipts"] == {}  # in the new shift, before the close
    register = stand.driver.registry.entries[0].adapter
    mine = receipt_packet(33.0)
    await crash_state(stand, "mine", mine, 0, fd_before=stand.documents()[-1]["fd"],
                      counters_before=(await register.counters()).to_json())
    _, answer, _ = await stand.post(mine, kkt(stand, "mine"))
    assert "success" in answer[0] and len(stand.receipts()) == 2 and answer[0]["fdNumber_1040"] == \
        stand.receipts()[-1]["fd"]


def received_days_ago(stand, order: str, days: int) -> None:
    """The journal's rows of `order` as a journal kept for long has them: received `days` ago."""
    when = (datetime.now() - timedelta(days=days)).isoformat(timespec="milliseconds")
    with sqlite3.connect(stand.driver.journal.path) as db:
        db.execute("update packets set received_at = ? where order_id = ?", (when, order))


async def test_a_browser_order_id_beyond_the_replay_window_is_a_new_receipt(stand):
    """A CMS that reuses its order numbers (a new year, a reset shop) gets a new receipt after the 72-hour window,
    not a week-old answer; within the window the same resend is answered from the journal."""
    await stand.post(receipt_packet(), kkt(stand, "42"))
    _, _, headers = await stand.post(receipt_packet(), kkt(stand, "42"))
    assert headers["X-Kktbridge-Replayed"] == "true" and len(stand.receipts()) == 1
    received_days_ago(stand, "42", 7)
    _, answer, headers = await stand.post(receipt_packet(), kkt(stand, "42"))
    assert "success" in answer[0] and headers.get("X-Kktbridge-Replayed") != "true"
    assert len(stand.receipts()) == 2 and answer[0]["fdNumber_1040"] == stand.receipts()[-1]["fd"]


async def from_the_cloud(stand, packet: list, order: str) -> list:
    """The packet as the cloud link runs it (cloudlink.py): admitted, then the executor with source "cloud"."""
    admitted = admit(stand.driver.registry, list(kkt(stand, order).items()), json.dumps(packet).encode(),
                     token_required=True)
    return (await stand.driver.executor.run(admitted.packet, admitted.devices, source="cloud")).response


async def test_a_cloud_receipt_is_the_same_request_at_any_age(stand):
    """A cloud receipt's order id (the link's prefix and the receipt's id) is never reused: delivered again a week
    later (a driver back after a long break), a finished one is answered from the journal, and one in doubt is
    settled by what the register holds; neither prints again."""
    done = CLOUD_ORDER_PREFIX + "6f1c0a52-2d4e-4d0b-9a55-000000000001"
    first = await from_the_cloud(stand, receipt_packet(), done)
    received_days_ago(stand, done, 7)
    again = await from_the_cloud(stand, receipt_packet(), done)
    assert again == first and len(stand.receipts()) == 1

    doubt = CLOUD_ORDER_PREFIX + "6f1c0a52-2d4e-4d0b-9a55-000000000002"
    mine = receipt_packet(11.0, items=2)
    await crash_state(stand, doubt, mine, 0, fd_before=stand.documents()[-1]["fd"])
    register = stand.driver.registry.entries[0].adapter
    made = await register.fiscalize(decode_request(kkt(stand, doubt), json.dumps(mine).encode()).commands[0].receipt)
    received_days_ago(stand, doubt, 7)
    answer = await from_the_cloud(stand, mine, doubt)
    assert answer[0]["fdNumber_1040"] == made.fd_number and len(stand.receipts()) == 2


async def test_a_page_cannot_claim_a_cloud_order_id(stand):
    """The prefix alone, sent by a page, is an order id like any other: beyond the window, a new receipt."""
    order = CLOUD_ORDER_PREFIX + "from-a-page"
    await stand.post(receipt_packet(), kkt(stand, order))
    received_days_ago(stand, order, 7)
    _, answer, headers = await stand.post(receipt_packet(), kkt(stand, order))
    assert headers.get("X-Kktbridge-Replayed") != "true" and len(stand.receipts()) == 2
    assert answer[0]["fdNumber_1040"] == stand.receipts()[-1]["fd"]


async def test_the_journal_of_the_first_version_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        from kktbridge.driver.journal import _SCHEMA

        db.executescript(_SCHEMA)
        db.execute("insert into packets values (1, '7', 'f', 'http', null, '2026-01-01T00:00:00', null, 'running',"
                   " '{}', null, 0, 0)")
        db.execute("insert into commands (packet_id, idx, name, type, device, status, fd_before) values"
                   " (1, 0, 'чек', 'kktReceiptFiscalization', 'abc', 'started', 4)")
    journal = Journal(path)
    try:
        (row,) = journal.open_commands("abc")
        assert row.fd_before == 4 and row.expect is None and journal.devices_in_doubt() == {"abc"}
    finally:
        journal.close()


async def test_retention_forgets_old_packets_but_never_one_in_doubt(tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        done, _ = await journal.create_packet(order_id="a", fingerprint="f", source="t", origin=None,
                                              packet_json="{}", commands=[("x", "kktXReport", "tok", None)])
        await journal.finish(done, "done", [], [(0, "done", {"name": "x"}, "fd:tok:1:1")])
        doubt, _ = await journal.create_packet(order_id="b", fingerprint="f", source="t", origin=None,
                                               packet_json="{}", commands=[("x", "kktXReport", "tok", None)])
        await journal.start_command(doubt, 0)
        await journal.finish(doubt, "failed", [])
        assert await journal.prune(timedelta(seconds=-1)) == 1
        assert journal.get(done) is None and journal.get(doubt) is not None and journal.claimed(["fd:tok:1:1"]) == set()
    finally:
        journal.close()


def both(stand, order: str) -> dict:
    return {"BIT_KKT_TOKEN": stand.tokens[0], "BIT_BNK_TRM_TOKEN": stand.tokens[1], "BIT_ORDER_ID": order}


async def test_a_payment_in_flight_is_not_taken_from_the_previous_customer(shop):
    """Customer 1 paid 12.00; customer 2's identical payment was in flight when the driver stopped and never
    reached the terminal. The terminal's last operation (customer 1's) is claimed: customer 2 pays for real."""
    _, first, _ = await shop.post(EXAMPLE, both(shop, "customer-1"))
    await crash_state(shop, "customer-2", EXAMPLE, 0, both(shop, "customer-2"))
    _, second, _ = await shop.post(EXAMPLE, both(shop, "customer-2"))
    assert "success" in second[0] and second[0]["rrn"] != first[0]["rrn"]
    terminal = shop.driver.registry.entries[-1].adapter
    assert (await terminal.report()).extra["emu_purchase_count"] == "2" and len(shop.receipts()) == 2


async def test_a_refund_in_flight_is_not_repeated(shop):
    _, paid, _ = await shop.post(EXAMPLE, both(shop, "sale"))
    refund = [{"name": "возврат", "type": "bnkCardReturn", "data": {"sum": 12, "rrn": paid[0]["rrn"]}}]
    bnk = {"BIT_BNK_TRM_TOKEN": shop.tokens[1], "BIT_ORDER_ID": "refund"}
    await crash_state(shop, "refund", refund, 0, bnk)
    terminal = shop.driver.registry.entries[-1].adapter
    made = await terminal.refund(1200, paid[0]["rrn"])  # the terminal returned the money, then the driver died
    _, answer, _ = await shop.post(refund, bnk)
    assert "success" in answer[0] and answer[0]["rrn"] == made.rrn
    assert (await terminal.report()).extra["emu_refund_count"] == "1"


async def test_a_bank_only_packet_with_a_register_token_prints_the_slip(shop):
    settlement = [{"name": "сверка", "type": "bnkCardSverkaItogov"}]
    _, answer, _ = await shop.post(settlement, both(shop, "sverka"))
    assert "success" in answer[0] and answer[0]["slipPrinted"] is True


async def test_the_rows_in_doubt_are_found_without_reading_a_devices_history(tmp_path):
    """Run on every packet (and the status page's): SQLite must take them from the partial indexes of open rows,
    not scan a year of receipts (each query's predicate and its index's must stay word for word the same)."""
    journal = Journal(tmp_path / "j.sqlite3")
    ran: list[str] = []
    try:
        journal._reader.set_trace_callback(ran.append)
        journal.open_commands("tok")
        journal.devices_in_doubt()
        journal.interrupted()  # and the status page's packets left running
        journal._reader.set_trace_callback(None)
        assert len(ran) == 3, ran
        for statement, index in zip(ran, ["commands_unsettled", "commands_unsettled", "packets_running"]):
            plan = " ".join(row[3] for row in journal._reader.execute(f"explain query plan {statement}"))
            assert f"USING INDEX {index}" in plan, (statement, plan)
    finally:
        journal.close()
