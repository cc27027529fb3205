"""The card policy: money taken by card ends in a receipt, or the cashier is told plainly how to give it back.

Three rules live here and nowhere else:
- before a packet charges a card for a receipt, the register is asked whether it can print that receipt (shift
  not older than 24 hours, the taxation system registered, paper, cover closed, values the model can carry), so a
  card is never charged for a receipt the register will certainly refuse;
- when the receipt still fails after the card was charged, the answer names the RRN and the sum; with
  `reverse_on_failure` the payment is given back, and the reversal is journaled before the terminal is told
  (a payment that came back is never replayed as "paid");
- no reversal while the receipt's outcome is unknown: it may be in the fiscal storage.
Bank commands themselves (and the slip they print on the packet's register) run here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from ..bitapi import CardOperationCommand, Command, CommandResult, CommandType, Packet, ReceiptCommand
from ..devices.base import CardResult, FiscalRegister, PaymentTerminal
from ..devices.errors import device_error
from ..fiscal import BridgeError, FieldError, ValidationFailed, format_rubles, kopecks_to_decimal
from .journal import Journal
from .registry import DeviceEntry

__all__ = ["MONEY", "Paid", "card_fields", "check_before_charging", "run_bank_command", "when_paid_receipt_failed"]

log = logging.getLogger("kktbridge.driver")

MONEY = {CommandType.CARD_PAYMENT, CommandType.CARD_RETURN}  # commands that move a customer's money


@dataclass(frozen=True)
class Paid:
    """A card payment of this packet that went through: its row, its RRN and its sum."""

    idx: int
    rrn: str | None
    amount: int


def card_fields(card: CardResult) -> dict[str, Any]:
    """A terminal's answer as keys beside `success`/`error` (docs/result-format.md)."""
    out: dict[str, Any] = {"responseCode": card.response_code, "responseText": card.text}
    for key, value in (("rrn", card.rrn), ("authCode", card.auth_code), ("cardMask", card.card_mask),
                       ("cardType", card.card_type), ("terminalId", card.terminal_id)):
        if value:
            out[key] = value
    if card.amount is not None:
        out["amount"] = kopecks_to_decimal(card.amount)
    if card.slip:
        out["slip"] = card.slip
    return out


def card_result(command: Command, card: CardResult, extra: dict[str, Any] | None = None) -> CommandResult:
    """The BIT result of a terminal's answer: success when approved, a decline (or no answer) otherwise."""
    fields = {**card_fields(card), **(extra or {})}
    if card.approved:
        return CommandResult(command.name, command.type.wire, True, message=f"OK: {card.text}", extra=fields)
    error = device_error("declined" if card.response_code not in ("999",) else "link",
                         device_code=card.response_code, device_text=card.text)
    return CommandResult(command.name, command.type.wire, False, error=error, extra=fields)


# --- before the first command ------------------------------------------------------------------------------


async def check_before_charging(packet: Packet, devices: dict[str, DeviceEntry]) -> None:
    """Raise a BridgeError (nothing has run yet) when a receipt of this packet, after a card operation that moves
    money, would certainly be refused by its register."""
    first_money = next((c.index for c in packet.commands if c.type in MONEY), None)
    receipts = [c for c in packet.commands if isinstance(c, ReceiptCommand) and first_money is not None
                and c.index > first_money]
    if not receipts or "kkt" not in devices:
        return  # no card money before a receipt: the register's own refusal costs nothing
    register: FiscalRegister = devices["kkt"].adapter  # type: ignore[assignment]
    problems: list[FieldError] = []
    for command in receipts:
        try:
            register.validate(command.receipt)
        except ValidationFailed as exc:
            problems += [replace(problem, path=f"[{command.index}].data.{problem.path}") for problem in exc.fields]
    if problems:
        raise ValidationFailed(problems)
    await devices["kkt"].ensure_connected()
    status = await register.status()
    reasons = []
    if status.shift_open and status.shift_expired and not any(
            c.type is CommandType.CLOSE_SHIFT and c.index < receipts[0].index for c in packet.commands):
        reasons.append(("shift_expired", "смена на кассе открыта больше 24 часов: закройте её (Z-отчёт)",
                        "the register's shift is over 24 hours old: close it (Z report)"))
    if not status.paper:
        reasons.append(("no_paper", "в кассе нет бумаги", "the register is out of paper"))
    if status.cover_open:
        reasons.append(("cover_open", "открыта крышка принтера кассы", "the register's printer cover is open"))
    for command in receipts:
        taxation = command.receipt.taxation
        if taxation is not None and status.taxations and taxation not in status.taxations:
            reasons.append(("taxation", f"система налогообложения {taxation.name} не указана при регистрации кассы",
                            f"taxation system {taxation.name} is not in the register's registration"))
    if reasons:
        code, ru, en = reasons[0]
        raise device_error(code, ru="оплата картой не начата: " + "; ".join(r[1] for r in reasons),
                           en="the card was not charged: " + "; ".join(r[2] for r in reasons),
                           retryable=True, device_text=None)


# --- bank commands -----------------------------------------------------------------------------------------


async def run_bank_command(command: CardOperationCommand, terminal: PaymentTerminal,
                           devices: dict[str, DeviceEntry]) -> tuple[CommandResult, CardResult]:
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
    extra: dict[str, Any] = {}
    print_slip = devices["bnk"].config.options.get("print_slip", True) if "bnk" in devices else False
    if card.slip and print_slip and "kkt" in devices:
        extra.update(await _print_slip(card, devices["kkt"]))
    return card_result(command, card, extra), card


async def _print_slip(card: CardResult, entry: DeviceEntry) -> dict[str, Any]:
    try:
        await entry.ensure_connected()
        await entry.adapter.print_text(card.slip.splitlines())  # type: ignore[union-attr]
        return {"slipPrinted": True}
    except BridgeError as exc:
        log.warning("slip not printed on %s: %s", entry.config.name, exc.text())
        return {"slipPrinted": False, "slipError": exc.text()}


# --- after the receipt failed ------------------------------------------------------------------------------


async def when_paid_receipt_failed(result: CommandResult, paid: Paid, devices: dict[str, DeviceEntry],
                                   journal: Journal, packet_id: int, *, in_doubt: bool) -> CommandResult:
    """The card was charged and the receipt did not go through: say so plainly, with what a refund needs; give
    the payment back when configured, journaled first. Never while the receipt is `in_doubt`."""
    extra = dict(result.extra)
    extra["paidRrn"] = paid.rrn
    extra["paidAmount"] = kopecks_to_decimal(paid.amount)
    sum_text = format_rubles(paid.amount)
    note_ru = f"оплата картой прошла (RRN {paid.rrn}, {sum_text} ₽)"
    note_en = f"the card was charged (RRN {paid.rrn}, {sum_text} RUB)"
    if in_doubt:
        note_ru += ", а результат чека пока неизвестен: оплата не отменяется, повторите запрос, чтобы узнать его"
        note_en += " and the receipt's outcome is not known yet: the payment is kept; repeat the request to learn it"
    else:
        note_ru += ", а чек не пробит"
        note_en += " but the receipt failed"
        if "bnk" in devices and devices["bnk"].config.options.get("reverse_on_failure", False):
            approved, fields = await _reverse(paid, devices["bnk"], journal, packet_id)
            extra["reversal"] = fields
            note_ru += "; оплата отменена, повтор запроса оплатит заново" if approved else \
                "; отменить оплату не удалось: верните деньги по RRN"
            note_en += "; the payment was reversed, a repeated request pays again" if approved else \
                "; the reversal failed: refund by the RRN"
        else:
            note_ru += ": верните деньги по RRN или повторите запрос (оплата не повторится)"
            note_en += ": refund by the RRN or repeat the request (the payment is not repeated)"
    error = result.error
    text = f"{note_ru} / {note_en}" + (f" — {error.text()}" if error else "")
    return CommandResult(result.name, result.type, False, message=text, error=error, extra=extra)


async def _reverse(paid: Paid, entry: DeviceEntry, journal: Journal, packet_id: int) -> tuple[bool, dict[str, Any]]:
    await journal.start_reversal(packet_id, paid.idx)
    try:
        await entry.ensure_connected()
        reversal = await entry.adapter.cancel(paid.amount, paid.rrn)  # type: ignore[union-attr]
    except BridgeError as exc:  # not known whether the terminal gave it back: reconciliation will ask it
        entry.lost(exc)
        log.warning("reversal of RRN %s: %s", paid.rrn, exc.text())
        return False, {"error": exc.text()}
    fields = card_fields(reversal)
    await journal.end_reversal(packet_id, paid.idx, reversal.approved, fields,
                               claim=operation_claim(entry.token, reversal))
    return reversal.approved, fields


def operation_claim(terminal: str, card: CardResult) -> str | None:
    """The journal's claim of a terminal operation: one row per operation, never two."""
    return f"card:{terminal}:{card.operation.value}:{card.rrn}" if card.rrn else None
