"""The receipt QR string `t=YYYYMMDDTHHMM[SS]&s=R.KK&fn=…&i=…&fp=…&n=…` (spec/devices.md §4.1).

We write it without seconds, the form printed on most receipts; we read both. Field to tag: t 1012,
s 1020, fn 1041, i 1040, fp 1077 (printed form), n 1054.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from .codes import ReceiptType
from .errors import FormatError
from .money import format_rubles, parse_rubles

__all__ = ["ReceiptQr", "printed_fiscal_sign"]


@dataclass(frozen=True, slots=True)
class ReceiptQr:
    datetime: datetime
    total: int  # kopecks
    fn_number: str
    fd_number: int
    fiscal_sign: str
    receipt_type: ReceiptType

    def text(self) -> str:
        return (
            f"t={self.datetime:%Y%m%dT%H%M}&s={format_rubles(self.total)}&fn={self.fn_number}"
            f"&i={self.fd_number}&fp={self.fiscal_sign}&n={int(self.receipt_type)}"
        )

    @classmethod
    def parse(cls, text: str) -> "ReceiptQr":
        """Read a QR string; every field must be there and well formed."""
        fields = dict(parse_qsl(text.strip(), keep_blank_values=True))
        missing = [key for key in ("t", "s", "fn", "i", "fp", "n") if not fields.get(key)]
        if missing:
            raise FormatError(
                "qr_format",
                f"в строке QR нет полей: {', '.join(missing)}",
                f"the QR string lacks: {', '.join(missing)}",
            )
        stamp = fields["t"]
        for pattern in ("%Y%m%dT%H%M%S", "%Y%m%dT%H%M"):
            try:
                when = datetime.strptime(stamp, pattern)
                break
            except ValueError:
                continue
        else:
            raise FormatError("qr_format", f"время «{stamp}» в QR неверно", f"QR time '{stamp}' is malformed")
        if not (fields["i"].isdigit() and fields["fp"].isdigit() and fields["n"].isdigit()):
            raise FormatError("qr_format", "поля i, fp, n QR должны быть числами", "QR i, fp, n must be numbers")
        try:
            receipt_type = ReceiptType(int(fields["n"]))
        except ValueError:
            raise FormatError("qr_format", "неверный тип расчёта n", "invalid operation type n") from None
        return cls(
            datetime=when,
            total=parse_rubles(fields["s"]),
            fn_number=fields["fn"],
            fd_number=int(fields["i"]),
            fiscal_sign=str(int(fields["fp"])),
            receipt_type=receipt_type,
        )


def printed_fiscal_sign(raw: bytes) -> str:
    """The printed ФП from the ФПД as the FN gives it: of 6 bytes, bytes 2..5 read big-endian (yandex/ofd
    `extract_fiscal_sign_for_print`); a shorter value already fits in 32 bits and is printed as is."""
    if len(raw) == 6:
        return str(int.from_bytes(raw[2:6], "big"))
    if len(raw) > 6:
        raise FormatError("fiscal_sign", "ФПД длиннее 6 байт", "the fiscal sign is longer than 6 bytes")
    return str(int.from_bytes(raw, "big"))
