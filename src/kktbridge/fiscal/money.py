"""Money is an int of kopecks. Rubles come in at the edges (JSON numbers, strings) and are read exactly.

Nothing here goes through float: a JSON number must arrive as Decimal (json.loads(parse_float=Decimal)), a
string is read digit by digit. A Python float handed in by a caller is read from its shortest repr, which is
the number the caller wrote, never from its binary value.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import FormatError

__all__ = ["MAX_KOPECKS", "format_rubles", "kopecks_to_decimal", "parse_kopecks", "parse_rubles"]

# 10^13 rubles: far above any receipt, low enough to catch a digit run pasted by mistake.
MAX_KOPECKS = 10**15


def parse_rubles(value: object) -> int:
    """Rubles (12, 12.5, "12.50", "12,50", Decimal) to kopecks; more than two decimals is an error."""
    number = _as_decimal(value)
    if not number.is_finite():
        raise FormatError("money_format", "сумма должна быть числом", "an amount must be a number")
    if number < 0:
        raise FormatError("money_negative", "сумма не может быть отрицательной", "an amount cannot be negative")
    kopecks = number * 100
    if kopecks != kopecks.to_integral_value():
        raise FormatError(
            "money_precision",
            f"в сумме {value} больше двух знаков после запятой",
            f"amount {value} has more than two decimal places",
        )
    result = int(kopecks)
    if result >= MAX_KOPECKS:
        raise FormatError("money_range", f"сумма {value} слишком велика", f"amount {value} is too large")
    return result


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
        text = value.strip().replace(",", ".").replace(" ", "").replace("\u00a0", "")
        if not text or text.lower() in {"nan", "inf", "infinity", "-inf", "+inf", "-infinity", "+infinity"}:
            raise FormatError("money_format", f"«{value}» не является суммой", f"'{value}' is not an amount")
        try:
            return Decimal(text)
        except InvalidOperation:
            raise FormatError("money_format", f"«{value}» не является суммой", f"'{value}' is not an amount") from None
    raise FormatError("money_format", "сумма должна быть числом", "an amount must be a number")
