"""Packed BCD, the way ATOL commands carry numbers: two decimal digits per byte, most significant first.

Rule of this file: a number is either encoded exactly in the width asked for or refused with a BcdError
naming the value; nothing is truncated, rounded or padded silently. Money goes in as integer kopecks
(`encode(10000, 5) == bytes.fromhex("0000010000")`, i.e. 100.00 roubles).
"""

from __future__ import annotations

from kktbridge.fiscal.errors import FormatError

__all__ = ["BcdError", "BcdInvalidNibble", "BcdNegative", "BcdOverflow", "decode", "encode", "max_value"]


class BcdError(FormatError):
    """A number that cannot be written to or read from packed BCD."""


class BcdNegative(BcdError):
    """Packed BCD has no sign; ATOL sends signs, where it has any, in a separate field."""

    def __init__(self, value: int) -> None:
        super().__init__(
            "bcd_negative",
            f"отрицательное число {value} нельзя записать в BCD",
            f"negative number {value} cannot be written as BCD",
        )
        self.value = value


class BcdOverflow(BcdError):
    """The value has more decimal digits than the field holds (two per byte)."""

    def __init__(self, value: int, nbytes: int) -> None:
        super().__init__(
            "bcd_overflow",
            f"число {value} не помещается в {nbytes} байт BCD (максимум {max_value(nbytes)})",
            f"number {value} does not fit in {nbytes} BCD bytes (maximum {max_value(nbytes)})",
        )
        self.value = value
        self.nbytes = nbytes


class BcdInvalidNibble(BcdError):
    """A received byte holds a nibble A-F, which is not a decimal digit."""

    def __init__(self, data: bytes, index: int) -> None:
        byte = data[index]
        super().__init__(
            "bcd_invalid_nibble",
            f"байт {index} ({byte:02X}) в BCD {data.hex(' ').upper()} не является парой десятичных цифр",
            f"byte {index} ({byte:02X}) of BCD {data.hex(' ').upper()} is not two decimal digits",
        )
        self.data = data
        self.index = index


def max_value(nbytes: int) -> int:
    """The largest number that fits in `nbytes` of packed BCD."""
    limit: int = 10 ** (2 * nbytes)
    return limit - 1


def encode(value: int, nbytes: int) -> bytes:
    """`value` as exactly `nbytes` of packed BCD, most significant digit first, zero-padded on the left."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"BCD value must be an int, not {type(value).__name__}")
    if nbytes < 1:
        raise ValueError(f"BCD width must be at least one byte, not {nbytes}")
    if value < 0:
        raise BcdNegative(value)
    digits = f"{value:0{2 * nbytes}d}"
    if len(digits) > 2 * nbytes:
        raise BcdOverflow(value, nbytes)
    return bytes.fromhex(digits)


def decode(data: bytes | bytearray | memoryview) -> int:
    """The number held in packed BCD `data` (any length; empty is 0)."""
    raw = bytes(data)
    digits = raw.hex()
    if not digits.isdigit():
        if not digits:
            return 0
        raise BcdInvalidNibble(raw, _first_bad_byte(digits))
    return int(digits)


def _first_bad_byte(digits: str) -> int:
    for i, ch in enumerate(digits):
        if not ch.isdigit():
            return i // 2
    raise AssertionError("unreachable: caller saw a non-digit")
