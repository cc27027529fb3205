"""The commands of a BIT packet: their types (API 1.2–1.5 and the spellings clients really send) and data.

A command is `{name, type, data}` plus optional extras at its own level (`cashSum`/`sum`, `showMode`).
Each type names the device kind it needs (`kkt` register, `bnk` bank terminal), so the executor can pick
the device from the token of that kind.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..fiscal import DEFAULT_LIMITS, CashOperation, CashOperationKind, Cashier, Receipt
from .jsontext import JsonObject
from .tags import Node, as_int, marking_bytes, money_at

if TYPE_CHECKING:
    from .compat import Adjustment

__all__ = [
    "CardOperationCommand",
    "CashCommand",
    "CheckMarkingCommand",
    "Command",
    "CommandType",
    "ReceiptCommand",
    "ServiceCommand",
    "ShowMode",
    "command_type",
]


class CommandType(enum.Enum):
    """A command type by its wire name, with the device kind it runs on."""

    RECEIPT = ("kktReceiptFiscalization", "kkt")
    OPEN_SHIFT = ("kktOpenShift", "kkt")
    CLOSE_SHIFT = ("kktCloseShift", "kkt")
    X_REPORT = ("kktXReport", "kkt")
    CASH_IN = ("kktCashIn", "kkt")
    CASH_OUT = ("kktCashOut", "kkt")
    OPEN_DRAWER = ("kktOpenCashDraw", "kkt")
    CHECK_MARKING = ("kktCheckKM", "kkt")
    CARD_PAYMENT = ("bnkCardPayment", "bnk")
    CARD_RETURN = ("bnkCardReturn", "bnk")
    CARD_CANCEL = ("bnkCardCancel", "bnk")  # kktbridge's own: void the last (or a given) card payment
    CARD_SHORT_REPORT = ("bnkCardShortReport", "bnk")
    CARD_FULL_REPORT = ("bnkCardFullReport", "bnk")
    CARD_SETTLEMENT = ("bnkCardSverkaItogov", "bnk")
    CARD_LAST_OPERATION = ("bnkCardLastOperationResult", "bnk")

    def __init__(self, wire: str, device: str) -> None:
        self.wire = wire
        self.device = device


_BY_NAME = {member.wire.lower(): member for member in CommandType}


def command_type(name: str) -> CommandType | None:
    """The type of a wire name; the Cyrillic С (U+0421/U+0441) of `kktСashIn` and letter case are forgiven, nothing
    else: a type is an identifier from code, so one with spaces around it is a mistake to report, not to guess."""
    return _BY_NAME.get(name.replace("\u0421", "C").replace("\u0441", "c").lower())


class ShowMode(enum.IntEnum):
    """`showMode`: when the vendor's driver shows its log window. Accepted and carried, not acted on."""

    ALWAYS = 1
    ON_ERROR = 2
    NEVER = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    index: int  # position in the packet
    name: str  # caption, echoed in the result
    type: CommandType
    show_mode: ShowMode | None = None
    warnings: tuple[Adjustment, ...] = ()  # what decoding adjusted in it (compat.py), reported beside its result

    @property
    def device(self) -> str:
        return self.type.device


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptCommand(Command):
    receipt: Receipt


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceCommand(Command):
    """Shift open/close, X report, cash drawer: only a cashier, if any."""

    cashier: Cashier | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CashCommand(Command):
    operation: CashOperation


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckMarkingCommand(Command):
    code: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CardOperationCommand(Command):
    """Any bnk* command: a sum for payment, return and cancel; an RRN for return and cancel of a given one."""

    amount: int | None = None  # kopecks
    rrn: str | None = None


def read_show_mode(node: Node, command: JsonObject, path: str) -> ShowMode | None:
    value = command.get("showMode")
    if value is None:
        return None
    number = as_int(value)
    try:
        return ShowMode(number) if number is not None else None
    except ValueError:
        pass
    node.ctx.error(f"{path}.showMode", "code", "showMode: допустимы 1, 2, 4", "showMode: 1, 2 or 4 are allowed")
    return None


def cash_operation(kind: CommandType, command: JsonObject, data: Node | None, path: str, node: Node,
                   cashier: Cashier | None) -> CashOperation | None:
    """Cash in/out: `cashSum` (or `sum` before 2025-05) at command level, or inside data."""
    for holder, holder_path in ((command, path), (data.obj if data else None, data.path if data else "")):
        if holder is None:
            continue
        for key in ("cashSum", "sum"):
            if holder.get(key) is not None:
                if data is not None and holder is data.obj:
                    data.seen(key)
                amount = money_at(node.ctx, f"{holder_path}.{key}", holder[key])
                if amount is None:
                    return None
                node.ctx.keys[("amount",)] = f"{holder_path}.{key}"
                op_kind = CashOperationKind.CASH_IN if kind is CommandType.CASH_IN else CashOperationKind.CASH_OUT
                return CashOperation(kind=op_kind, amount=amount, cashier=cashier)
    node.ctx.error(f"{path}.cashSum", "required", "не указана сумма внесения/выплаты (cashSum)",
                   "the cash sum (cashSum) is missing")
    return None


def card_fields(command: CommandType, data: Node | None, path: str, node: Node) -> tuple[int | None, str | None, bool]:
    """(amount, rrn, ok) of a bnk* command's data."""
    needs_sum = command in (CommandType.CARD_PAYMENT, CommandType.CARD_RETURN)
    needs_rrn = command is CommandType.CARD_RETURN
    amount = rrn = None
    ok = True
    obj: Any = data.obj if data is not None else {}
    data_path = data.path if data is not None else f"{path}.data"
    if data is not None:
        data.seen("sum", "rrn")
    if obj.get("sum") is not None:
        amount = money_at(node.ctx, f"{data_path}.sum", obj["sum"])
        ok = amount is not None
        if amount == 0 and needs_sum:
            node.ctx.error(f"{data_path}.sum", "range", "сумма оплаты картой должна быть больше нуля",
                           "a card payment sum must be above zero")
            ok = False
        elif amount is not None and amount > DEFAULT_LIMITS.max_sum:
            node.ctx.error(f"{data_path}.sum", "range", "сумма больше наибольшей, что принимают ККТ и терминалы",
                           "the sum is above the most registers and terminals take")
            ok = False
    elif needs_sum:
        node.ctx.error(f"{data_path}.sum", "required", "не указана сумма (sum)", "the sum (sum) is missing")
        ok = False
    raw_rrn = obj.get("rrn")
    if raw_rrn is not None and raw_rrn != "":
        rrn = str(raw_rrn).strip()
        if not (rrn.isascii() and rrn.isalnum() and len(rrn) <= 32):
            node.ctx.error(f"{data_path}.rrn", "format", "RRN — до 32 латинских букв и цифр",
                           "an RRN is up to 32 letters and digits")
            ok = False
    elif needs_rrn:
        node.ctx.error(f"{data_path}.rrn", "required", "для возврата нужен RRN исходной операции (rrn)",
                       "a return needs the RRN of the original payment (rrn)")
        ok = False
    return amount, rrn, ok


def marking_code(data: Node | None, path: str, node: Node) -> bytes | None:
    hit = data.find(2000) if data is not None else None
    if hit is None or not isinstance(hit[1], str) or not hit[1]:
        node.ctx.error(f"{data.path if data else path}.km_2000", "required", "не указан код маркировки (km_2000)",
                       "the marking code (km_2000) is missing")
        return None
    return marking_bytes(node.ctx, data.key_path(hit[0]), hit[1])
