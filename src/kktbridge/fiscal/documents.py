"""Is this document ours? The one rule that decides it, for every register and for the driver's reconciliation.

After a crash or a broken link, what a command did is found in the fiscal storage itself: the documents made
after the command's checkpoint are read back one by one and compared with what the command would make
(`Expected`). The rule compares what every register keeps exactly: the kind of document and, for receipts,
their type, total, payments by kind and each line's price, quantity and line total. Free text (item names,
captions, the cashier) is not compared: a register may recode or cut it, and a false "not ours" would print a
receipt twice. Where a register cannot say the payments or the lines, they are not compared. Documents that
another journal row already answered with are excluded by the caller, never here.

Where a register cannot read a document back at all, the change in its shift counters since the checkpoint
(`ShiftCounters`: receipts per type, payments per receipt type and kind) stands in for it (`counted`): the
documents it could read account for their part, and what is left is either exactly this command's receipt, or
nothing, or something that cannot be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .codes import PaymentKind, ReceiptType
from .quantity import Quantity
from .receipt import Receipt
from .result import DocumentKind, FiscalResult

__all__ = ["DocumentLine", "Expected", "FnDocument", "ShiftCounters", "counted"]


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """One receipt line as the FN keeps it (1079, 1023, 1043; 1030 for people reading, never compared)."""

    price: int
    quantity: Quantity
    amount: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class FnDocument:
    """A document read back from the fiscal storage: its fiscal data and, where the register tells, its content."""

    result: FiscalResult
    payments: dict[PaymentKind, int] | None = None  # the non-zero sums by kind; None: the register does not say
    lines: tuple[DocumentLine, ...] | None = None  # None: the register does not say

    @property
    def fd_number(self) -> int:
        return self.result.fd_number


def _payments(sums: dict[PaymentKind, int]) -> tuple[tuple[PaymentKind, int], ...]:
    return tuple(sorted(((kind, value) for kind, value in sums.items() if value), key=lambda pair: pair[0].value))


@dataclass(frozen=True, slots=True)
class Expected:
    """What a command would put into the FN: the description its document is recognised by."""

    kind: DocumentKind
    receipt_type: ReceiptType | None = None
    total: int | None = None
    payments: tuple[tuple[PaymentKind, int], ...] = ()
    lines: tuple[DocumentLine, ...] = ()

    @classmethod
    def of_receipt(cls, receipt: Receipt) -> "Expected":
        return cls(DocumentKind.RECEIPT, receipt.type, receipt.total, _payments(receipt.payments.by_kind()),
                   tuple(DocumentLine(item.price, item.quantity, item.amount, item.name) for item in receipt.items))

    def matches(self, document: FnDocument) -> bool:
        made = document.result
        if made.kind is not self.kind:
            return False
        if self.kind is not DocumentKind.RECEIPT:
            return True
        if made.receipt_type is not self.receipt_type or made.total != self.total:
            return False
        if document.payments is not None and _payments(document.payments) != self.payments:
            return False
        if document.lines is not None:
            if len(document.lines) != len(self.lines):
                return False
            for line, mine in zip(document.lines, self.lines):
                if (line.price, line.quantity, line.amount) != (mine.price, mine.quantity, mine.amount):
                    return False
        return True

    def describe(self) -> str:
        """For logs and the status page: what is being looked for."""
        if self.kind is not DocumentKind.RECEIPT:
            return self.kind.name.lower()
        paid = ", ".join(f"{kind.name.lower()} {value}" for kind, value in self.payments) or "nothing"
        return (f"receipt {self.receipt_type.name.lower() if self.receipt_type else '?'} total {self.total} "
                f"({len(self.lines)} lines; paid {paid})")

    # --- the journal keeps it as JSON ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.name}
        if self.kind is DocumentKind.RECEIPT:
            out.update(type=int(self.receipt_type) if self.receipt_type else None, total=self.total,
                       payments={kind.name: value for kind, value in self.payments},
                       lines=[[line.price, line.quantity.micros, line.amount] for line in self.lines])
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Expected":
        kind = DocumentKind[data["kind"]]
        if kind is not DocumentKind.RECEIPT:
            return cls(kind)
        return cls(kind, ReceiptType(data["type"]) if data.get("type") else None, data.get("total"),
                   _payments({PaymentKind[name]: value for name, value in (data.get("payments") or {}).items()}),
                   tuple(DocumentLine(price, Quantity(micros), amount)
                         for price, micros, amount in data.get("lines") or ()))


@dataclass(frozen=True, slots=True)
class ShiftCounters:
    """What a register counts in its open shift: the receipts of each type and the payments of each receipt type by
    kind (kopecks). Kept as a checkpoint beside the FD number by registers that cannot read documents back."""

    shift_number: int
    shift_open: bool
    receipts: tuple[tuple[ReceiptType, int], ...] = ()  # the non-zero counts
    payments: tuple[tuple[ReceiptType, PaymentKind, int], ...] = ()  # the non-zero sums

    @classmethod
    def of(cls, shift_number: int, shift_open: bool, receipts: dict[ReceiptType, int],
           payments: dict[tuple[ReceiptType, PaymentKind], int]) -> "ShiftCounters":
        return cls(shift_number, shift_open,
                   tuple(sorted(((t, n) for t, n in receipts.items() if n), key=lambda e: e[0].value)),
                   tuple(sorted(((t, k, v) for (t, k), v in payments.items() if v),
                                key=lambda e: (e[0].value, e[1].value))))

    def to_json(self) -> dict[str, Any]:
        return {"shift": self.shift_number, "open": self.shift_open,
                "receipts": {t.name: n for t, n in self.receipts},
                "payments": [[t.name, k.name, v] for t, k, v in self.payments]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ShiftCounters":
        return cls.of(data["shift"], data["open"], {ReceiptType[t]: n for t, n in data["receipts"].items()},
                      {(ReceiptType[t], PaymentKind[k]): v for t, k, v in data["payments"]})


_Tally = dict[tuple[Any, ...], int]


def _tally(counters: ShiftCounters) -> _Tally:
    out: _Tally = {("receipts", t): n for t, n in counters.receipts}
    out.update({("paid", t, k): v for t, k, v in counters.payments})
    return out


def _add(tally: _Tally, receipt_type: ReceiptType, payments: Any, sign: int = 1) -> None:
    key = ("receipts", receipt_type)
    tally[key] = tally.get(key, 0) + sign
    for kind, value in payments:
        key = ("paid", receipt_type, kind)
        tally[key] = tally.get(key, 0) + sign * value


def counted(expected: Expected, before: ShiftCounters, now: ShiftCounters,
            read_back: list[FnDocument]) -> bool | None:
    """Did the command make its receipt, by the shift counters at its checkpoint and now? `read_back` are the
    documents made since that the register could read (none of them is the command's: the caller compared them);
    they account for their part. True: what is left is exactly this receipt; False: nothing is left; None: it
    cannot be told (another shift, a document read back without its payments, or a change no one receipt makes)."""
    if expected.kind is not DocumentKind.RECEIPT or expected.receipt_type is None:
        return None  # shift documents start and end the counters themselves
    if (before.shift_number, before.shift_open) != (now.shift_number, now.shift_open) or not now.shift_open:
        return None
    left = _tally(now)
    for key, value in _tally(before).items():
        left[key] = left.get(key, 0) - value
    for document in read_back:
        made = document.result
        if made.kind is DocumentKind.RECEIPT:
            if made.receipt_type is None or document.payments is None:
                return None
            _add(left, made.receipt_type, document.payments.items(), -1)
    if not any(left.values()):
        return False
    _add(left, expected.receipt_type, expected.payments, -1)
    return True if not any(left.values()) else None
