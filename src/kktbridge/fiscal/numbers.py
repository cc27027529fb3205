"""The spellings of a number kktbridge accepts, decided here before any text becomes a Decimal or an int.

Rule of this file: a number is spelled with ASCII digits only, an optional sign, an optional fraction, at most
MAX_DIGITS digits in all and, if it has an exponent, at most MAX_EXPONENT_DIGITS digits of it. The check
looks at the spelling alone, before any arithmetic, so reading a number costs microseconds whatever was sent
(`1E1000000` is refused by its length, not computed). Python's own readers accept more (`int("1_000")`,
`Decimal("١٠٠٠")`, `int(" 7 ")`): nothing from a client reaches them without passing through here first.

Text (a number sent as a JSON string, as PHP does) may also have spaces around it, a decimal comma, and a
space (or no-break space) between groups of three digits: `" 1 000,50 "`. JSON number literals follow JSON's
own grammar, which the JSON scanner has already checked; here they are only bounded. docs/input-format.md
states the same decision for integrators.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = [
    "MAX_DIGITS",
    "MAX_EXPONENT_DIGITS",
    "MAX_INTEGER_DIGITS",
    "json_literal_problem",
    "read_decimal",
    "read_integer",
    "spelling_problem",
]

MAX_DIGITS = 24  # money has at most 15 (13 of rubles), a quantity 11; PHP and JS floats print at most 17
MAX_EXPONENT_DIGITS = 2  # 1e-7 and 1e+21 are how JS prints small and large floats; 1E1000000 is an attack
MAX_INTEGER_DIGITS = 18  # codes, counts and numbers sent as strings for integer fields ("4" for showMode)
_MAX_TEXT = 64  # no accepted spelling is longer: longer text is refused before it is even matched
_SPACES = " \t\r\n\u00a0\u202f"

_TEXT = re.compile(
    r"(?P<sign>[+-]?)(?P<int>[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+|[0-9]+)"
    r"(?:[.,](?P<frac>[0-9]+))?(?:[eE](?P<exp>[+-]?[0-9]+))?"
)
_INTEGER = re.compile(r"[+-]?[0-9]+")

# (ru, en) of why a spelling is refused; {text} is the spelling as shown to people.
_TOO_LONG = (f"больше {MAX_DIGITS} цифр", f"more than {MAX_DIGITS} digits")
_EXPONENT = (f"показатель степени длиннее {MAX_EXPONENT_DIGITS} цифр", f"an exponent of more than "
             f"{MAX_EXPONENT_DIGITS} digits")
_SPELLING = ("допустимы только цифры 0–9, знак и дробная часть через точку или запятую",
             "only digits 0-9, a sign and a fraction after a point or a comma are allowed")


def spelling_problem(text: str) -> tuple[str, str] | None:
    """Why `text` is not a number kktbridge reads (ru, en), or None when it is one."""
    if len(text) > _MAX_TEXT:
        stripped = text.strip(_SPACES)
        return _TOO_LONG if stripped.isascii() and stripped.isdigit() else _SPELLING
    match = _TEXT.fullmatch(text.strip(_SPACES))
    if match is None:
        return _SPELLING
    digits = len(match["int"].translate(_NO_GROUPS)) + len(match["frac"] or "")
    if digits > MAX_DIGITS:
        return _TOO_LONG
    if match["exp"] is not None and len(match["exp"].lstrip("+-")) > MAX_EXPONENT_DIGITS:
        return _EXPONENT
    return None


_NO_GROUPS = str.maketrans("", "", " \u00a0\u202f")


def read_decimal(text: str) -> Decimal | None:
    """The exact value of a number spelled as text, or None when the spelling is refused (`spelling_problem`)."""
    if spelling_problem(text) is not None:
        return None
    return Decimal(text.strip(_SPACES).translate(_NO_GROUPS).replace(",", "."))


def read_integer(text: str) -> int | None:
    """An integer spelled as text (`"4"`, `" -2 "`): ASCII digits and a sign, at most MAX_INTEGER_DIGITS."""
    text = text.strip(_SPACES)
    if len(text) > MAX_INTEGER_DIGITS + 1 or not _INTEGER.fullmatch(text) or len(text.lstrip("+-")) > \
            MAX_INTEGER_DIGITS:
        return None
    return int(text)


def json_literal_problem(literal: str) -> tuple[str, str] | None:
    """Why a JSON number literal (already valid JSON) is refused (ru, en), or None. Costs a few string
    operations, whatever its length."""
    mantissa, _, exponent = literal.replace("E", "e").partition("e")
    if len(mantissa) - mantissa.startswith("-") - ("." in mantissa) > MAX_DIGITS:
        return _TOO_LONG
    if len(exponent.lstrip("+-")) > MAX_EXPONENT_DIGITS:
        return _EXPONENT
    return None
