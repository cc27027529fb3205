"""What the vendor's own clients send short or inconsistent, made whole while the packet is decoded, and said so.

The vendor's published clients (spec/bit-api.md §9: the 2025 demo page, the Bitrix, WooCommerce and Joomla
modules) send receipts that its driver prints: a register closes a receipt whose payments fall short by paying
the rest in cash, and computes the line total itself. A drop-in replacement must print them too. The rules of
this file:

- only data that is missing or contradicts itself is changed; complete, consistent data is never touched;
- every change is an `Adjustment` (the caller's key path, a stable code, what was done in Russian and English)
  carried on the command into its result (`warnings`), the journal and the status page;
- `strict` (per driver or per register) turns every one of them off: the packet is refused as sent;
- all of it is decided here, before anything runs: a card payment that is declined stops the packet before
  the receipt that counts on it, so counting on it at decoding is sound.

The adjustments, by code:

- `payments_completed`: payments missing or short of the total. The shortfall is paid electronically up to the
  card money of earlier `bnkCardPayment`s of the packet that no receipt shows yet (a `bnkCardReturn`'s money
  for a return receipt), the rest in cash.
- `amount_recomputed`: `amount_1043` ≠ price × quantity, on a register that computes line totals (ATOL,
  Mercury: `Limits.line_total_by_register`). The register's price × quantity stands.
- `price_from_total`: an item without `price_1079` but with a line total (`sum`, the WooCommerce shape, or
  `amount_1043`). Price = total / quantity when that is exact to the kopeck; otherwise refused.
- `cashier_inn_dropped`: a `cashierInn_1203` that is not a person's INN (the Bitrix module sends the admin's
  name). It is left out; the buyer's 1228 and every other fiscal field are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ..fiscal import FieldError, Quantity, Receipt, ReceiptType, format_rubles, is_valid_inn
from ..fiscal.quantity import MAX_PLACES
from ..fiscal.validation import Path
from .commands import CardOperationCommand, Command, CommandType, ReceiptCommand
from .tags import MISSING, Node, money_at

__all__ = ["Adjustment", "CardMoney", "cashier_inn", "complete_payments", "price_from_total", "register_line_totals"]


@dataclass(frozen=True, slots=True)
class Adjustment(FieldError):
    """One change made to what the caller sent: its key path, a stable code, and what was done, in ru and en."""


# --- across the packet: card money that a receipt may count on -------------------------------------------

_CARD_PAYS_FOR = {CommandType.CARD_PAYMENT: ReceiptType.SALE, CommandType.CARD_RETURN: ReceiptType.SALE_RETURN}


class CardMoney:
    """The card money of a packet's earlier bank commands that no receipt shows yet, per receipt type it pays."""

    def __init__(self) -> None:
        self._unshown: dict[ReceiptType, int] = {}

    def unshown(self, receipt_type: ReceiptType) -> int:
        return self._unshown.get(receipt_type, 0)

    def note(self, command: Command) -> None:
        """Count a decoded command: a card payment adds money, a receipt shows (uses up) its electronic part."""
        if isinstance(command, CardOperationCommand) and command.type in _CARD_PAYS_FOR:
            kind = _CARD_PAYS_FOR[command.type]
            self._unshown[kind] = self.unshown(kind) + (command.amount or 0)
        elif isinstance(command, ReceiptCommand):
            kind = command.receipt.type
            self._unshown[kind] = max(0, self.unshown(kind) - command.receipt.payments.electronic)


# --- one receipt -----------------------------------------------------------------------------------------


def register_line_totals(receipt: Receipt, where: Callable[[Path], str]) -> tuple[Receipt, list[Adjustment]]:
    """Lines whose sent `amount_1043` is not price × quantity get price × quantity, as the register computes it."""
    items, notes = [], []
    for index, item in enumerate(receipt.items):
        computed = item.quantity.amount_for(item.price)
        if item.amount != computed:
            sent, got = format_rubles(item.amount), format_rubles(computed)
            line = f"{format_rubles(item.price)} × {item.quantity}"
            notes.append(Adjustment(
                where(("items", index, "amount")), "amount_recomputed",
                f"сумма позиции {sent} не равна цене × количество = {line}; ККТ считает её сама: {got}",
                f"the line total {sent} is not price × quantity = {line}; the register computes it: {got}"))
            item = replace(item, amount=computed)
        items.append(item)
    return (replace(receipt, items=tuple(items)) if notes else receipt), notes


def complete_payments(receipt: Receipt, card_unshown: int,
                      where: Callable[[Path], str]) -> tuple[Receipt, Adjustment | None]:
    """Payments short of the total: the card money the receipt does not show yet first, the rest in cash."""
    paid = receipt.payments
    short = receipt.total - paid.total
    if short <= 0:
        return receipt, None
    electronic = min(short, max(0, card_unshown - paid.electronic))
    cash = short - electronic
    ru_parts, en_parts = [], []
    if electronic:
        ru_parts.append(f"{format_rubles(electronic)} безналичными (оплата картой в этом пакете)")
        en_parts.append(f"{format_rubles(electronic)} electronically (the card payment of this packet)")
    if cash:
        ru_parts.append(f"{format_rubles(cash)} наличными")
        en_parts.append(f"{format_rubles(cash)} in cash")
    total = format_rubles(receipt.total)
    ru_was = "оплата не указана" if not paid.total else f"оплата {format_rubles(paid.total)} меньше суммы чека {total}"
    en_was = "no payments given" if not paid.total else \
        f"payments of {format_rubles(paid.total)} are short of the total {total}"
    note = Adjustment(where(("payments",)), "payments_completed",
                      f"{ru_was}: доплачено {' и '.join(ru_parts)}", f"{en_was}: {' and '.join(en_parts)} added")
    payments = replace(paid, electronic=paid.electronic + electronic, cash=paid.cash + cash)
    return replace(receipt, payments=payments), note


# --- one field, while it is read -------------------------------------------------------------------------


def price_from_total(node: Node, quantity: Quantity | None) -> tuple[int | None, int | None]:
    """(price, line total) of an item sent without `price_1079`: its line total (`sum`, or `amount_1043`) divided by
    the quantity, when that is a whole number of kopecks. Otherwise an error names price_1079."""
    price_wire, _ = node.locate(1079, "price")
    hit = node.named("sum")
    if hit is not None:
        wire, value = node.key_path(hit[0]), hit[1]
    else:
        wire, value = node.locate(1043, None)
    total = money_at(node.ctx, wire, value) if value is not MISSING and value != "" else 0
    if total == 0:  # nothing to divide (0 is "not sent", as for amount_1043): the price is simply missing
        node.money(1079, "price", required="цена (price_1079)")
        return None, None
    if total is None or quantity is None:
        return None, None
    price, rest = divmod(total * 10**MAX_PLACES, quantity.micros)
    if rest:
        node.ctx.error(price_wire, "required",
                       f"не указана цена (price_1079), а сумма позиции {format_rubles(total)} / количество "
                       f"{quantity} не делится до копейки: укажите price_1079",
                       f"price_1079 is missing and the line total {format_rubles(total)} / quantity {quantity} is "
                       "not a whole number of kopecks: send price_1079")
        return None, None
    node.ctx.warn(Adjustment(price_wire, "price_from_total",
                             f"цена не указана: сумма позиции {format_rubles(total)} / количество {quantity} = "
                             f"{format_rubles(price)}",
                             f"no price given: the line total {format_rubles(total)} / quantity {quantity} = "
                             f"{format_rubles(price)}"))
    return price, total


def cashier_inn(node: Node) -> str | None:
    """The cashier's INN 1203. Lenient: a value that is not a person's INN (12 digits, check digits right) is left
    out with a note; strict: read as sent, so validation refuses it."""
    if node.ctx.strict:
        return node.text(1203, None, digits=True)
    text = node.text(1203, None)
    if text is None or (len(text) == 12 and is_valid_inn(text)):
        return text
    wire, _ = node.locate(1203, None)
    node.ctx.warn(Adjustment(wire, "cashier_inn_dropped",
                             f"«{text}» — не ИНН кассира (12 цифр с верной контрольной суммой): "
                             "реквизит 1203 не передан",
                             f"'{text}' is not a cashier's INN (12 digits with a correct checksum): "
                             "tag 1203 is left out"))
    return None
