"""Money is an int of kopecks. Rubles come in at the edges (JSON numbers, strings) and are read exactly.

Nothing here goes through float: a JSON number must arrive as Decimal (json.loads(parse_float=Decimal)), a
string is read by the one number grammar (numbers.py: ASCII digits, a bounded length). A Python float handed in
by a caller is read from its shortest repr, which is the number the caller wrote, never from its binary value.
The range is checked before the value is scaled to kopecks, so no sum costs more than its digits to read.
"""

from __future__ import annotations

from decimal import Decimal

from .errors import FormatError, shown
from .numbers import read_decimal, spelling_problem

__all__ = ["MAX_KOPECKS", "format_rubles", "kopecks_to_decimal", "parse_kopecks", "parse_rubles"]

# 10^13 rubles: far above any receipt, low enough to catch a digit run pasted by mistake.
MAX_KOPECKS = 10**15
_MAX_RUBLES = Decimal(MAX_KOPECKS) / 100


def parse_rubles(value: object) -> int:
    """Rubles (12, 12.5, "12.50", "12,50", Decimal) to kopecks; more than two decimals is an error."""
    number = _as_decimal(value)
    if not number.is_finite():
        raise FormatError("money_format", "сумма должна быть числом", "an amount must be a number")
    if number < 0:
        raise FormatError("money_negative", "сумма не может быть отрицательной", "an amount cannot be negative")
    if number >= _MAX_RUBLES:
        raise FormatError("money_range", f"сумма {shown(value)} слишком велика", f"amount {shown(value)} is too large")
    kopecks = number * 100
    if kopecks != kopecks.to_integral_value():
        raise FormatError(
            "money_precision",
            f"в сумме {shown(value)} больше двух знаков после запятой",
            f"amount {shown(value)} has more than two decimal places",
        )
    return int(kopecks)


def parse_kopecks(value: object) -> int:
    """An integer count of kopecks (device protocols and our own JSON that carry kopecks)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError("money_format", "ожидается целое число копеек", "an integer number of kopecks expected")
    if value < 0:
        raise FormatError("money_negative", "сумма не может быть отрицательной", "an amount cannot be negative")
    return value


def kopecks_to_decimal(kopecks: int) -> Decimal:
    """Kopecks to a two-place Decimal of rubles, for JSON edges."""
    return (Decimal(kopecks) / 100).quantize(Decimal("0.01"))


def format_rubles(kopecks: int) -> str:
    """Kopecks as `123.45`, the form of the receipt QR `s=` field and of printed totals."""
    sign = "-" if kopecks < 0 else ""
    rubles, kop = divmod(abs(kopecks), 100)
    return f"{sign}{rubles}.{kop:02d}"


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise FormatError("money_format", "сумма должна быть числом", "an amount must be a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        number = read_decimal(value)
        if number is None:
            ru, en = spelling_problem(value) or ("", "")
            raise FormatError("money_format", f"«{shown(value)}» не является суммой: {ru}",
                              f"'{shown(value)}' is not an amount: {en}")
        return number
    raise FormatError("money_format", "сумма должна быть числом", "an amount must be a number")
