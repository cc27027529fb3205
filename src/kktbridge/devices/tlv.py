"""FFD TLV: the tag-length-value form in which fiscal data travel between register, FN and OFD.

Each TLV is `tag uint16 LE, length uint16 LE, value`. Integers are little-endian; VLN drops trailing zero
bytes; FVLN is one byte of decimal places then an LE integer; strings are CP866; STLV nests TLVs.
(spec/devices.md §4.3, after yandex/ofd `protocol.py`.) The types of the tags kktbridge writes are in
TAG_TYPES; a tag missing there is an error, never a guess.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from ..fiscal import FormatError

__all__ = ["TAG_TYPES", "Tlv", "TlvType", "decode", "encode", "encode_value", "iter_tlv"]


class TlvType(enum.Enum):
    BYTE = "byte"
    U16 = "u16"
    U32 = "u32"
    VLN = "vln"
    FVLN = "fvln"
    STRING = "string"
    BYTES = "bytes"
    STLV = "stlv"


T = TlvType
TAG_TYPES: dict[int, TlvType] = {
    1005: T.STRING, 1008: T.STRING, 1011: T.BYTE, 1016: T.STRING, 1020: T.VLN, 1021: T.STRING, 1023: T.FVLN,
    1026: T.STRING, 1030: T.STRING, 1031: T.VLN, 1043: T.VLN, 1044: T.STRING, 1055: T.BYTE, 1057: T.BYTE,
    1059: T.STLV, 1073: T.STRING, 1074: T.STRING, 1075: T.STRING, 1079: T.VLN, 1081: T.VLN, 1125: T.BYTE,
    1162: T.BYTES, 1171: T.STRING, 1191: T.STRING, 1192: T.STRING, 1203: T.STRING, 1212: T.BYTE, 1214: T.BYTE,
    1215: T.VLN, 1216: T.VLN, 1217: T.VLN, 1222: T.BYTE, 1223: T.STLV, 1224: T.STLV, 1225: T.STRING,
    1226: T.STRING, 1227: T.STRING, 1228: T.STRING, 1229: T.VLN, 1230: T.STRING, 1231: T.STRING, 1243: T.STRING,
    1244: T.STRING, 1245: T.STRING, 1246: T.STRING, 1254: T.STRING, 1256: T.STLV, 1260: T.STLV, 1261: T.STLV,
    1262: T.STRING, 1263: T.STRING, 1264: T.STRING, 1265: T.STRING, 1291: T.STLV, 1293: T.VLN, 1294: T.VLN,
    2000: T.BYTES, 2003: T.BYTE, 2100: T.U16, 2102: T.BYTE, 2108: T.BYTE,
}


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes

    def to_bytes(self) -> bytes:
        return self.tag.to_bytes(2, "little") + len(self.value).to_bytes(2, "little") + self.value

    # typed reads

    def as_int(self) -> int:
        kind = TAG_TYPES.get(self.tag)
        if kind is TlvType.FVLN:
            raise FormatError("tlv", "FVLN читается как Decimal", "read an FVLN with as_decimal")
        return int.from_bytes(self.value, "little")

    def as_decimal(self) -> Decimal:
        places, number = self.value[0], int.from_bytes(self.value[1:], "little")
        return Decimal(number).scaleb(-places)

    def as_text(self) -> str:
        return self.value.decode("cp866")

    def children(self) -> list["Tlv"]:
        return decode(self.value)


def encode_value(tag: int, value: object) -> bytes:
    """The value bytes of a tag from a Python value of its type."""
    kind = TAG_TYPES.get(tag)
    if kind is None:
        raise FormatError("tlv", f"тип тега {tag} не известен", f"the type of tag {tag} is unknown")
    if kind is TlvType.STRING:
        return str(value).encode("cp866", errors="replace")
    if kind is TlvType.BYTES:
        return bytes(value)  # type: ignore[arg-type]
    if kind is TlvType.STLV:
        return b"".join(item.to_bytes() for item in value)  # type: ignore[union-attr]
    if kind is TlvType.FVLN:
        number = Decimal(value)  # type: ignore[arg-type]
        exponent = -number.as_tuple().exponent if number.as_tuple().exponent < 0 else 0  # type: ignore[operator]
        scaled = int(number.scaleb(exponent))
        return bytes((exponent,)) + _vln(scaled)
    number = int(value)  # type: ignore[call-overload]
    if number < 0:
        raise FormatError("tlv", f"тег {tag}: отрицательное число", f"tag {tag}: a negative number")
    if kind is TlvType.BYTE:
        return number.to_bytes(1, "little")
    if kind is TlvType.U16:
        return number.to_bytes(2, "little")
    if kind is TlvType.U32:
        return number.to_bytes(4, "little")
    return _vln(number)


def encode(tag: int, value: object) -> Tlv:
    if type(value) is int and value < 256:  # the small codes of every receipt line (1212, 1214, 2108...)
        return _small(tag, value)
    return Tlv(tag, encode_value(tag, value))


@functools.lru_cache(maxsize=1024)
def _small(tag: int, value: int) -> Tlv:
    return Tlv(tag, encode_value(tag, value))


def _vln(number: int) -> bytes:
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "little")


def iter_tlv(data: bytes) -> Iterator[Tlv]:
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise FormatError("tlv", "обрезанный TLV", "a truncated TLV")
        tag = int.from_bytes(data[offset:offset + 2], "little")
        length = int.from_bytes(data[offset + 2:offset + 4], "little")
        end = offset + 4 + length
        if end > len(data):
            raise FormatError("tlv", f"TLV тега {tag} длиннее данных", f"the TLV of tag {tag} runs past the data")
        yield Tlv(tag, bytes(data[offset + 4:end]))
        offset = end


def decode(data: bytes) -> list[Tlv]:
    return list(iter_tlv(data))
