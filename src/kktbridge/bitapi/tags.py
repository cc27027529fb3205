"""The tag-suffixed key rule, and typed reads that remember which wire key every field came from.

A key is `<free text>_<ФФД tag>`: the tag is whatever follows the last `_` (`cashierName_1021`,
`prepayment_1216`, `my_item_no_2_1059`); a key of digits alone is its own tag (`"1059"`). The prefix is
only a label and may disagree with the tag (shared.js sends `credith_1217`).

`Context` collects every error of a command with the path the caller used, the adjustments made to it
(compat.py; none when `strict`), and a map from the logical path of a field (("items", 2, "price")) to its wire
path (`data.purchases[2].price_1079`), which turns the domain validator's paths into the caller's. Each `Node`
remembers the keys that were read, so the keys nobody reads (`getVatRate`) can be named in the driver's log.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from ..fiscal import FieldError, FormatError, Quantity, parse_rubles, shown
from ..fiscal.numbers import read_integer
from ..fiscal.validation import Path
from .jsontext import JsonObject

if TYPE_CHECKING:
    from .compat import Adjustment

__all__ = ["MISSING", "Context", "Node", "tag_of"]

E = TypeVar("E", bound=Enum)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# The names the BIT docs use, for naming a key the caller did not send.
TAG_KEYS = {
    1005: "transfAddress_1005", 1008: "sendToEmail_1008", 1011: "timeZone_1011", 1016: "transfINN_1016",
    1021: "cashierName_1021", 1023: "qty_1023", 1026: "transfName_1026", 1030: "productName_1030",
    1031: "cash_1031", 1043: "amount_1043", 1044: "payingOp_1044", 1054: "receiptType_1054",
    1055: "taxationType_1055", 1059: "purchases", 1073: "payingPhone_1073", 1074: "operatorPhone_1074",
    1075: "transfPhone_1075", 1079: "price_1079", 1081: "ecash_1081", 1162: "nomenclatureCode_1162",
    1171: "supplierPhone_1171", 1191: "additionalAttribut_1191", 1192: "additionalAttribute_1192",
    1199: "tax_1199", 1203: "cashierInn_1203", 1212: "productTypeCode_1212", 1214: "paymentFormCode_1214",
    1215: "prepayment_1215", 1216: "credit_1216", 1217: "barter_1217", 1222: "agentCode_1222",
    1225: "supplierName_1225", 1226: "supplierINN_1226", 1227: "name_1227", 1228: "inn_1228",
    1229: "exciseAmount_1229", 1230: "countryOfOrigin_1230", 1231: "customsDeclaration_1231",
    1243: "birthDate_1243", 1244: "citizenship_1244", 1245: "identityDocumentCode_1245",
    1246: "identityDocumentData_1246", 1254: "address_1254", 1261: "industryInfo_1261", 1262: "foivId_1262",
    1263: "foivDate_1263", 1264: "foivDocNumber_1264", 1265: "industryAttribute_1265", 1291: "part_1291",
    2000: "mrkcode_2000", 2003: "itemEstimatedStatus_2003", 2100: "imcType_2100",
    2102: "imcModeProcessing_2102", 2108: "unit_2108",
}

_TAG_SUFFIX = re.compile(r"\d{1,5}")


def tag_of(key: str) -> int | None:
    """The FFD tag of a key, or None for a plain name (`purchases`, `printDoc`)."""
    suffix = key.rsplit("_", 1)[1] if "_" in key else key
    if suffix.isascii() and _TAG_SUFFIX.fullmatch(suffix):
        return int(suffix)
    return None


class Context:
    """The errors and adjustments of one command, and the logical → wire path map of its fields."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict  # refuse what is short or inconsistent instead of adjusting it
        self.errors: list[FieldError] = []
        self.warnings: list[Adjustment] = []
        self.keys: dict[Path, str] = {}
        self.nodes: list[Node] = []

    def error(self, path: str, code: str, ru: str, en: str) -> None:
        self.errors.append(FieldError(path, code, ru, en))

    def warn(self, adjustment: Adjustment) -> None:
        self.warnings.append(adjustment)

    def unread(self) -> list[str]:
        """The wire paths of the keys with a value that no reader looked at."""
        return [node.key_path(key) for node in self.nodes for key, tag, value in node.keys
                if value is not None and tag not in node.read_tags and key not in node.read]

    def where(self, logical: Path) -> str:
        """The wire path of a logical path; unknown tails are appended to the nearest known parent."""
        if logical in self.keys:
            return self.keys[logical]
        for cut in range(len(logical) - 1, -1, -1):
            parent = self.keys.get(logical[:cut])
            if parent is not None:
                tail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in logical[cut:])
                return parent + tail
        return ".".join(str(p) for p in logical)


class Node:
    """A JSON object of the receipt format at a known wire path, read by tag or by name."""

    def __init__(self, obj: JsonObject, path: str, logical: Path, ctx: Context, *, track: bool = True) -> None:
        self.obj = obj
        self.path = path
        self.logical = logical
        self.ctx = ctx
        self.read: set[str] = set()  # the plain-named keys some reader looked at
        self.read_tags: set[int] = set()  # the tags some reader found (every key carrying one counts as read)
        self.keys = [(key, tag_of(key), value) for key, value in obj.pairs]
        ctx.keys.setdefault(logical, path)
        if track:
            ctx.nodes.append(self)
        self._last: dict[int, tuple[str, Any]] = {}  # per tag, the last key with a value (null is absence)
        self._by_name: dict[str, tuple[str, Any]] = {}
        for key, tag, value in self.keys:
            if tag is not None and value is not None:
                self._last[tag] = (key, value)
            self._by_name[key.lower()] = (key, value)

    # --- finding keys --------------------------------------------------------------------------------

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}"

    def find(self, tag: int) -> tuple[str, Any] | None:
        """The last key carrying the tag, with its value (null counts as absent)."""
        hit = self._last.get(tag)
        if hit is not None:
            self.read_tags.add(tag)
        return hit

    def named(self, *names: str) -> tuple[str, Any] | None:
        """A plain-named key (`purchases`, `printDoc`), any letter case; null counts as absent."""
        for name in names:
            hit = self._by_name.get(name.lower())
            if hit is not None and hit[1] is not None:
                self.read.add(hit[0])
                return hit
        return None

    def seen(self, *names: str) -> None:
        """Plain-named keys read straight from `obj` count as read."""
        self.read.update(hit[0] for name in names if (hit := self._by_name.get(name.lower())) is not None)

    def locate(self, tag: int, field: str | None) -> tuple[str, Any]:
        """(wire path, value or MISSING) of a tag; records the logical → wire mapping of `field`."""
        hit = self._last.get(tag)
        if hit is not None:
            self.read_tags.add(tag)
        wire = self.key_path(hit[0]) if hit else self.key_path(TAG_KEYS.get(tag, f"<…>_{tag}"))
        if field is not None:
            self.ctx.keys[(*self.logical, field)] = wire
        return wire, (hit[1] if hit else MISSING)

    def child(self, key: str, value: Any, logical: Path) -> "Node | None":
        """A nested object; an error if the value is not one."""
        if isinstance(value, JsonObject):
            return Node(value, self.key_path(key), logical, self.ctx)
        self.ctx.error(self.key_path(key), "type", "ожидается объект {…}", "an object {…} is expected")
        return None

    def objects(self, key: str, value: Any, logical: Path) -> Iterator["Node"]:
        """A list of objects, or a single object standing for a list of one."""
        if isinstance(value, JsonObject):
            yield Node(value, self.key_path(key), logical + (0,), self.ctx)
            return
        if not isinstance(value, list):
            self.ctx.error(self.key_path(key), "type", "ожидается список [{…}]", "a list [{…}] is expected")
            return
        for index, element in enumerate(value):
            path = f"{self.key_path(key)}[{index}]"
            if isinstance(element, JsonObject):
                yield Node(element, path, logical + (index,), self.ctx)
            else:
                self.ctx.error(path, "type", "ожидается объект {…}", "an object {…} is expected")

    # --- typed reads: each returns None on absence or error, and records the error ----------------------

    def _required(self, wire: str, what_ru: str, what_en: str) -> None:
        self.ctx.error(wire, "required", f"не указано: {what_ru}", f"missing: {what_en}")

    def text(self, tag: int, field: str | None, *, required: str | None = None, digits: bool = False) -> str | None:
        """A string; numbers are accepted and written as digits. `required` names the field for the error."""
        wire, value = self.locate(tag, field)
        if value is MISSING or value == "":
            if required:
                self._required(wire, required, f"tag {tag}")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            self.ctx.error(wire, "type", "ожидается строка", "a string is expected")
            return None
        text = value.strip() if isinstance(value, str) else str(value)
        if digits and not (text.isascii() and text.isdigit()):
            self.ctx.error(wire, "format", f"ожидаются только цифры, получено «{shown(text)}»",
                           f"digits only are expected, got '{shown(text)}'")
            return None
        return text or None

    def texts(self, tag: int, field: str | None) -> tuple[str, ...]:
        """A string or a list of strings (phones)."""
        wire, value = self.locate(tag, field)
        if value is MISSING or value == "":
            return ()
        values = value if isinstance(value, list) else [value]
        out = []
        for element in values:
            if isinstance(element, bool) or not isinstance(element, (str, int)):
                self.ctx.error(wire, "type", "ожидается строка или список строк", "a string or a list of strings is expected")
                return ()
            out.append(str(element).strip())
        return tuple(v for v in out if v)

    def integer(self, tag: int, field: str | None, *, required: str | None = None) -> int | None:
        wire, value = self.locate(tag, field)
        if value is MISSING or value == "":
            if required:
                self._required(wire, required, f"tag {tag}")
            return None
        number = as_int(value)
        if number is None:
            self.ctx.error(wire, "type", f"ожидается целое число, получено «{shown(value)}»",
                           f"an integer is expected, got '{shown(value)}'")
        return number

    def code(self, tag: int, field: str | None, enum: type[E], *, required: str | None = None,
             convert: Callable[[int], E] | None = None, known: str | None = None) -> E | None:
        """An FFD code read into its enum; an unknown code is an error listing the known ones."""
        number = self.integer(tag, field, required=required)
        if number is None:
            return None
        try:
            return convert(number) if convert else enum(number)
        except ValueError:
            wire, _ = self.locate(tag, field)
            allowed = known or _codes(enum)
            self.ctx.error(wire, "code", f"неизвестный код {shown(number)} (тег {tag}); допустимы: {allowed}",
                           f"unknown code {shown(number)} (tag {tag}); allowed: {allowed}")
            return None

    def money(self, tag: int, field: str | None, *, required: str | None = None) -> int | None:
        """Rubles in, kopecks out."""
        wire, value = self.locate(tag, field)
        if value is MISSING or value == "":
            if required:
                self._required(wire, required, f"tag {tag}")
            return None
        return money_at(self.ctx, wire, value)

    def quantity(self, tag: int, field: str | None, *, required: str | None = None) -> Quantity | None:
        wire, value = self.locate(tag, field)
        if value is MISSING or value == "":
            if required:
                self._required(wire, required, f"tag {tag}")
            return None
        try:
            return Quantity.parse(value)
        except FormatError as exc:
            self.ctx.errors.append(exc.at(wire))
            return None

    def flag(self, key: str) -> tuple[str, bool] | None:
        """A boolean under a plain name: true/false, 1/0, "true"/"false"."""
        hit = self.named(key)
        if hit is None:
            return None
        result = as_bool(hit[1])
        if result is None:
            self.ctx.error(self.key_path(hit[0]), "type", "ожидается true или false", "true or false is expected")
            return None
        return hit[0], result

    def binary(self, tag: int, field: str | None) -> bytes | None:
        """A marking code: base64 of the raw code (the BIT rule), or the raw GS1 text itself."""
        wire, value = self.locate(tag, field)
        if value is MISSING or value == "":
            return None
        if not isinstance(value, str):
            self.ctx.error(wire, "type", "ожидается строка base64", "a base64 string is expected")
            return None
        return marking_bytes(self.ctx, wire, value)


@functools.cache
def _codes(enum: type[Enum]) -> str:
    """The codes of an FFD table, as an error lists them (made once per table: a hostile packet repeats it)."""
    return ", ".join(str(member.value) for member in enum)


def as_int(value: Any) -> int | None:
    """An integer from a JSON number or a numeric string ("4" as the PHP demo sends showMode)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str):
        return read_integer(value)  # the one number grammar: ASCII digits only, bounded
    return None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def money_at(ctx: Context, wire: str, value: Any) -> int | None:
    try:
        return parse_rubles(value)
    except FormatError as exc:
        ctx.errors.append(exc.at(wire))
        return None


_GS1_START = re.compile(r"^01\d{14}")


def marking_bytes(ctx: Context, wire: str, value: str) -> bytes | None:
    text = value.strip()
    try:
        raw = base64.b64decode(text, validate=True)
        if raw:
            return raw
    except (binascii.Error, ValueError):
        pass
    if _GS1_START.match(text) or "\x1d" in text:
        return text.encode("utf-8")
    ctx.error(wire, "format", "код маркировки должен быть в base64 (вместе с символами GS)",
              "the marking code must be base64 of the raw code (GS separators included)")
    return None
