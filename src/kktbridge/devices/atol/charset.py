"""The ATOL "external" code page: how text (item names, printed lines, table strings) travels to the device.

Rule of this file: the whole mapping is the one table `_TABLE` below; encode and decode are both built from it,
so they cannot disagree. A character the device cannot print is refused with an error that names it
(`encode`), unless the caller explicitly asks for '?' in its place (`encode_lossy`).

Facts (kurbatov/atol4j `charset/ExternalCharsetEncoder.java`, `ExternalCharsetTest.java`, dant `toAtolString`):
- 0x20-0x7E are ASCII, except 0x24 which is '№'; '$' moved to 0xFC (dant swaps '№' and '$' before sending
  CP866 text, which gives the same two positions).
- 0x80-0xEF are CP866: А-Я, а-п, the box-drawing block, р-я. `80 92 8E 8B 20 39 31 94` reads "АТОЛ 91Ф".
- 0xF0 'Ё', 0xF1 'ё', 0xF2 '€', 0xFA U+2011 (non-breaking hyphen), 0xFC '$', 0xFF '■'.
"""

from __future__ import annotations

import codecs

from kktbridge.fiscal.errors import FormatError

__all__ = [
    "CharsetError",
    "UndecodableByte",
    "UnencodableCharacter",
    "can_encode",
    "decode",
    "encode",
    "encode_lossy",
]


def _cp866(first: int, last: int) -> dict[int, str]:
    return {b: bytes((b,)).decode("cp866") for b in range(first, last + 1)}


_TABLE: dict[int, str] = {
    **{b: chr(b) for b in range(0x20, 0x7F)},  # ASCII (atol4j)
    0x24: "№",  # atol4j; dant swaps '№' and '$'
    # 0x27: atol4j maps the typographic apostrophe U+2019 here; we decode to the ASCII "'" (CP866 and dant)
    # and accept both when encoding (see _ENCODE_ALIASES).
    **_cp866(0x80, 0xEF),  # А-Я а-п, box drawing, р-я: identical to CP866 (atol4j)
    0xF0: "Ё",
    0xF1: "ё",
    0xF2: "€",
    0xFA: "\u2011",
    0xFC: "$",
    0xFF: "■",
    # unverified against the ATOL manual: atol4j leaves these bytes out; we assume CP866 for them.
    # 0xFE (CP866 '■') stays unmapped because atol4j puts '■' at 0xFF; 0x00-0x1F and 0x7F are not text.
    0xF3: "є",
    0xF4: "Ї",
    0xF5: "ї",
    0xF6: "Ў",
    0xF7: "ў",
    0xF8: "°",
    0xF9: "∙",
    0xFB: "√",
    0xFD: "¤",
}

# Characters that print as an existing byte of the table but do not come back from decode.
_ENCODE_ALIASES: dict[str, int] = {"\u2019": 0x27}

_DECODING = "".join(_TABLE.get(b, "\ufffe") for b in range(256))
_ENCODING: dict[int, int] = {ord(ch): b for b, ch in _TABLE.items()} | {ord(ch): b for ch, b in _ENCODE_ALIASES.items()}


class CharsetError(FormatError):
    """Text that cannot cross the ATOL external code page."""


class UnencodableCharacter(CharsetError):
    """A character with no byte in the ATOL code page (emoji, Latin accents, tabs...)."""

    def __init__(self, char: str, position: int) -> None:
        name = f"{char!r} (U+{ord(char):04X})"
        super().__init__(
            "charset_unencodable",
            f"символ {name} в позиции {position} нельзя напечатать на ККТ АТОЛ",
            f"character {name} at position {position} cannot be printed by an ATOL register",
        )
        self.char = char
        self.position = position


class UndecodableByte(CharsetError):
    """A byte from the device that the code page does not define."""

    def __init__(self, byte: int, position: int) -> None:
        super().__init__(
            "charset_undecodable",
            f"байт {byte:02X} в позиции {position} не определён в кодовой странице АТОЛ",
            f"byte {byte:02X} at position {position} is not defined in the ATOL code page",
        )
        self.byte = byte
        self.position = position


def encode(text: str) -> bytes:
    """`text` in the ATOL code page; raises UnencodableCharacter naming the first character it cannot map."""
    try:
        return codecs.charmap_encode(text, "strict", _ENCODING)[0]
    except UnicodeEncodeError as exc:
        raise UnencodableCharacter(text[exc.start], exc.start) from None


def encode_lossy(text: str) -> bytes:
    """`text` in the ATOL code page, with '?' for every character it cannot map."""
    return codecs.charmap_encode(text, "replace", _ENCODING)[0]


def can_encode(text: str) -> bool:
    """Whether every character of `text` has a byte in the ATOL code page."""
    return all(ord(ch) in _ENCODING for ch in text)


def decode(data: bytes | bytearray | memoryview) -> str:
    """Bytes from the device as text; raises UndecodableByte naming the first byte the table lacks."""
    try:
        return codecs.charmap_decode(bytes(data), "strict", _DECODING)[0]
    except UnicodeDecodeError as exc:
        raise UndecodableByte(exc.object[exc.start], exc.start) from None
