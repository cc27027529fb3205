"""JSON as BIT clients send it: numbers are read as Decimal (never float), duplicate keys are kept in order.

Duplicate keys are real (a demo item carries `imcType_2100` twice), and so are `x_1059` keys repeated
for several items, so an object is a dict that also remembers all its (key, value) pairs. Lookups by key
give the last value, as the vendor's Qt driver does.

`dumps` writes our answers: Decimal as a JSON number with its digits (12.00 stays 12.00), non-ASCII as is.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ..fiscal import FormatError

__all__ = ["JsonObject", "dumps", "loads"]


class JsonObject(dict):
    """A JSON object: a dict (last value wins) plus `pairs`, every (key, value) in the order sent."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(text: str) -> Any:
    """Parse JSON text; errors become FormatError with the line and column."""
    try:
        return json.loads(
            text, parse_float=Decimal, object_pairs_hook=JsonObject, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise FormatError(
            "json",
            f"неверный JSON: строка {exc.lineno}, столбец {exc.colno}: {exc.msg}",
            f"invalid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}",
        ) from None
    except (ValueError, RecursionError) as exc:
        raise FormatError("json", f"неверный JSON: {exc}", f"invalid JSON: {exc}") from None


def dumps(value: Any) -> str:
    """Serialize an answer; Decimal keeps its digits, strings keep their letters."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("cannot write a non-finite number")
        out.append(format(value, "f"))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise TypeError("floats are not written: money and quantities travel as Decimal")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
