"""What a register answers for a fiscal document: its numbers, its fiscal sign, and the receipt QR string."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from .codes import ReceiptType
from .qr import ReceiptQr

__all__ = ["DocumentKind", "FiscalResult"]


class DocumentKind(enum.Enum):
    """The fiscal documents a register makes in the fiscal storage (ФН), with their FN type codes."""

    REGISTRATION = 0x01
    OPEN_SHIFT = 0x02
    RECEIPT = 0x03
    CORRECTION = 0x1F
    CLOSE_SHIFT = 0x05
    CLOSE_FN = 0x06
    STATE_REPORT = 0x15


@dataclass(frozen=True, slots=True)
class FiscalResult:
    """The fiscal data of one document (tags 1040, 1077, 1041, 1038, 1042, 1012, 1037, 1020, 1054)."""

    kind: DocumentKind
    fd_number: int  # 1040
    fiscal_sign: str  # 1077 as printed: the decimal of a uint32, at most 10 digits
    fn_number: str  # 1041
    shift_number: int  # 1038
    datetime: datetime  # 1012, the register's local time
    reg_number: str = ""  # 1037
    receipt_number: int | None = None  # 1042, receipts only
    total: int | None = None  # 1020, kopecks, receipts only
    receipt_type: ReceiptType | None = None  # 1054, receipts only

    @property
    def qr(self) -> str | None:
        """The `t=…&s=…&fn=…&i=…&fp=…&n=…` string of the receipt QR; None for documents that are not receipts."""
        if self.kind is not DocumentKind.RECEIPT or self.total is None or self.receipt_type is None:
            return None
        return ReceiptQr(
            datetime=self.datetime,
            total=self.total,
            fn_number=self.fn_number,
            fd_number=self.fd_number,
            fiscal_sign=self.fiscal_sign,
            receipt_type=self.receipt_type,
        ).text()
