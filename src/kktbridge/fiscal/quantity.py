"""Quantity (tag 1023): an exact decimal with up to six places, kept as an int of millionths.

The item sum is price × quantity rounded to kopecks, half up. Whether a register rounds half up or half to
even is not confirmed by the FFD text (spec/cloud-anchors.md §10.7); half up is what the ATOL and Mercury
drivers are documented to do in practice and what the emulators do, so one rule serves everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .errors import FormatError, shown
from .numbers import read_decimal, spelling_problem

__all__ = ["Quantity", "MAX_PLACES"]

MAX_PLACES = 6
_SCALE = 10**MAX_PLACES
_MAX = Decimal(10**12)  # far above any register's limit (validation.Limits); checked before scaling


@dataclass(frozen=True, slots=True, order=True)
class Quantity:
    """A positive quantity; `micros` is the quantity × 1 000 000."""

    micros: int

    @classmethod
    def parse(cls, value: object) -> "Quantity":
        """Read 1, 1.234, "0,5", Decimal("2.000001"); more than six decimals or not above zero is an error."""
        number = _as_decimal(value)
        if number >= _MAX:
            raise FormatError("quantity_range", f"количество {shown(value)} слишком велико",
                              f"quantity {shown(value)} is too large")
        scaled = number * _SCALE
        if scaled != scaled.to_integral_value():
            raise FormatError(
                "quantity_precision",
                f"в количестве {shown(value)} больше {MAX_PLACES} знаков после запятой",
                f"quantity {shown(value)} has more than {MAX_PLACES} decimal places",
            )
        if scaled <= 0:
            raise FormatError("quantity_range", "количество должно быть больше нуля", "quantity must be above zero")
        return cls(int(scaled))

    def scaled(self, factor: int) -> int:
        """The quantity × factor as an int (Mercury wants × 10000); raises if that loses digits."""
        value, rest = divmod(self.micros * factor, _SCALE)
        if rest:
            raise FormatError(
                "quantity_precision",
                f"количество {self} нельзя передать с точностью 1/{factor}",
                f"quantity {self} cannot be sent with a precision of 1/{factor}",
            )
        return value

    def amount_for(self, price_kopecks: int) -> int:
        """price × quantity in kopecks, rounded half up."""
        return (price_kopecks * self.micros * 2 + _SCALE) // (2 * _SCALE)

    def to_decimal(self) -> Decimal:
        return (Decimal(self.micros) / _SCALE).normalize() if self.micros % _SCALE else Decimal(self.micros // _SCALE)

    @property
    def places(self) -> int:
        """How many decimal places the quantity really has (0..6)."""
        n, places = self.micros, MAX_PLACES
        while places and n % 10 == 0:
            n //= 10
            places -= 1
        return places

    def __str__(self) -> str:
        whole, frac = divmod(self.micros, _SCALE)
        if not frac:
            return str(whole)
        return f"{whole}.{frac:06d}".rstrip("0")


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise FormatError("quantity_format", "количество должно быть числом", "quantity must be a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        read = read_decimal(value)
        if read is None:
            ru, en = spelling_problem(value) or ("", "")
            raise FormatError("quantity_format", f"«{shown(value)}» не является количеством: {ru}",
                              f"'{shown(value)}' is not a quantity: {en}")
        number = read
    else:
        raise FormatError("quantity_format", "количество должно быть числом", "quantity must be a number")
    if not number.is_finite():
        raise FormatError("quantity_format", "количество должно быть числом", "quantity must be a number")
    return number
