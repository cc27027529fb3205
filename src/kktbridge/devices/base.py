"""The two interfaces every device family implements: a fiscal register and a bank payment terminal.

The driver knows devices only through these. An adapter speaks its device's protocol over a transport and turns
answers into `fiscal` values and `DeviceError`s; it never sees HTTP, the BIT format or the cloud. All methods
are coroutines; one adapter serves one device and is used by one task at a time (the driver holds a lock
per device), so adapters need no locking of their own.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from ..fiscal import CashOperation, Cashier, FiscalResult, FnDocument, Receipt, ShiftCounters, TaxationSystem

__all__ = [
    "CardOperation",
    "Checkpoint",
    "CardResult",
    "FiscalRegister",
    "PaymentTerminal",
    "RegisterStatus",
]


Checkpoint = Callable[..., Awaitable[None]]
"""Called with the register's mark before the command that changes its state, so the caller can persist it: the
last FD number before a fiscal document (after a crash the documents after it are read back and compared with
what the command would make), the cash in the drawer before a cash operation. A register that cannot read its
documents back passes its `ShiftCounters` too, before a receipt: `checkpoint(fd, counters)`. The call starts the
write; the awaitable it returns completes when the write is done, and the command must wait for it. An adapter
may call it early and let the register work meanwhile."""


@dataclass(frozen=True, slots=True)
class RegisterStatus:
    """What the driver needs to know before acting, and shows on its status page."""

    model: str
    serial: str
    fn_number: str
    reg_number: str
    inn: str
    datetime: datetime  # the register's clock
    shift_open: bool
    shift_number: int  # the open shift, or the last closed one
    shift_expired: bool  # open for more than 24 hours
    receipt_open: bool
    paper: bool
    cover_open: bool = False
    last_fd_number: int = 0
    unsent_documents: int = 0
    shift_opened_at: datetime | None = None
    cash: int | None = None  # kopecks in the drawer, when the register says
    taxations: tuple[TaxationSystem, ...] = ()  # the registered systems; empty when the register does not say
    fn_valid_until: date | None = None  # the FN's end of validity, when the register says

    def to_dict(self) -> dict:
        return {
            "model": self.model, "serial": self.serial, "fnNumber": self.fn_number, "regNumber": self.reg_number,
            "inn": self.inn, "dateTime": self.datetime.isoformat(timespec="seconds"), "shiftOpen": self.shift_open,
            "shiftNumber": self.shift_number, "shiftExpired": self.shift_expired, "receiptOpen": self.receipt_open,
            "paper": self.paper, "coverOpen": self.cover_open, "lastFdNumber": self.last_fd_number,
            "unsentDocuments": self.unsent_documents,
            "fnValidUntil": self.fn_valid_until.isoformat() if self.fn_valid_until else None,
            "shiftOpenedAt": self.shift_opened_at.isoformat(timespec="seconds") if self.shift_opened_at else None,
        }


class FiscalRegister(abc.ABC):
    """A cash register with its fiscal storage (ATOL, Mercury, ...)."""

    kind: str = ""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the link; safe to call again after a failure (reconnects)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the link; the adapter may be connected again later."""

    @abc.abstractmethod
    async def status(self) -> RegisterStatus: ...

    @abc.abstractmethod
    async def open_shift(self, cashier: Cashier | None = None, *, checkpoint: Checkpoint | None = None) -> FiscalResult:
        ...

    @abc.abstractmethod
    async def close_shift(self, cashier: Cashier | None = None, *,
                          checkpoint: Checkpoint | None = None) -> FiscalResult:
        """The Z report: closes the shift."""

    @abc.abstractmethod
    async def x_report(self, cashier: Cashier | None = None) -> None: ...

    @abc.abstractmethod
    async def fiscalize(self, receipt: Receipt, *, checkpoint: Checkpoint | None = None) -> FiscalResult:
        """Print and fiscalize a receipt. Opens the shift itself when it is closed; refuses an expired shift.

        A failure leaves no receipt open on the register (the adapter cancels what it opened). When the receipt
        may have been fiscalized although the answer says otherwise (a broken link, a printer fault while
        closing), the adapter raises OutcomeUnknown and the caller looks for the document by its content among
        `documents_since(checkpoint)`; the adapter never guesses by position.
        """

    @abc.abstractmethod
    async def cash_operation(self, operation: CashOperation, *, checkpoint: Checkpoint | None = None) -> None:
        """Cash in (внесение) or out (выплата): not fiscal documents, no FD number; the checkpoint gets the cash in
        the drawer before it, which tells afterwards whether it happened."""

    @abc.abstractmethod
    async def open_drawer(self) -> None: ...

    @abc.abstractmethod
    async def print_text(self, lines: list[str]) -> None:
        """A non-fiscal document (a bank slip, a note)."""

    @abc.abstractmethod
    async def last_document(self) -> FiscalResult | None:
        """The last fiscal document in the fiscal storage."""

    @abc.abstractmethod
    async def documents_since(self, fd_number: int) -> list[FnDocument]:
        """The documents after `fd_number` in the fiscal storage, in order, with what the register tells of their
        content: what reconciliation compares with what a command would make. A document the register cannot
        read back is missing from the list (the caller compares the count with the last FD number)."""

    async def counters(self) -> ShiftCounters | None:
        """The shift's counters (receipts per type, payments per receipt type and kind), where the register keeps
        them readable: reconciliation's evidence for documents it cannot read back. None: it does not."""
        return None

    @abc.abstractmethod
    async def drawer_cash(self) -> int:
        """The cash in the drawer, kopecks: the checkpoint of cash operations."""

    def validate(self, receipt: Receipt) -> None:
        """Raise ValidationFailed (with `items[2].quantity`-style paths) for what this model cannot carry, without
        touching the register: checked before a card is charged for the receipt."""

    @abc.abstractmethod
    async def cancel_receipt(self) -> bool:
        """Cancel a receipt left open (not fiscalized yet); True if there was one."""


class CardOperation(enum.Enum):
    PAYMENT = "payment"
    REFUND = "refund"
    CANCEL = "cancel"
    SETTLEMENT = "settlement"
    SHORT_REPORT = "short_report"
    FULL_REPORT = "full_report"
    LAST_OPERATION = "last_operation"


@dataclass(frozen=True, slots=True)
class CardResult:
    """A terminal's answer. `approved` is False for a decline: that is an answer, not an error."""

    operation: CardOperation
    approved: bool
    response_code: str
    text: str
    amount: int | None = None  # kopecks
    rrn: str | None = None
    auth_code: str | None = None
    card_mask: str | None = None
    card_type: str | None = None
    terminal_id: str | None = None
    datetime: datetime | None = None
    slip: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class PaymentTerminal(abc.ABC):
    """A bank card terminal (PIN pad)."""

    kind: str = ""

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def pay(self, amount: int) -> CardResult: ...

    @abc.abstractmethod
    async def refund(self, amount: int, rrn: str) -> CardResult: ...

    @abc.abstractmethod
    async def cancel(self, amount: int | None = None, rrn: str | None = None) -> CardResult:
        """Void a payment: the one with this RRN, or the last one."""

    @abc.abstractmethod
    async def settlement(self) -> CardResult:
        """Сверка итогов: close the terminal's batch with the bank."""

    @abc.abstractmethod
    async def report(self, full: bool = False) -> CardResult: ...

    @abc.abstractmethod
    async def last_operation(self) -> CardResult: ...

    @abc.abstractmethod
    async def abort(self) -> None:
        """Cancel the operation running now (another task is awaiting it)."""
