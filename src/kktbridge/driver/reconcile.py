"""What became of a command in flight: decided by the device itself, before anything else runs on that device.

A command left `started` in the journal (the driver was killed, the link broke, the register lost power) is an
outcome to establish, never a command to repeat. `settle(device)` resolves every such command of a device under
its lock, and the executor calls it before each packet, so nothing else runs on a device while one of its
outcomes is open. Each command is resolved by what the device keeps:
- a fiscal document (receipt, shift): the documents after the checkpointed FD number are read back one by one
  and compared with what the command would make (fiscal/documents.py, the one rule); documents another row
  already claimed are excluded. Found: done, answered with that document. Not found, every document read, and
  no receipt left open: it was not made and may run. Where documents cannot be read back, a receipt's row
  holds the register's shift counters too: what they changed by, less the documents read, is exactly this
  receipt (done, answered with the missing document when it is the register's last one) or nothing (not made).
  Otherwise it stays in doubt;
- a cash in/out: the drawer's cash against the checkpoint: +sum done, unchanged not made, anything else
  abandoned (someone else moved cash);
- a card payment, refund or cancel: the terminal's last operation, if it is of that kind and sum, newer than
  the command, and no other row claimed it: done (approved or declined); otherwise not made. A reversal in
  flight is resolved the same way;
- X report, cash drawer, settlement, terminal reports: the devices cannot tell; abandoned (never repeated,
  the answer says to check the device).
A device that cannot be asked leaves the command in doubt: the answer is a retryable "outcome not known yet".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..bitapi import CashCommand, Command, CommandResult, CommandType, ReceiptCommand, encode_results
from ..devices.base import CardOperation, CardResult, FiscalRegister, PaymentTerminal
from ..devices.errors import device_error
from ..fiscal import (
    BridgeError,
    CashOperationKind,
    DocumentKind,
    Expected,
    FiscalResult,
    FnDocument,
    ShiftCounters,
    counted,
    format_rubles,
)
from .cards import card_fields, card_result, operation_claim
from .journal import CommandRow, Journal
from .registry import DeviceEntry

__all__ = ["CARD_OPERATIONS", "DOCUMENTS", "Reconciler", "Verdict", "document_claim", "expectation", "in_doubt_error"]

log = logging.getLogger("kktbridge.driver")

DOCUMENTS = {CommandType.RECEIPT, CommandType.OPEN_SHIFT, CommandType.CLOSE_SHIFT}
CARD_OPERATIONS = {  # bank commands that make a terminal operation (queries and reports make none)
    CommandType.CARD_PAYMENT: CardOperation.PAYMENT, CommandType.CARD_RETURN: CardOperation.REFUND,
    CommandType.CARD_CANCEL: CardOperation.CANCEL}
_REPEATABLE = {CommandType.CARD_LAST_OPERATION, CommandType.CHECK_MARKING}  # queries: nothing to find out
_CLOCK_SKEW = timedelta(minutes=2)  # a terminal's clock may be this far behind the PC's
_BY_WIRE = {member.wire: member for member in CommandType}


def expectation(command: Command) -> dict[str, Any] | None:
    """What a command would leave on its device, as the journal keeps it (the `expect` of its row)."""
    if isinstance(command, ReceiptCommand):
        return {"document": Expected.of_receipt(command.receipt).to_json()}
    if command.type is CommandType.OPEN_SHIFT:
        return {"document": Expected(DocumentKind.OPEN_SHIFT).to_json()}
    if command.type is CommandType.CLOSE_SHIFT:
        return {"document": Expected(DocumentKind.CLOSE_SHIFT).to_json()}
    if isinstance(command, CashCommand):
        sign = 1 if command.operation.kind is CashOperationKind.CASH_IN else -1
        return {"cash": sign * command.operation.amount}
    if command.type in CARD_OPERATIONS:
        return {"amount": getattr(command, "amount", None), "rrn": getattr(command, "rrn", None)}
    return None


def document_claim(register: str, document: FnDocument | FiscalResult) -> str:
    """The journal's claim of a fiscal document of the register with this token: one row per document."""
    result = document.result if isinstance(document, FnDocument) else document
    return f"fd:{register}:{result.fn_number}:{result.fd_number}"


def in_doubt_error(what: str) -> BridgeError:
    return device_error("outcome_unknown", retryable=True, ru=(
        "результат операции пока неизвестен: устройство не ответило, что с ней стало; операция не повторяется, "
        "повторите запрос позже"), en=("the operation's outcome is not known yet: the device has not said what became "
                                       "of it; it is not repeated; send the request again later"), device_text=what)


@dataclass(frozen=True)
class Verdict:
    """How a command in flight ended: `done` (with its answer and claim), `not_made` (it may run), `in_doubt`
    (ask again later, never repeat), `abandoned` (cannot be known, never repeated: its answer says so)."""

    state: str
    result: CommandResult | None = None
    claim: str | None = None
    card: CardResult | None = None


class Reconciler:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def settle(self, entry: DeviceEntry) -> None:
        """Resolve every open command of this device (call it holding the device's lock). Raises a retryable
        BridgeError when one stays in doubt: nothing else may run on the device until it is resolved."""
        for row in self.journal.open_commands(entry.token):
            if row.reversal == "started":
                try:
                    await self._settle_reversal(row, entry)
                except (BridgeError, OSError) as exc:
                    raise in_doubt_error(f"a reversal in flight: {exc}") from None
                continue
            verdict = await self.resolve(row, entry)
            await self.apply(row, verdict)
            if verdict.state == "in_doubt":
                assert verdict.result is not None and verdict.result.error is not None
                raise verdict.result.error

    async def apply(self, row: CommandRow, verdict: Verdict) -> None:
        """Write a verdict into the journal (in doubt: the row stays `started`)."""
        if verdict.state == "done":
            assert verdict.result is not None
            await self.journal.end_command(row.packet_id, row.idx, "done" if verdict.result.ok else "failed",
                                           encode_results([verdict.result])[0], verdict.claim)
            log.warning("packet %d: %s was carried out before the stop: %s", row.packet_id, row.type,
                        verdict.claim or "answered from the device")
        elif verdict.state == "not_made":
            await self.journal.reset_command(row.packet_id, row.idx)
            log.info("packet %d: %s was not carried out before the stop; it runs when sent again", row.packet_id,
                     row.type)
        elif verdict.state == "abandoned":
            assert verdict.result is not None
            await self.journal.end_command(row.packet_id, row.idx, "abandoned", encode_results([verdict.result])[0])
            log.warning("packet %d: the outcome of %s cannot be established; it is not repeated", row.packet_id,
                        row.type)

    async def resolve(self, row: CommandRow, entry: DeviceEntry) -> Verdict:
        """The verdict on one open command, asked of its device; never raises for device trouble."""
        kind = _BY_WIRE.get(row.type)
        try:
            if kind in DOCUMENTS:
                return await self._document(row, entry)
            if kind in (CommandType.CASH_IN, CommandType.CASH_OUT):
                return await self._cash(row, entry)
            if kind in CARD_OPERATIONS:
                return await self._card(row, entry, CARD_OPERATIONS[kind])
        except (BridgeError, OSError) as exc:
            error = exc if isinstance(exc, BridgeError) else device_error("link", device_text=str(exc))
            entry.lost(error)
            log.warning("packet %d: what became of %s cannot be asked now: %s", row.packet_id, row.type, error.text())
            return _doubt(row, error.text())
        if kind in _REPEATABLE:
            return Verdict("not_made")
        return _abandoned(row, "устройство не сообщает, выполнена ли команда до остановки; проверьте устройство",
                          "the device does not tell whether the command was carried out before the stop; check it")

    # --- by kind ---------------------------------------------------------------------------------------

    async def _document(self, row: CommandRow, entry: DeviceEntry) -> Verdict:
        if row.fd_before is None:
            return Verdict("not_made")  # it never reached its checkpoint, so never the fiscalizing command
        expected = Expected.from_json((row.expect or {})["document"])
        await entry.ensure_connected()
        register: FiscalRegister = entry.adapter  # type: ignore[assignment]
        status = await register.status()
        documents = await register.documents_since(row.fd_before)
        claimed = self.journal.claimed([document_claim(entry.token, d) for d in documents])
        for document in documents:
            claim = document_claim(entry.token, document)
            if claim not in claimed and expected.matches(document):
                return Verdict("done", CommandResult(row.name, row.type, True, fiscal=document.result), claim)
        if status.receipt_open:
            log.warning("a receipt was left open on %s (not fiscalized); cancelling it", entry.config.name)
            await register.cancel_receipt()
        read = {d.fd_number for d in documents}
        missing = [n for n in range(row.fd_before + 1, status.last_fd_number + 1) if n not in read]
        if missing:
            return await self._counted(row, entry, expected, documents, missing)
        return Verdict("not_made")

    async def _counted(self, row: CommandRow, entry: DeviceEntry, expected: Expected, documents: list[FnDocument],
                       missing: list[int]) -> Verdict:
        """Documents after the checkpoint that the register cannot give back: its shift counters decide, if the
        row kept them (fiscal/documents.py `counted`)."""
        unread = f"{len(missing)} document(s) after FD {row.fd_before} cannot be read back"
        register: FiscalRegister = entry.adapter  # type: ignore[assignment]
        now = await register.counters() if row.counters_before is not None else None
        if now is None:
            return _doubt(row, unread)
        made = counted(expected, ShiftCounters.from_json(row.counters_before), now, documents)  # type: ignore[arg-type]
        if made is False:
            log.info("packet %d: the shift counters show no receipt of its own since FD %d", row.packet_id,
                     row.fd_before)
            return Verdict("not_made")
        if made and len(missing) == 1:
            last = await register.last_document()
            claim = document_claim(entry.token, last) if last is not None else None
            if last is not None and last.fd_number == missing[0] and not self.journal.claimed([claim]):
                log.warning("packet %d: FD %d is its receipt by the shift counters (the register cannot read it "
                            "back)", row.packet_id, last.fd_number)
                return Verdict("done", CommandResult(row.name, row.type, True, fiscal=last), claim)
        return _doubt(row, f"{unread}, and the shift counters do not tell whether it is this receipt")

    async def _cash(self, row: CommandRow, entry: DeviceEntry) -> Verdict:
        if row.cash_before is None:
            return Verdict("not_made")
        delta = (row.expect or {})["cash"]
        await entry.ensure_connected()
        now = await entry.adapter.drawer_cash()  # type: ignore[union-attr]
        if now == row.cash_before + delta:
            verb = "внесено" if delta > 0 else "выплачено"
            return Verdict("done", CommandResult(row.name, row.type, True,
                                                 message=f"OK: {verb} {format_rubles(abs(delta))} ₽"))
        if now == row.cash_before:
            return Verdict("not_made")
        return _abandoned(row, f"наличные в кассе изменились на {format_rubles(now - row.cash_before)} ₽, а не на "
                               f"сумму операции: проверьте кассу",
                          f"the drawer's cash changed by {format_rubles(now - row.cash_before)}, not by the "
                          "operation's sum: check the cash")

    async def _card(self, row: CommandRow, entry: DeviceEntry, operation: CardOperation) -> Verdict:
        amount = (row.expect or {}).get("amount")
        await entry.ensure_connected()
        terminal: PaymentTerminal = entry.adapter  # type: ignore[assignment]
        last = await terminal.last_operation()
        claim = operation_claim(entry.token, last)
        since = datetime.fromisoformat(row.started_at) - _CLOCK_SKEW if row.started_at else None
        candidate = last.operation is operation and (claim is None or not self.journal.claimed([claim])) and (
            last.datetime is None or since is None or last.datetime >= since)
        if not candidate:
            return Verdict("not_made")
        if amount is not None and last.amount is None:
            return _doubt(row, "the terminal's last operation does not say its sum")
        if amount is not None and last.amount != amount:
            return Verdict("not_made")
        command = _Named(row.name, _BY_WIRE[row.type])
        return Verdict("done", card_result(command, last), claim, last)  # type: ignore[arg-type]

    async def _settle_reversal(self, row: CommandRow, entry: DeviceEntry) -> None:
        """A reversal in flight: given back if the terminal's last operation is a void of that sum, newer than the
        reversal and claimed by no row; otherwise the payment stands."""
        await entry.ensure_connected()
        last = await entry.adapter.last_operation()  # type: ignore[union-attr]
        claim = operation_claim(entry.token, last)
        since = datetime.fromisoformat(row.reversal_at) - _CLOCK_SKEW if row.reversal_at else None
        amount = (row.expect or {}).get("amount")
        given_back = last.operation is CardOperation.CANCEL and last.approved and (
            claim is None or not self.journal.claimed([claim])) and (amount is None or last.amount == amount) and (
            last.datetime is None or since is None or last.datetime >= since)
        await self.journal.end_reversal(row.packet_id, row.idx, given_back,
                                        card_fields(last) if given_back else None, claim if given_back else None)
        log.warning("packet %d: the reversal in flight at the stop %s", row.packet_id,
                    "went through" if given_back else "did not happen; the payment stands")


@dataclass(frozen=True)
class _Named:
    """Enough of a command for a result: its caption and type."""

    name: str
    type: CommandType


def _doubt(row: CommandRow, why: str) -> Verdict:
    return Verdict("in_doubt", CommandResult(row.name, row.type, False, error=in_doubt_error(why)))


def _abandoned(row: CommandRow, ru: str, en: str) -> Verdict:
    error = device_error("outcome_unknown", retryable=False,
                         ru=f"драйвер остановился во время операции: {ru}; операция не повторяется автоматически, "
                            "при необходимости отправьте новый запрос",
                         en=f"the driver stopped during the operation: {en}; it is not repeated automatically, "
                            "send a new request if it is needed")
    return Verdict("abandoned", CommandResult(row.name, row.type, False, error=error))

