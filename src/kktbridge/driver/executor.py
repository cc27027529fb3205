"""The one place that runs commands, whether a packet came from a browser, the cloud or the cabinet.

It alone decides
- ordering: the commands of a packet in order, stopping at the first failure;
- exclusivity: a packet holds the locks of all its devices (taken in one order, so never a deadlock), so two
  browser tabs never interleave on one register while other devices keep working. Waiting for the locks can be
  cancelled; once a packet holds them it runs to its end even if its caller gives up, so a timeout around a
  packet never cancels a command on a device;
- reconciliation first: before a packet runs on a device, every command left in flight there is resolved by the
  device itself (reconcile.py); a command whose outcome is unknown is resolved at once, the same way;
- de-duplication: an identical packet (captions aside) under the same BIT_ORDER_ID is answered from the journal
  without touching a device: within `replay_window` for packets that move money or make receipts, within
  `service_retry` for shift and report commands (the vendor's demo sends the same order id every day); a cloud
  receipt's order id (`CLOUD_ORDER_PREFIX` + its id) is never reused, so through the link it is the same
  request at any age (from a page, that prefix is an order id like any other);
- resumption: a packet interrupted by a crash or a failure continues from the first command that did not finish.
Journal rows are written before each action (journal.py); the card policy is cards.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
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
from ..devices.base import CardResult, FiscalRegister
from ..devices.errors import OutcomeUnknown, device_error
from ..fiscal import BridgeError, CashOperationKind, ShiftCounters, format_rubles
from .cards import MONEY, Paid, check_before_charging, operation_claim, run_bank_command, when_paid_receipt_failed
from .journal import CommandRow, Journal, PacketRow
from .reconcile import CARD_OPERATIONS, DOCUMENTS, Reconciler, document_claim, expectation
from .registry import DeviceEntry

__all__ = ["Executor", "Outcome"]

log = logging.getLogger("kktbridge.driver")

# The order id a cloud receipt runs under: this prefix and the cloud's receipt id, which is never reused.
CLOUD_ORDER_PREFIX = "cloud:"

_SERVICE = {CommandType.OPEN_SHIFT, CommandType.CLOSE_SHIFT, CommandType.X_REPORT, CommandType.OPEN_DRAWER,
            CommandType.CHECK_MARKING, CommandType.CARD_SETTLEMENT, CommandType.CARD_SHORT_REPORT,
            CommandType.CARD_FULL_REPORT, CommandType.CARD_LAST_OPERATION}  # repeated daily under one order id


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
    def __init__(self, journal: Journal, *, replay_window: timedelta = timedelta(hours=72),
                 service_retry: timedelta = timedelta(minutes=10)) -> None:
        self.journal = journal
        self.reconciler = Reconciler(journal)
        self.replay_window = replay_window
        self.service_retry = service_retry
        self._inflight: dict[tuple[str, str], asyncio.Future[Outcome]] = {}

    async def run(self, packet: Packet, devices: dict[str, DeviceEntry], *, source: str = "browser",
                  origin: str | None = None) -> Outcome:
        """Run a packet (or answer it from the journal); never raises for device trouble."""
        key = (packet.order_id, packet.fingerprint) if packet.order_id else None
        if key is not None and key in self._inflight:  # a double click: wait for the first run, answer the same
            outcome = await asyncio.shield(self._inflight[key])
            return Outcome(_captioned(outcome.response, packet), outcome.ok, True, outcome.packet_id)
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

    async def settle(self, entry: DeviceEntry) -> None:
        """Resolve what a stop left in flight on this device, under its lock (the driver does it at start-up)."""
        async with entry.lock:
            try:
                await self.reconciler.settle(entry)
            except BridgeError as exc:
                log.warning("%s: commands in flight at the stop stay unresolved for now: %s", entry.config.name,
                            exc.text())

    # --- a packet --------------------------------------------------------------------------------------

    def _prior(self, packet: Packet, source: str) -> PacketRow | None:
        """The journal's packet this one repeats, if it is recent enough to be a retry: a cloud receipt at any age
        (its id is never reused), when it comes through the link; a page cannot claim that by the prefix alone."""
        if not packet.order_id:
            return None
        prior = self.journal.find(packet.order_id, packet.fingerprint)
        if prior is None or (source == "cloud" and packet.order_id.startswith(CLOUD_ORDER_PREFIX)):
            return prior
        service = all(command.type in _SERVICE for command in packet.commands)
        window = self.service_retry if service else self.replay_window
        if datetime.now() - datetime.fromisoformat(prior.received_at) > window:
            log.info("order id %s was last used at %s, beyond the %s retry window: a new request", packet.order_id,
                     prior.received_at, window)
            return None
        return prior

    async def _run(self, packet: Packet, devices: dict[str, DeviceEntry], source: str,
                   origin: str | None) -> Outcome:
        prior = self._prior(packet, source)
        if prior is not None and prior.status == "done":
            return await self._replay(prior, packet)
        # journaled at once, in the journal's thread, while the packet waits for its devices and settles them
        creating = None if prior is not None else asyncio.ensure_future(self._create(packet, devices, source,
                                                                                    origin))
        entries = sorted({id(e): e for e in devices.values()}.values(), key=lambda e: e.token)
        try:
            await _acquire(entries)  # may be cancelled: then nothing was taken and nothing runs
        except asyncio.CancelledError:
            log.info("order %s: the client gave up while the packet waited for its devices; a resend runs it",
                     packet.order_id)
            raise
        work = asyncio.ensure_future(self._locked(packet, devices, entries, creating, prior))
        return await asyncio.shield(work)  # the caller may give up; the packet still ends properly

    async def _replay(self, prior: PacketRow, packet: Packet) -> Outcome:
        await self.journal.count_replay(prior.id)
        log.info("packet %d (order %s) answered again from the journal", prior.id, packet.order_id)
        return Outcome(_captioned(prior.response, packet), prior.status == "done", True, prior.id)

    async def _locked(self, packet: Packet, devices: dict[str, DeviceEntry], entries: list[DeviceEntry],
                      creating: asyncio.Future[int] | None, prior: PacketRow | None) -> Outcome:
        started = time.perf_counter()
        try:
            refusal = None
            try:
                for entry in entries:
                    await self.reconciler.settle(entry)
            except BridgeError as exc:
                refusal = exc
            if prior is not None:
                packet_id = prior.id
                await self.journal.reopen(packet_id)
                log.info("packet %d (order %s) resumed after: %s", packet_id, packet.order_id, prior.status)
                rows = self.journal.commands(packet_id)
            else:
                assert creating is not None
                packet_id = await creating
                rows = [CommandRow(packet_id, c.index, c.name, c.type.wire, None, "pending", None, None)
                        for c in packet.commands]
            if refusal is None and not any(r.status == "done" and r.type in _MONEY_WIRE for r in rows):
                try:
                    await check_before_charging(packet, devices)
                except BridgeError as exc:
                    refusal = exc
            outcome = await self._commands(packet, devices, packet_id, rows, refusal)
        finally:
            for entry in reversed(entries):
                entry.lock.release()
        outcome.device_seconds = min(outcome.device_seconds, time.perf_counter() - started)
        return outcome

    async def _create(self, packet: Packet, devices: dict[str, DeviceEntry], source: str, origin: str | None) -> int:
        packet_id, reused = await self.journal.create_packet(
            order_id=packet.order_id, fingerprint=packet.fingerprint, source=source, origin=origin,
            packet_json=dumps({"tokens": list(packet.headers.tokens), "commands": [
                {"name": c.name, "type": c.type.wire} for c in packet.commands]}),
            commands=[(c.name, c.type.wire, devices[c.device].token if c.device in devices else None, expectation(c))
                      for c in packet.commands])
        if reused:
            log.warning("order id %s was used before for a different packet: running it as a new request",
                        packet.order_id)
        return packet_id

    async def _commands(self, packet: Packet, devices: dict[str, DeviceEntry], packet_id: int,
                        rows: list[CommandRow], refusal: BridgeError | None) -> Outcome:
        results: list[dict[str, Any]] = []
        device_seconds = 0.0
        paid: list[Paid] = []
        failed = False
        ends: list[tuple] = []
        for command, row in zip(packet.commands, rows):
            if failed:
                results.append(encode_results([_skipped(command)])[0])
                continue
            if row.status in ("done", "abandoned") and row.result is not None:  # carried out, or never again
                results.append({**row.result, "name": command.name})
                failed = row.status == "abandoned"
                if command.type is CommandType.CARD_PAYMENT and not failed:
                    paid.append(Paid(row.idx, row.result.get("rrn"), command.amount or 0))  # type: ignore[attr-defined]
                continue
            entry = devices[command.device]
            status, claim = "failed", None
            if refusal is not None:  # nothing runs: the first command that did not finish says why
                result, refusal = CommandResult(command.name, command.type.wire, False, error=refusal), None
                status = "started" if row.status == "started" else "failed"  # a row in doubt stays in doubt
            else:
                began = time.perf_counter()
                waits = _JournalWaits()
                try:
                    result, card, unknown = await self._execute(command, entry, packet_id, devices, waits)
                    if unknown:
                        result, status, claim = await self._resolve_now(command, entry, packet_id, result)
                    else:
                        status = "done" if result.ok else "failed"
                        if result.fiscal is not None:
                            claim = document_claim(entry.token, result.fiscal)
                        elif card is not None and command.type in CARD_OPERATIONS:  # declined ones too
                            claim = operation_claim(entry.token, card)
                finally:
                    device_seconds += time.perf_counter() - began - waits.seconds
                if result.ok and command.type is CommandType.CARD_PAYMENT and card is not None:
                    paid.append(Paid(row.idx, card.rrn, card.amount or command.amount or 0))  # type: ignore
            if not result.ok and paid and command.type is CommandType.RECEIPT:
                result = await when_paid_receipt_failed(result, paid[-1], devices, self.journal, packet_id,
                                                        in_doubt=status == "started")
            encoded = encode_results([replace(result, warnings=command.warnings)])[0]
            results.append(encoded)
            failed = not result.ok
            if status == "started":
                continue  # in doubt: the row stays started, to be resolved before anything else runs there
            ends.append((row.idx, status, encoded, claim))
            if not failed and row.idx < len(rows) - 1:  # the last end is written with the packet's: one commit
                await self.journal.end_command(packet_id, *ends.pop())
        await self.journal.finish(packet_id, "failed" if failed else "done", results, ends)
        return Outcome(results, not failed, False, packet_id, device_seconds)

    async def _resolve_now(self, command: Command, entry: DeviceEntry, packet_id: int,
                           cause: CommandResult) -> tuple[CommandResult, str, str | None]:
        """A command whose outcome the device left unknown, resolved at once (the lock is still ours)."""
        row = self.journal.commands(packet_id)[command.index]
        verdict = await self.reconciler.resolve(row, entry)
        if verdict.state == "done":
            assert verdict.result is not None
            return verdict.result, "done" if verdict.result.ok else "failed", verdict.claim
        if verdict.state == "not_made":
            await self.journal.reset_command(packet_id, command.index)
            return cause, "failed", None  # what the device said stands: it was not done, a retry may run it
        assert verdict.result is not None
        return verdict.result, "started" if verdict.state == "in_doubt" else "abandoned", None

    # --- one command -----------------------------------------------------------------------------------

    async def _execute(self, command: Command, entry: DeviceEntry, packet_id: int, devices: dict[str, DeviceEntry],
                       waits: "_JournalWaits") -> tuple[CommandResult, CardResult | None, bool]:
        """Run one command; its result, the terminal's answer (bank commands) and whether the outcome is unknown."""
        index = command.index

        def checkpoint(column: str):
            def write(mark: int, counters: ShiftCounters | None = None) -> _Waited:
                # the write starts now, in the journal's thread; the adapter may let the device work meanwhile and
                # waits for it before the command it protects: only that wait is the driver's time in the call
                shift = counters.to_json() if counters is not None else None
                return _Waited(asyncio.ensure_future(self.journal.start_command(
                    packet_id, index, **{column: mark}, counters_before=shift)), waits)
            return write

        if command.type not in DOCUMENTS and not isinstance(command, CashCommand):
            await self.journal.start_command(packet_id, index)
        try:
            await entry.ensure_connected()
            if entry.role == "kkt":
                return await self._register(command, entry.adapter, checkpoint), None, False  # type: ignore[arg-type]
            assert isinstance(command, CardOperationCommand)
            result, card = await run_bank_command(command, entry.adapter, devices)  # type: ignore[arg-type]
            return result, card, False
        except OSError as exc:  # a socket call the transport did not expect to fail: ask the device, as for a lost
            error = device_error("outcome_unknown", device_text=f"{type(exc).__name__}: {exc}")  # answer
            log.warning("%s on %s: %s", command.type.wire, entry.config.name, error.text())
            entry.lost(error)
            return CommandResult(command.name, command.type.wire, False, error=error), None, True
        except BridgeError as exc:
            entry.lost(exc)
            log.warning("%s on %s: %s", command.type.wire, entry.config.name, exc.text())
            return CommandResult(command.name, command.type.wire, False, error=exc), None, isinstance(
                exc, OutcomeUnknown)

    async def _register(self, command: Command, register: FiscalRegister, checkpoint) -> CommandResult:
        name, wire = command.name, command.type.wire
        if isinstance(command, ReceiptCommand):
            return CommandResult(name, wire, True, fiscal=await register.fiscalize(
                command.receipt, checkpoint=checkpoint("fd_before")))
        if isinstance(command, CashCommand):
            await register.cash_operation(command.operation, checkpoint=checkpoint("cash_before"))
            verb = "внесено" if command.operation.kind is CashOperationKind.CASH_IN else "выплачено"
            return CommandResult(name, wire, True, message=f"OK: {verb} {format_rubles(command.operation.amount)} ₽")
        if isinstance(command, CheckMarkingCommand):
            return _check_marking(command)
        assert isinstance(command, ServiceCommand)
        kind = command.type
        if kind is CommandType.OPEN_SHIFT:
            return CommandResult(name, wire, True, fiscal=await register.open_shift(
                command.cashier, checkpoint=checkpoint("fd_before")))
        if kind is CommandType.CLOSE_SHIFT:
            return CommandResult(name, wire, True, fiscal=await register.close_shift(
                command.cashier, checkpoint=checkpoint("fd_before")))
        if kind is CommandType.X_REPORT:
            await register.x_report(command.cashier)
            return CommandResult(name, wire, True, message="OK: X-отчёт напечатан")
        if kind is CommandType.OPEN_DRAWER:
            await register.open_drawer()
            return CommandResult(name, wire, True, message="OK: денежный ящик открыт")
        raise device_error("not_supported", device_text=wire)


_MONEY_WIRE = {kind.wire for kind in MONEY}


def _captioned(response: Any, packet: Packet) -> Any:
    """A stored answer under the captions the client sent this time (captions do not identify a packet)."""
    if not isinstance(response, list) or len(response) != len(packet.commands):
        return response
    return [{**result, "name": command.name} if isinstance(result, dict) else result
            for result, command in zip(response, packet.commands)]


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


async def _acquire(entries: list[DeviceEntry]) -> None:
    """Take the locks of several devices, always in the same order (no deadlock). If the wait is cancelled, the
    locks taken so far are given back: nothing leaks."""
    taken: list[DeviceEntry] = []
    try:
        for entry in entries:
            await entry.lock.acquire()
            taken.append(entry)
    except BaseException:
        for entry in reversed(taken):
            entry.lock.release()
        raise
