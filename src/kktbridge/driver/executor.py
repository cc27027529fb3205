"""The one place that runs commands, whether a packet came from a browser, the cloud or the cabinet.

It alone decides ordering (the commands of a packet in order, stopping at the first failure), exclusivity
(a packet holds the locks of all its devices, so two browser tabs never interleave on one register, while
other devices keep working), de-duplication (an identical packet under the same BIT_ORDER_ID returns the stored
answer without touching a device) and resumption (a packet interrupted by a crash or a failure continues from
the first command that did not finish, after asking the device what became of a command in flight).
Journal rows are written before each action; see journal.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..bitapi import (
    CardOperationCommand,
    CashCommand,
    CheckMarkingCommand,
    Command,
    CommandResult,
    CommandType,
    Packet,
    ReceiptCommand,
    ServiceCommand,
    dumps,
    encode_results,
)
from ..devices.base import CardOperation, CardResult, FiscalRegister, PaymentTerminal
from ..devices.errors import device_error
from ..fiscal import BridgeError, CashOperationKind, DocumentKind, FiscalResult, format_rubles
from .journal import CommandRow, Journal
from .registry import DeviceEntry

__all__ = ["Executor", "Outcome"]

log = logging.getLogger("kktbridge.driver")

_FISCAL = {CommandType.RECEIPT: DocumentKind.RECEIPT, CommandType.OPEN_SHIFT: DocumentKind.OPEN_SHIFT,
           CommandType.CLOSE_SHIFT: DocumentKind.CLOSE_SHIFT}
_NOT_REPEATABLE = {CommandType.CASH_IN, CommandType.CASH_OUT}


@dataclass
class Outcome:
    response: Any  # the BIT JSON answer
    ok: bool
    replayed: bool = False
    packet_id: int | None = None
    device_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _skipped(command: Command) -> CommandResult:
    return CommandResult(command.name, command.type.wire, False, skipped=True,
                         error=BridgeError("skipped", "не выполнено: предыдущая команда завершилась ошибкой",
                                           "not run: an earlier command failed"))


class Executor:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._inflight: dict[tuple[str, str], asyncio.Future[Outcome]] = {}

    async def run(self, packet: Packet, devices: dict[str, DeviceEntry], *, source: str = "browser",
                  origin: str | None = None) -> Outcome:
        """Run a packet (or answer it from the journal); never raises for device trouble."""
        key = (packet.order_id, packet.fingerprint) if packet.order_id else None
        if key is not None and key in self._inflight:  # a double click: wait for the first run, answer the same
            outcome = await asyncio.shield(self._inflight[key])
            return Outcome(outcome.response, outcome.ok, True, outcome.packet_id)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if key is not None:
            self._inflight[key] = future
        try:
            outcome = await self._run(packet, devices, source, origin)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            if key is not None:
                self._inflight.pop(key, None)

    async def _run(self, packet: Packet, devices: dict[str, DeviceEntry], source: str,
                   origin: str | None) -> Outcome:
        prior = self.journal.find(packet.order_id, packet.fingerprint) if packet.order_id else None
        if prior is not None and prior.status == "done":
            self.journal.count_replay(prior.id)
            log.info("packet %d (order %s) answered again from the journal", prior.id, packet.order_id)
            return Outcome(prior.response, True, True, prior.id)
        if prior is not None:
            packet_id = prior.id
            rows = self.journal.commands(packet_id)
            self.journal.reopen(packet_id)
            log.info("packet %d (order %s) resumed after: %s", packet_id, packet.order_id, prior.status)
        else:
            packet_id, reused = self.journal.create_packet(
                order_id=packet.order_id, fingerprint=packet.fingerprint, source=source, origin=origin,
                packet_json=dumps({"tokens": list(packet.headers.tokens), "commands": [
                    {"name": c.name, "type": c.type.wire} for c in packet.commands]}),
                commands=[(c.name, c.type.wire, devices[c.device].token if c.device in devices else None)
                          for c in packet.commands])
            rows = [CommandRow(packet_id, index, c.name, c.type.wire, None, "pending", None, None)
                    for index, c in enumerate(packet.commands)]
            if reused:
                log.warning("order id %s was used before for a different packet: running it as a new request",
                            packet.order_id)
        entries = sorted({id(e): e for e in devices.values()}.values(), key=lambda e: e.token)
        started = time.perf_counter()
        async with _Locks(entries):
            outcome = await self._commands(packet, devices, packet_id, rows)
        outcome.device_seconds = min(outcome.device_seconds, time.perf_counter() - started)
        return outcome

    async def _commands(self, packet: Packet, devices: dict[str, DeviceEntry], packet_id: int,
                        rows: list[CommandRow]) -> Outcome:
        results: list[CommandResult | dict[str, Any]] = []  # skipped ones as results, the rest encoded
        device_seconds = 0.0
        paid: list[CardResult] = []
        failed = False
        ending: tuple[int, str, dict[str, Any]] | None = None
        for command, row in zip(packet.commands, rows):
            if failed:
                results.append(_skipped(command))
                continue
            if row.status == "done" and row.result is not None:
                results.append(row.result)
                continue
            entry = devices[command.device]
            began = time.perf_counter()
            waits = _JournalWaits()
            try:
                reconciled = None
                if row.status == "started":
                    reconciled = await self._reconcile(command, row, entry, packet_id)
                if reconciled is not None:
                    result, card = reconciled
                else:
                    result, card = await self._execute(command, entry, packet_id, devices, waits)
            finally:
                device_seconds += time.perf_counter() - began - waits.seconds
            if not result.ok and paid and command.type is CommandType.RECEIPT:
                result = await self._after_paid_receipt_failed(result, paid, devices)
            encoded = encode_results([result])[0]
            failed = not result.ok
            ending = (row.idx, _row_status(result), encoded)
            if failed or row.idx < len(rows) - 1:  # the last one is written with the packet's end: one commit
                self.journal.end_command(packet_id, *ending)
                ending = None
            results.append(encoded)
            if result.ok and command.type is CommandType.CARD_PAYMENT and card is not None:
                paid.append(card)
        response = [r if isinstance(r, dict) else encode_results([r])[0] for r in results]
        self.journal.finish(packet_id, "failed" if failed else "done", response, ending)
        return Outcome(response, not failed, False, packet_id, device_seconds)

    # --- one command -----------------------------------------------------------------------------------

    async def _execute(self, command: Command, entry: DeviceEntry, packet_id: int,
                       devices: dict[str, DeviceEntry],
                       waits: "_JournalWaits") -> tuple[CommandResult, CardResult | None]:
        index = command.index

        def checkpoint(last_fd: int) -> _Waited:
            # the write starts now, in a thread; the adapter may let the register work meanwhile and waits for it
            # before the fiscalizing command: only that wait is the driver's time inside the device call
            write = asyncio.ensure_future(asyncio.to_thread(self.journal.start_command, packet_id, index,
                                                            fd_before=last_fd))
            return _Waited(write, waits)

        if command.type not in _FISCAL:
            self.journal.start_command(packet_id, index)
        try:
            await entry.ensure_connected()
            if entry.role == "kkt":
                return await self._register(command, entry.adapter, checkpoint), None  # type: ignore[arg-type]
            return await self._terminal(command, entry.adapter, devices)  # type: ignore[arg-type]
        except BridgeError as exc:
            entry.lost(exc)
            log.warning("%s on %s: %s", command.type.wire, entry.config.name, exc.text())
            return CommandResult(command.name, command.type.wire, False, error=exc), None

    async def _register(self, command: Command, register: FiscalRegister, checkpoint) -> CommandResult:
        name, wire = command.name, command.type.wire
        if isinstance(command, ReceiptCommand):
            return CommandResult(name, wire, True, fiscal=await register.fiscalize(command.receipt,
                                                                                  checkpoint=checkpoint))
        if isinstance(command, CashCommand):
            await register.cash_operation(command.operation)
            verb = "внесено" if command.operation.kind is CashOperationKind.CASH_IN else "выплачено"
            return CommandResult(name, wire, True, message=f"OK: {verb} {format_rubles(command.operation.amount)} ₽")
        if isinstance(command, CheckMarkingCommand):
            return _check_marking(command)
        assert isinstance(command, ServiceCommand)
        kind = command.type
        if kind is CommandType.OPEN_SHIFT:
            return CommandResult(name, wire, True, fiscal=await register.open_shift(command.cashier,
                                                                                   checkpoint=checkpoint))
        if kind is CommandType.CLOSE_SHIFT:
            return CommandResult(name, wire, True, fiscal=await register.close_shift(command.cashier,
                                                                                    checkpoint=checkpoint))
        if kind is CommandType.X_REPORT:
            await register.x_report(command.cashier)
            return CommandResult(name, wire, True, message="OK: X-отчёт напечатан")
        if kind is CommandType.OPEN_DRAWER:
            await register.open_drawer()
            return CommandResult(name, wire, True, message="OK: денежный ящик открыт")
        raise device_error("not_supported", device_text=wire)

    async def _terminal(self, command: Command, terminal: PaymentTerminal,
                        devices: dict[str, DeviceEntry]) -> tuple[CommandResult, CardResult]:
        assert isinstance(command, CardOperationCommand)
        kind = command.type
        if kind is CommandType.CARD_PAYMENT:
            card = await terminal.pay(command.amount or 0)
        elif kind is CommandType.CARD_RETURN:
            card = await terminal.refund(command.amount or 0, command.rrn or "")
        elif kind is CommandType.CARD_CANCEL:
            card = await terminal.cancel(command.amount, command.rrn)
        elif kind is CommandType.CARD_SETTLEMENT:
            card = await terminal.settlement()
        elif kind in (CommandType.CARD_SHORT_REPORT, CommandType.CARD_FULL_REPORT):
            card = await terminal.report(full=kind is CommandType.CARD_FULL_REPORT)
        else:
            card = await terminal.last_operation()
        extra = card_fields(card)
        print_slip = devices["bnk"].config.options.get("print_slip", True) if "bnk" in devices else False
        if card.slip and print_slip and "kkt" in devices:
            extra.update(await self._print_slip(card, devices["kkt"]))
        if not card.approved:
            error = device_error("declined" if card.response_code not in ("999",) else "link",
                                 device_code=card.response_code, device_text=card.text)
            return CommandResult(command.name, command.type.wire, False, error=error, extra=extra), card
        return CommandResult(command.name, command.type.wire, True, message=f"OK: {card.text}", extra=extra), card

    async def _print_slip(self, card: CardResult, entry: DeviceEntry) -> dict[str, Any]:
        try:
            await entry.ensure_connected()
            await entry.adapter.print_text(card.slip.splitlines())  # type: ignore[union-attr]
            return {"slipPrinted": True}
        except BridgeError as exc:
            log.warning("slip not printed on %s: %s", entry.config.name, exc.text())
            return {"slipPrinted": False, "slipError": exc.text()}

    async def _after_paid_receipt_failed(self, result: CommandResult, paid: list[CardResult],
                                         devices: dict[str, DeviceEntry]) -> CommandResult:
        """The card was charged, the receipt failed: say so plainly, with what a refund needs."""
        card = paid[-1]
        extra = dict(result.extra)
        extra["paidRrn"] = card.rrn
        extra["paidAmount"] = format_rubles(card.amount or 0)
        note_ru = f"оплата картой прошла (RRN {card.rrn}, {format_rubles(card.amount or 0)} ₽), а чек не пробит"
        note_en = f"the card was charged (RRN {card.rrn}, {format_rubles(card.amount or 0)} RUB) but the receipt failed"
        if "bnk" in devices and devices["bnk"].config.options.get("reverse_on_failure", False):
            try:
                reversal = await devices["bnk"].adapter.cancel(card.amount, card.rrn)  # type: ignore[union-attr]
                extra["reversal"] = card_fields(reversal)
                note_ru += "; оплата отменена" if reversal.approved else "; отменить оплату не удалось"
                note_en += "; the payment was reversed" if reversal.approved else "; the reversal failed"
            except BridgeError as exc:
                extra["reversal"] = {"error": exc.text()}
                note_ru += "; отменить оплату не удалось"
                note_en += "; the reversal failed"
        else:
            note_ru += ": верните деньги по RRN или пробейте чек повторно"
            note_en += ": refund by the RRN or retry the receipt"
        error = result.error
        text = f"{note_ru} / {note_en}" + (f" — {error.text()}" if error else "")
        return CommandResult(result.name, result.type, False, message=text, error=error, extra=extra)

    # --- after a crash ---------------------------------------------------------------------------------

    async def _reconcile(self, command: Command, row: CommandRow, entry: DeviceEntry,
                         packet_id: int) -> tuple[CommandResult, CardResult | None] | None:
        """What became of a command in flight when the driver stopped: its result if it was carried out,
        None if it was not (run it), or an error when it cannot be known and must not be repeated."""
        await entry.ensure_connected()
        kind = _FISCAL.get(command.type)
        if kind is not None:
            if row.fd_before is None:
                self.journal.reset_command(packet_id, row.idx)
                return None  # it never reached the fiscalizing step
            last = await entry.adapter.last_document()  # type: ignore[union-attr]
            if last is None or last.fd_number <= row.fd_before:
                self.journal.reset_command(packet_id, row.idx)
                return None
            if _matches(command, kind, last, row.fd_before):
                log.warning("packet %d: %s was made before the stop (FD %d); not printing it again",
                            packet_id, command.type.wire, last.fd_number)
                return CommandResult(command.name, command.type.wire, True, fiscal=last), None
            error = device_error("fn_error", device_text=(
                f"после остановки на кассе документ ФД {last.fd_number}, не совпадающий с этой командой; "
                f"проверьте кассу / after the stop the register shows FD {last.fd_number}, which is not this "
                "command; check the register"))
            return CommandResult(command.name, command.type.wire, False, error=error), None
        if command.type in _NOT_REPEATABLE:
            error = device_error("outcome_unknown", retryable=False, device_text=(
                "драйвер остановился во время операции; проверьте наличные в кассе, операция не повторяется / "
                "the driver stopped during the operation; check the cash, it is not repeated"))
            return CommandResult(command.name, command.type.wire, False, error=error), None
        if command.type is CommandType.CARD_PAYMENT:
            return await self._reconcile_payment(command, entry, row)
        self.journal.reset_command(packet_id, row.idx)
        return None

    async def _reconcile_payment(self, command: Command, entry: DeviceEntry,
                                 row: CommandRow) -> tuple[CommandResult, CardResult | None]:
        """A payment in flight at the stop. Done if the terminal's last operation is that payment: approved, the
        same amount, made after the command started. Otherwise it is reported, never charged again blindly."""
        assert isinstance(command, CardOperationCommand)
        last = await entry.adapter.last_operation()  # type: ignore[union-attr]
        started = datetime.fromisoformat(row.started_at) if row.started_at else None
        recent = last.datetime is None or started is None or last.datetime >= started - timedelta(minutes=2)
        if last.approved and last.operation is CardOperation.PAYMENT and last.amount == command.amount and recent:
            log.warning("payment in flight at the stop was approved (RRN %s): not charging again", last.rrn)
            return CommandResult(command.name, command.type.wire, True, message=f"OK: {last.text}",
                                 extra=card_fields(last)), last
        error = device_error("outcome_unknown", retryable=False, device_text=(
            "драйвер остановился во время оплаты, и терминал не подтвердил её; проверьте операции терминала, "
            "оплата не повторяется автоматически / the driver stopped during the payment and the terminal does "
            "not confirm it; check the terminal's operations, the payment is not repeated automatically"))
        return CommandResult(command.name, command.type.wire, False, error=error, extra=card_fields(last)), None


def _row_status(result: CommandResult) -> str:
    """How a command's row ends. A command whose outcome is unknown stays `started`: the next attempt must ask the
    device what became of it (and never simply run it again)."""
    if result.ok:
        return "done"
    if result.error is not None and result.error.code == "outcome_unknown":
        return "started"
    return "failed"


def _matches(command: Command, kind: DocumentKind, last: FiscalResult, fd_before: int) -> bool:
    if last.fd_number != fd_before + 1 or last.kind is not kind:
        return False
    if isinstance(command, ReceiptCommand):
        return last.total == command.receipt.total and last.receipt_type is command.receipt.type
    return True


def card_fields(card: CardResult) -> dict[str, Any]:
    """A terminal's answer as keys beside `success`/`error` (docs/result-format.md)."""
    out: dict[str, Any] = {"responseCode": card.response_code, "responseText": card.text}
    for key, value in (("rrn", card.rrn), ("authCode", card.auth_code), ("cardMask", card.card_mask),
                       ("cardType", card.card_type), ("terminalId", card.terminal_id)):
        if value:
            out[key] = value
    if card.amount is not None:
        from ..fiscal import kopecks_to_decimal

        out["amount"] = kopecks_to_decimal(card.amount)
    if card.slip:
        out["slip"] = card.slip
    return out


def _check_marking(command: CheckMarkingCommand) -> CommandResult:
    """kktCheckKM: the vendor's demo says "пока не работает"; here the code's form is checked locally (GS1:
    01 + GTIN-14 + 21 + serial), without asking Честный знак, and said so."""
    code = command.code.decode("utf-8", errors="replace")
    if len(code) >= 18 and code.startswith("01") and code[2:16].isdigit():
        gtin = code[2:16]
        return CommandResult(command.name, command.type.wire, True,
                             message=f"OK: код маркировки читается (GTIN {gtin}); проверка в ГИС МТ не выполнялась",
                             extra={"gtin": gtin, "checkedOnline": False})
    error = BridgeError("marking_format", "код маркировки не в формате GS1 (01 + GTIN + 21 + серийный номер)",
                        "the marking code is not GS1 (01 + GTIN + 21 + serial)")
    return CommandResult(command.name, command.type.wire, False, error=error)


class _JournalWaits:
    """How long one command's device call waited for the journal (its checkpoint): the driver's time, not the
    device's."""

    def __init__(self) -> None:
        self.seconds = 0.0


class _Waited:
    """An awaitable journal write that adds the time spent awaiting it to `waits`."""

    def __init__(self, write: asyncio.Future, waits: _JournalWaits) -> None:
        self.write = write
        self.waits = waits

    def __await__(self):
        began = time.perf_counter()
        try:
            return (yield from self.write.__await__())
        finally:
            self.waits.seconds += time.perf_counter() - began


class _Locks:
    """Hold the locks of several devices, always taken in the same order (no deadlock)."""

    def __init__(self, entries: list[DeviceEntry]) -> None:
        self.entries = entries

    async def __aenter__(self) -> None:
        for entry in self.entries:
            await entry.lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        for entry in reversed(self.entries):
            entry.lock.release()

