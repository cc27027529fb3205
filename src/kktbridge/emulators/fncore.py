"""The fiscal storage (ФН) of every emulated register, and the only place their fiscal state changes.

Everything that changes an emulated device's fiscal state lives in this file: registration data, the shift
state machine with its 24-hour limit, the receipt state machine, counters, document numbers, the fiscal sign
and the append-only journal of documents. Emulators turn their wire protocol into calls here, and the FnError
codes here into their device's error codes; they keep no fiscal state of their own, so the ATOL and the
Mercury emulators print the same receipt with the same totals, VAT and QR fields.

Transitions (state → call → state), anything else raises FnError:

    shift closed  --open_shift-->   shift open       (document OPEN_SHIFT)
    shift open    --close_shift-->  shift closed     (document CLOSE_SHIFT; allowed when expired)
    no receipt    --begin_receipt-> receipt open     (shift open and not expired)
    receipt open  --add_item-->     receipt open     (before the first payment)
    receipt open  --add_payment-->  receipt open
    receipt open  --close_receipt-> no receipt       (document RECEIPT; payments cover the total)
    receipt open  --cancel_receipt->no receipt
    no receipt    --cash_in / cash_out / x_report--> no receipt (non-fiscal; journaled without an FD number)

Durability, for the power-loss switch: after each document the state file is replaced atomically (write,
fsync, rename), then the journal line is appended and fsynced, then the caller answers. A loss before the
state write means the document never happened; a loss between the two is repaired at the next start, which
appends the missing journal line. An open receipt is volatile, as on a real register: power loss cancels it.
The fiscal sign is a keyed hash of the document truncated to the printed 32-bit form (spec/devices.md §4.2).
Every document can be read back by its number (`document`), as from a real FN: the journal file is the archive.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..fiscal import (
    CashOperationKind,
    DocumentKind,
    FiscalResult,
    Item,
    PaymentKind,
    Payments,
    Receipt,
    ReceiptType,
    TaxationSystem,
)

__all__ = [
    "SHIFT_LIMIT",
    "FiscalCore",
    "FnCode",
    "FnError",
    "OpenReceipt",
    "Registration",
]

SHIFT_LIMIT = timedelta(hours=24)


class FnCode(enum.Enum):
    """Why the fiscal storage refused; each emulator maps these to its device's own error codes."""

    SHIFT_CLOSED = "shift_closed"
    SHIFT_OPEN = "shift_open"
    SHIFT_EXPIRED = "shift_expired"
    RECEIPT_OPEN = "receipt_open"
    NO_RECEIPT = "receipt_closed"
    ITEM_AFTER_PAYMENT = "item_after_payment"
    NO_ITEMS = "no_items"
    UNDERPAID = "underpaid"
    NON_CASH_ABOVE_TOTAL = "non_cash_above_total"
    NOT_ENOUGH_CASH = "not_enough_cash"
    BAD_VALUE = "bad_value"
    TAXATION = "taxation"


class FnError(Exception):
    def __init__(self, code: FnCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Registration:
    """The data a register is registered with (регистрация ККТ): printed on every document."""

    inn: str = "7707083893"
    reg_number: str = "0000000001012345"
    fn_number: str = "9999078900012345"
    fn_valid_until: str = "2028-06-30"  # the FN's end of validity (ISO date), as 0xA4 0x32 reports it
    serial: str = "00106100000001"
    organization: str = "ООО «Ромашка»"
    address: str = "г. Москва, ул. Тверская, д. 1"
    taxations: tuple[str, ...] = ("OSN", "USN_INCOME", "USN_INCOME_OUTCOME", "ESHN", "PATENT")
    ffd: str = "1.2"
    sign_key: str = "kktbridge-emulator"  # the key of the emulated fiscal sign

    def allows(self, taxation: TaxationSystem | None) -> bool:
        return taxation is None or taxation.name in self.taxations


@dataclass
class OpenReceipt:
    """A receipt being built: volatile, like the register's RAM."""

    type: ReceiptType
    taxation: TaxationSystem | None
    cashier: dict[str, str] | None
    electronically: bool
    buyer: dict[str, str] | None = None
    items: list[Item] = field(default_factory=list)
    payments: dict[PaymentKind, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(item.amount for item in self.items)

    @property
    def paid(self) -> int:
        return sum(self.payments.values())

    def to_receipt(self) -> Receipt:
        """The receipt as `fiscal` sees it, for the totals every register computes the same way."""
        by_name = {kind.name.lower(): value for kind, value in self.payments.items()}
        return Receipt(type=self.type, items=tuple(self.items), payments=Payments(**by_name), taxation=self.taxation,
                       electronically=self.electronically)


@dataclass
class _State:
    """What survives power loss."""

    next_fd: int = 1
    shift_number: int = 0
    shift_open: bool = False
    shift_opened_at: str | None = None
    receipts_in_shift: int = 0
    cash: int = 0  # kopecks in the drawer
    shift_totals: dict[str, int] = field(default_factory=dict)  # receipt type name → sum, for X/Z
    shift_receipts: dict[str, int] = field(default_factory=dict)  # receipt type name → receipts this shift
    shift_payments: dict[str, int] = field(default_factory=dict)  # "SALE:CASH" → kopecks paid this shift
    clock_offset: float = 0.0  # seconds added to the host clock (tests move time past 24 h)
    last_document: dict[str, Any] | None = None
    nonfiscal_number: int = 0


class FiscalCore:
    """One emulated fiscal storage. Not thread-safe: an emulator serves one request at a time."""

    def __init__(
        self,
        registration: Registration | None = None,
        *,
        state_path: Path | str | None = None,
        journal_path: Path | str | None = None,
        clock: Callable[[], datetime] = datetime.now,
        fsync: bool = True,
    ) -> None:
        self.registration = registration or Registration()
        self.state_path = Path(state_path) if state_path else None
        self.journal_path = Path(journal_path) if journal_path else None
        self._clock = clock
        self._fsync = fsync
        self._state = self._load()
        self.receipt: OpenReceipt | None = None
        self._repair_journal()
        self._archive = self._load_archive()

    # --- queries ---------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return (self._clock() + timedelta(seconds=self._state.clock_offset)).replace(microsecond=0)

    @property
    def shift_open(self) -> bool:
        return self._state.shift_open

    @property
    def shift_number(self) -> int:
        return self._state.shift_number

    @property
    def shift_opened_at(self) -> datetime | None:
        return datetime.fromisoformat(self._state.shift_opened_at) if self._state.shift_opened_at else None

    @property
    def shift_expired(self) -> bool:
        opened = self.shift_opened_at
        return self._state.shift_open and opened is not None and self.now() - opened > SHIFT_LIMIT

    @property
    def receipts_in_shift(self) -> int:
        return self._state.receipts_in_shift

    @property
    def cash(self) -> int:
        return self._state.cash

    @property
    def last_fd_number(self) -> int:
        return self._state.next_fd - 1

    @property
    def shift_totals(self) -> dict[str, int]:
        return dict(self._state.shift_totals)

    def shift_count(self, receipt_type: ReceiptType) -> int:
        """Receipts of this type in the shift (the register's counters, reset when a shift opens)."""
        return self._state.shift_receipts.get(receipt_type.name, 0)

    def shift_paid(self, receipt_type: ReceiptType, kind: PaymentKind) -> int:
        """Kopecks paid by this kind in this type's receipts of the shift, as their documents hold them."""
        return self._state.shift_payments.get(f"{receipt_type.name}:{kind.name}", 0)

    def last_document(self) -> dict[str, Any] | None:
        """The journal record of the last fiscal document (as written to the journal)."""
        return dict(self._state.last_document) if self._state.last_document else None

    def last_result(self) -> FiscalResult | None:
        doc = self._state.last_document
        return result_of(doc) if doc else None

    def document(self, fd_number: int) -> dict[str, Any] | None:
        """The record of fiscal document `fd_number`, as the FN keeps every document; None if there is none."""
        record = self._archive.get(fd_number)
        return dict(record) if record is not None else None

    # --- clock -----------------------------------------------------------------------------------------

    def advance_clock(self, seconds: float) -> None:
        """Move the register's clock (a test switch: a shift that outlives 24 hours)."""
        self._state.clock_offset += seconds
        self._save()

    # --- shift -----------------------------------------------------------------------------------------

    def open_shift(self, cashier: dict[str, str] | None = None) -> FiscalResult:
        self._no_receipt()
        if self._state.shift_open:
            raise FnError(FnCode.SHIFT_OPEN, "shift already open")
        state = self._state
        state.shift_number += 1
        state.shift_open = True
        state.shift_opened_at = self.now().isoformat()
        state.receipts_in_shift = 0
        state.shift_totals = {}
        state.shift_receipts = {}
        state.shift_payments = {}
        return self._document(DocumentKind.OPEN_SHIFT, {"cashier": cashier})

    def close_shift(self, cashier: dict[str, str] | None = None) -> FiscalResult:
        self._no_receipt()
        if not self._state.shift_open:
            raise FnError(FnCode.SHIFT_CLOSED, "shift is closed")
        totals = dict(self._state.shift_totals)
        receipts = self._state.receipts_in_shift
        self._state.shift_open = False
        return self._document(DocumentKind.CLOSE_SHIFT, {"cashier": cashier, "receipts": receipts,
                                                           "totals": totals, "cash": self._state.cash})

    def x_report(self) -> dict[str, Any]:
        """Shift counters without closing it (a non-fiscal document)."""
        self._no_receipt()
        report = {"shift": self._state.shift_number, "open": self._state.shift_open,
                  "receipts": self._state.receipts_in_shift, "totals": dict(self._state.shift_totals),
                  "cash": self._state.cash}
        self._nonfiscal("x_report", report)
        return report

    # --- receipt ---------------------------------------------------------------------------------------

    def begin_receipt(self, receipt_type: ReceiptType, *, taxation: TaxationSystem | None = None,
                      cashier: dict[str, str] | None = None, electronically: bool = False,
                      buyer: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        self._no_receipt()
        self._shift_usable()
        if not self.registration.allows(taxation):
            raise FnError(FnCode.TAXATION, f"taxation {taxation.name if taxation else None} is not registered")
        self.receipt = OpenReceipt(receipt_type, taxation, cashier, electronically, buyer, extra=dict(extra or {}))

    def update_receipt(self, *, taxation: TaxationSystem | None = None, cashier: dict[str, str] | None = None,
                       buyer: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        """Requisites that arrive after the receipt is opened (ATOL sends them one by one)."""
        receipt = self._open_receipt()
        if taxation is not None:
            if not self.registration.allows(taxation):
                raise FnError(FnCode.TAXATION, f"taxation {taxation.name} is not registered")
            receipt.taxation = taxation
        if cashier is not None:
            receipt.cashier = cashier
        if buyer is not None:
            receipt.buyer = buyer
        if extra:
            receipt.extra.update(extra)

    def add_item(self, item: Item) -> int:
        """Register a line; returns its position (1-based)."""
        receipt = self._open_receipt()
        if receipt.payments:
            raise FnError(FnCode.ITEM_AFTER_PAYMENT, "items cannot follow payments")
        if item.amount != item.quantity.amount_for(item.price) or item.price < 0:
            raise FnError(FnCode.BAD_VALUE, "item sum is not price × quantity")
        if not item.name.strip():
            raise FnError(FnCode.BAD_VALUE, "item has no name")
        receipt.items.append(item)
        return len(receipt.items)

    def add_payment(self, kind: PaymentKind, amount: int) -> tuple[int, int]:
        """Add a payment; returns (remainder still to pay, change so far)."""
        receipt = self._open_receipt()
        if amount < 0:
            raise FnError(FnCode.BAD_VALUE, "negative payment")
        if not receipt.items:
            raise FnError(FnCode.NO_ITEMS, "no items to pay for")
        non_cash = sum(v for k, v in receipt.payments.items() if k is not PaymentKind.CASH)
        if kind is not PaymentKind.CASH and non_cash + amount > receipt.total:
            raise FnError(FnCode.NON_CASH_ABOVE_TOTAL, "non-cash payments exceed the total")
        receipt.payments[kind] = receipt.payments.get(kind, 0) + amount
        return max(0, receipt.total - receipt.paid), max(0, receipt.paid - receipt.total)

    def close_receipt(self) -> FiscalResult:
        receipt = self._open_receipt()
        if not receipt.items:
            raise FnError(FnCode.NO_ITEMS, "a receipt needs at least one item")
        total, paid = receipt.total, receipt.paid
        if paid < total:
            raise FnError(FnCode.UNDERPAID, f"paid {paid} of {total}")
        change = paid - total
        cash_in = receipt.payments.get(PaymentKind.CASH, 0) - change
        delta = -cash_in if receipt.type in (ReceiptType.SALE_RETURN, ReceiptType.PURCHASE) else cash_in
        if self._state.cash + delta < 0:
            raise FnError(FnCode.NOT_ENOUGH_CASH, "not enough cash in the drawer")
        self._shift_usable()
        state = self._state
        state.cash += delta
        state.receipts_in_shift += 1
        state.shift_totals[receipt.type.name] = state.shift_totals.get(receipt.type.name, 0) + total
        state.shift_receipts[receipt.type.name] = state.shift_receipts.get(receipt.type.name, 0) + 1
        for kind, value in receipt.payments.items():
            key = f"{receipt.type.name}:{kind.name}"
            state.shift_payments[key] = state.shift_payments.get(key, 0) + value
        self.receipt = None
        vat = receipt.to_receipt().vat_totals()
        return self._document(DocumentKind.RECEIPT, {
            "type": int(receipt.type),
            "taxation": receipt.taxation.name if receipt.taxation else None,
            "receipt": state.receipts_in_shift,
            "total": total,
            "items": [_item_record(item) for item in receipt.items],
            "payments": {kind.name.lower(): value for kind, value in receipt.payments.items() if value},
            "change": change,
            "vat": {str(int(rate)): amount for rate, amount in vat.items()},
            "cashier": receipt.cashier,
            "buyer": receipt.buyer,
            "electronically": receipt.electronically,
            **({"extra": receipt.extra} if receipt.extra else {}),
        })

    def cancel_receipt(self) -> bool:
        had = self.receipt is not None
        self.receipt = None
        return had

    # --- cash ------------------------------------------------------------------------------------------

    def cash_operation(self, kind: CashOperationKind, amount: int, cashier: dict[str, str] | None = None) -> int:
        """Cash in or out; returns the non-fiscal document number."""
        self._no_receipt()
        self._shift_usable()
        if amount <= 0:
            raise FnError(FnCode.BAD_VALUE, "the sum must be above zero")
        if kind is CashOperationKind.CASH_OUT and amount > self._state.cash:
            raise FnError(FnCode.NOT_ENOUGH_CASH, f"only {self._state.cash} in the drawer")
        self._state.cash += amount if kind is CashOperationKind.CASH_IN else -amount
        return self._nonfiscal("cash_in" if kind is CashOperationKind.CASH_IN else "cash_out",
                               {"amount": amount, "cash": self._state.cash, "cashier": cashier})

    # --- internals -------------------------------------------------------------------------------------

    def _no_receipt(self) -> None:
        if self.receipt is not None:
            raise FnError(FnCode.RECEIPT_OPEN, "a receipt is open")

    def _open_receipt(self) -> OpenReceipt:
        if self.receipt is None:
            raise FnError(FnCode.NO_RECEIPT, "no receipt is open")
        return self.receipt

    def _shift_usable(self) -> None:
        if not self._state.shift_open:
            raise FnError(FnCode.SHIFT_CLOSED, "the shift is closed")
        if self.shift_expired:
            raise FnError(FnCode.SHIFT_EXPIRED, "the shift is older than 24 hours")

    def _document(self, kind: DocumentKind, body: dict[str, Any]) -> FiscalResult:
        state = self._state
        record: dict[str, Any] = {
            "doc": kind.name.lower(),
            "fd": state.next_fd,
            "shift": state.shift_number,
            "datetime": self.now().isoformat(),
            "fn": self.registration.fn_number,
            "reg": self.registration.reg_number,
            "inn": self.registration.inn,
            **{k: v for k, v in body.items() if v is not None},
        }
        record["fp"] = self._fiscal_sign(record)
        state.next_fd += 1
        state.last_document = record
        self._save()
        self._journal(record)
        self._archive[record["fd"]] = record
        return result_of(record)

    def _nonfiscal(self, kind: str, body: dict[str, Any]) -> int:
        self._state.nonfiscal_number += 1
        record = {"doc": kind, "fd": None, "number": self._state.nonfiscal_number,
                  "shift": self._state.shift_number, "datetime": self.now().isoformat(),
                  **{k: v for k, v in body.items() if v is not None}}
        self._save()
        self._journal(record)
        return self._state.nonfiscal_number

    def _fiscal_sign(self, record: dict[str, Any]) -> str:
        text = json.dumps(record, sort_keys=True, ensure_ascii=False).encode()
        digest = hmac.new(self.registration.sign_key.encode() + self.registration.fn_number.encode(), text,
                          hashlib.sha256).digest()
        return str(int.from_bytes(digest[:4], "big"))

    # persistence

    def _load(self) -> _State:
        if self.state_path is None or not self.state_path.exists():
            return _State()
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        return _State(**{k: v for k, v in data.items() if k in _State.__dataclass_fields__})

    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(asdict(self._state), out, ensure_ascii=False)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        os.replace(tmp, self.state_path)

    def _journal(self, record: dict[str, Any]) -> None:
        if self.journal_path is None:
            return
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.journal_path, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())

    def _load_archive(self) -> dict[int, dict[str, Any]]:
        """Every fiscal document by number: the journal file is the FN's archive (without one, this process's)."""
        archive = {r["fd"]: r for r in read_journal(self.journal_path) if r.get("fd") is not None} \
            if self.journal_path is not None else {}
        last = self._state.last_document
        if last is not None:
            archive[last["fd"]] = last
        return archive

    def _repair_journal(self) -> None:
        """Cut a line torn by power loss; append the last document if power failed before its line."""
        if self.journal_path is None:
            return
        if self.journal_path.exists():
            _cut_torn_tail(self.journal_path)
        last = self._state.last_document
        if last is None:
            return
        for record in reversed(read_journal(self.journal_path, tail=64)):
            if record.get("fd") is not None:
                if record["fd"] < last["fd"]:
                    self._journal(last)
                return
        self._journal(last)


def result_of(record: dict[str, Any]) -> FiscalResult:
    """The FiscalResult of a journal record."""
    kind = DocumentKind[record["doc"].upper()]
    return FiscalResult(
        kind=kind,
        fd_number=record["fd"],
        fiscal_sign=record["fp"],
        fn_number=record["fn"],
        shift_number=record["shift"],
        datetime=datetime.fromisoformat(record["datetime"]),
        reg_number=record.get("reg", ""),
        receipt_number=record.get("receipt"),
        total=record.get("total"),
        receipt_type=ReceiptType(record["type"]) if record.get("type") else None,
    )


def _cut_torn_tail(path: Path) -> None:
    with open(path, "rb+") as journal:
        journal.seek(0, os.SEEK_END)
        size = journal.tell()
        if size == 0:
            return
        journal.seek(max(0, size - 65536))
        tail = journal.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        journal.truncate(size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else size))


def read_journal(path: Path | str, *, tail: int | None = None) -> list[dict[str, Any]]:
    """The records of a journal file (the last `tail` ones when given); a torn last line is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, "rb") as source:
        if tail is not None:
            source.seek(0, os.SEEK_END)
            size = source.tell()
            source.seek(max(0, size - 4096 * tail))
        lines = source.read().splitlines()
    if tail is not None and len(lines) > tail:
        lines = lines[-tail:]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut by power loss, or the partial first line of a tail read
    return records


def _item_record(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": item.name, "price": item.price, "quantity": str(item.quantity), "amount": item.amount,
        "vat": int(item.vat) if item.vat is not None else None, "method": int(item.payment_method),
        "object": int(item.payment_object), "measure": int(item.measure),
    }
    if item.marking is not None:
        out["marking"] = {"code": base64.b64encode(item.marking.code).decode(), "type": item.marking.code_type,
                          "mode": item.marking.processing_mode, "status": item.marking.planned_status}
    if item.industry:
        out["industry"] = [asdict(r) for r in item.industry]
    if item.agent is not None:
        out["agent"] = int(item.agent.agent_type)
    if item.supplier is not None:
        out["supplier"] = {"name": item.supplier.name, "inn": item.supplier.inn}
    if item.additional_info:
        out["additional"] = item.additional_info
    return out

