"""JSON as BIT clients send it: numbers are read as Decimal (never float), duplicate keys are kept in order.

Duplicate keys are real (a demo item carries `imcType_2100` twice), and so are `x_1059` keys repeated
for several items, so an object is a dict that also remembers all its (key, value) pairs. Lookups by key
give the last value, as the vendor's Qt driver does.

Rule of this file: what `loads` returns is bounded and clean, whatever the text. The parse stops as soon as the
text holds more objects or numbers than a packet can need (`Bounds`); every number literal is checked by its
spelling (fiscal/numbers.py) before it becomes a Decimal; then one walk refuses deeper nesting, longer arrays,
more values, lone surrogates (`"\\ud800"`, which no UTF-8 text can carry) and the numbers refused by their
spelling, each with the path of the value (`[0].data.purchases[2].price_1079`). So reading a packet costs time
in proportion to its size with a small bound, and nothing after it meets an unbounded number or a string
that cannot be written back out.

`dumps` writes our answers: Decimal as a JSON number with its digits (12.00 stays 12.00), non-ASCII as is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..fiscal import FieldError, FormatError, shown
from ..fiscal.numbers import json_literal_problem

__all__ = ["BOUNDS", "Bounds", "JsonObject", "JsonRefused", "dumps", "loads"]


@dataclass(frozen=True, slots=True)
class Bounds:
    """The most a packet's JSON may hold, so that the largest body (2 MB) is read in a bounded time (README,
    "Hostile input"). They follow the most lines the register takes (`for_items`): a packet of 64 commands, or a
    receipt of that many lines with several blocks in each, stays well inside."""

    depth: int = 16  # a receipt's deepest value (an industry requisite of an item) is at depth 7
    array: int = 1000  # elements of one array: the most lines a register takes is configurable up to 1000
    objects: int = 400  # JSON objects in the whole packet: commands, items and the blocks inside them
    numbers: int = 4_000
    values: int = 10_000  # every value, keys not counted

    @classmethod
    def for_items(cls, max_items: int) -> "Bounds":
        """The bounds of a packet for a register that takes `max_items` lines in a receipt."""
        return cls(objects=3 * max_items + 100, numbers=30 * max_items + 1000, values=80 * max_items + 2000)


BOUNDS = Bounds.for_items(100)


class JsonObject(dict):
    """A JSON object: a dict (last value wins) plus `pairs`, every (key, value) in the order sent."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


class JsonRefused(FormatError):
    """JSON that parsed but holds values kktbridge does not take; `fields` names each by its path."""

    def __init__(self, fields: list[FieldError]) -> None:
        first = fields[0]
        super().__init__(first.code, first.ru, first.en)
        self.fields = fields


class _RefusedNumber:
    """A number literal refused by its spelling, kept in place so the walk can name its path."""

    __slots__ = ("literal", "reason")

    def __init__(self, literal: str, reason: tuple[str, str]) -> None:
        self.literal = literal
        self.reason = reason


class _TooMuch(Exception):
    def __init__(self, what_ru: str, what_en: str, limit: int) -> None:
        self.what_ru, self.what_en, self.limit = what_ru, what_en, limit


class _Reader:
    """The parse hooks of one `loads`: they count what they build and stop the parse at the bounds."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.objects = 0
        self.numbers = 0
        self.refused = False

    def object(self, pairs: list[tuple[str, Any]]) -> JsonObject:
        self.objects += 1
        if self.objects > self.bounds.objects:
            raise _TooMuch("объектов {…}", "objects {…}", self.bounds.objects)
        return JsonObject(pairs)

    def number(self, literal: str) -> Any:
        self.numbers += 1
        if self.numbers > self.bounds.numbers:
            raise _TooMuch("чисел", "numbers", self.bounds.numbers)
        problem = json_literal_problem(literal)
        if problem is not None:
            self.refused = True
            return _RefusedNumber(literal, problem)
        return int(literal) if literal.lstrip("-").isdigit() else Decimal(literal)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# A lone surrogate can only come from a \uD800-\uDFFF escape; the walk looks for them only when one is there.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(text: str, bounds: Bounds = BOUNDS) -> Any:
    """Parse JSON text; bad JSON is a FormatError with the line and column, refused values a JsonRefused."""
    reader = _Reader(bounds)
    try:
        value = json.loads(text, parse_float=reader.number, parse_int=reader.number, object_pairs_hook=reader.object,
                           parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FormatError(
            "json",
            f"неверный JSON: строка {exc.lineno}, столбец {exc.colno}: {exc.msg}",
            f"invalid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}",
        ) from None
    except _TooMuch as exc:
        raise FormatError("too_large", f"в пакете больше {exc.limit} {exc.what_ru}",
                          f"the packet holds more than {exc.limit} {exc.what_en}") from None
    except RecursionError:
        raise FormatError("too_deep", f"вложенность JSON глубже {bounds.depth} уровней",
                          f"JSON nested deeper than {bounds.depth} levels") from None
    except ValueError as exc:
        raise FormatError("json", f"неверный JSON: {exc}", f"invalid JSON: {exc}") from None
    problems = _inspect(value, bounds, strings=_SURROGATE_ESCAPE.search(text) is not None, numbers=reader.refused)
    if problems:
        raise JsonRefused(problems)
    return value


_MAX_PROBLEMS = 100
_Trail = tuple  # (parent trail, key or index), or () at the top: a path built only when a problem needs it


def _inspect(value: Any, bounds: Bounds, *, strings: bool, numbers: bool) -> list[FieldError]:
    """One walk over the parsed value: the bounds of its shape, and (when the hooks or the text hint at them)
    the refused numbers and the strings with lone surrogates, each with its path."""
    problems: list[FieldError] = []
    values = 0
    top: _Trail = ((), 0) if isinstance(value, dict) else ()  # a single command object is command [0]
    stack: list[tuple[Any, _Trail, int]] = [(value, top, 1)] if isinstance(value, (list, dict)) else []
    leaves = strings or numbers
    if isinstance(value, str) and strings and _has_surrogate(value):  # a bare string: not a packet, refused
        problems.append(_surrogate("body"))  # cleanly for what it holds
    elif isinstance(value, _RefusedNumber):
        problems.append(_refused_number("body", value))
    while stack and len(problems) < _MAX_PROBLEMS:
        node, trail, depth = stack.pop()
        if depth > bounds.depth:
            problems.append(FieldError(_path(trail), "too_deep", f"вложенность JSON глубже {bounds.depth} уровней",
                                       f"JSON nested deeper than {bounds.depth} levels"))
            continue
        if isinstance(node, list):
            if len(node) > bounds.array:
                problems.append(FieldError(_path(trail), "too_many", f"в массиве больше {bounds.array} элементов",
                                           f"an array of more than {bounds.array} elements"))
                continue
            values += len(node)
            members = enumerate(node)
        else:
            values += len(node.pairs)
            members = node.pairs
            if strings:
                for key, _ in members:
                    if _has_surrogate(key):
                        problems.append(_surrogate(_path((trail, key))))
        if values > bounds.values:
            problems.append(FieldError("body", "too_large", f"в пакете больше {bounds.values} значений",
                                       f"the packet holds more than {bounds.values} values"))
            break
        children = []
        for key, element in members:
            if isinstance(element, (list, dict)):
                children.append((element, (trail, key), depth + 1))
            elif not leaves:
                continue
            elif strings and isinstance(element, str) and _has_surrogate(element):
                problems.append(_surrogate(_path((trail, key))))
            elif numbers and isinstance(element, _RefusedNumber):
                problems.append(_refused_number(_path((trail, key)), element))
        stack.extend(reversed(children))  # depth first, in the order sent
    return problems


def _path(trail: _Trail) -> str:
    """`[0].data.purchases[2].price_1079` from a trail; `body` for the top."""
    parts: list[str] = []
    while trail:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{shown(key, 64)}")
    return "".join(reversed(parts)).lstrip(".") or "body"


def _refused_number(path: str, number: _RefusedNumber) -> FieldError:
    ru, en = number.reason
    return FieldError(path, "number_format", f"число «{shown(number.literal)}» не принимается: {ru}",
                      f"the number '{shown(number.literal)}' is refused: {en}")


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and any("\ud800" <= char <= "\udfff" for char in text)


def _surrogate(path: str) -> FieldError:
    return FieldError(path, "surrogate", "в строке одиночный суррогат UTF-16 (\\ud800–\\udfff): такой символ нельзя "
                      "ни напечатать, ни сохранить", "the string holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                      "which can be neither printed nor stored")


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
