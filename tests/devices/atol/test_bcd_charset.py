"""Packed BCD (spec/devices.md §1.5) and the ATOL external code page (atol4j ExternalCharset facts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kktbridge.devices.atol import bcd, charset
from kktbridge.fiscal.errors import FormatError

h = bytes.fromhex


# --- BCD ---


def test_spec_vector() -> None:
    assert bcd.encode(10000, 5) == h("00 00 01 00 00")
    assert bcd.decode(h("00 00 01 00 00")) == 10000


@pytest.mark.parametrize(
    ("value", "nbytes", "wire"),
    [(0, 1, "00"), (30, 4, "00 00 00 30"), (99, 1, "99"), (1234, 2, "12 34"), (9999999999, 5, "99 99 99 99 99")],
)
def test_known_values(value: int, nbytes: int, wire: str) -> None:
    assert bcd.encode(value, nbytes) == h(wire)
    assert bcd.decode(h(wire)) == value


@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, bcd.max_value(n)))))
def test_round_trip(width_value: tuple[int, int]) -> None:
    nbytes, value = width_value
    wire = bcd.encode(value, nbytes)
    assert len(wire) == nbytes
    assert wire.hex() == str(value).zfill(2 * nbytes)
    assert bcd.decode(wire) == value


def test_overflow_names_value_and_width() -> None:
    with pytest.raises(bcd.BcdOverflow) as info:
        bcd.encode(100, 1)
    assert isinstance(info.value, FormatError)
    assert "100" in info.value.en and "99" in info.value.en and "100" in info.value.ru
    assert (info.value.value, info.value.nbytes) == (100, 1)
    with pytest.raises(bcd.BcdOverflow):
        bcd.encode(10**10, 5)


def test_negative_is_refused() -> None:
    with pytest.raises(bcd.BcdNegative) as info:
        bcd.encode(-1, 5)
    assert info.value.code == "bcd_negative"


@pytest.mark.parametrize(("wire", "index"), [("1A", 0), ("00 F0", 1), ("12 34 5B", 2)])
def test_invalid_nibble_names_the_byte(wire: str, index: int) -> None:
    with pytest.raises(bcd.BcdInvalidNibble) as info:
        bcd.decode(h(wire))
    assert info.value.index == index
    assert f"byte {index}" in info.value.en


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        bcd.encode(1.5, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        bcd.encode(True, 1)
    with pytest.raises(ValueError):
        bcd.encode(0, 0)
    assert bcd.decode(b"") == 0


# --- the external code page ---


def test_atol4j_vector() -> None:
    assert charset.decode(h("80 92 8E 8B 20 39 31 94")) == "АТОЛ 91Ф"
    assert charset.encode("АТОЛ 91Ф") == h("80 92 8E 8B 20 39 31 94")
    assert charset.encode("0123456789") == bytes(range(0x30, 0x3A))
    assert charset.encode("") == b""


def test_number_sign_and_dollar_are_swapped_against_cp866() -> None:
    assert charset.encode("№") == h("24") != "№".encode("cp866")
    assert charset.encode("$") == h("FC") != "$".encode("cp866")
    assert charset.decode(h("24 FC")) == "№$"


def test_table_matches_atol4j() -> None:
    ascii_part = {b: chr(b) for b in range(0x20, 0x7F) if b not in (0x24, 0x27)}
    cyrillic_and_boxes = {b: bytes((b,)).decode("cp866") for b in range(0x80, 0xF0)}
    tail = {0xF0: "Ё", 0xF1: "ё", 0xF2: "€", 0xFA: "\u2011", 0xFC: "$", 0xFF: "■"}
    for b, ch in {**ascii_part, **cyrillic_and_boxes, **tail}.items():
        assert charset.decode(bytes((b,))) == ch, hex(b)
        assert charset.encode(ch) == bytes((b,)), ch
    assert charset.decode(h("80 9F A0 AF E0 EF")) == "АЯапря"


def test_apostrophe() -> None:
    # atol4j writes 0x27 as U+2019; we read it back as the ASCII apostrophe and accept both.
    assert charset.encode("'") == charset.encode("\u2019") == h("27")
    assert charset.decode(h("27")) == "'"


def test_unencodable_character_is_named() -> None:
    with pytest.raises(charset.UnencodableCharacter) as info:
        charset.encode("Чай ☕ 1 шт")
    err = info.value
    assert (err.char, err.position) == ("☕", 4)
    assert "U+2615" in err.en and "U+2615" in err.ru and "4" in err.en
    assert isinstance(err, FormatError) and err.code == "charset_unencodable"
    assert not charset.can_encode("Чай ☕") and charset.can_encode("Чай №1")


def test_latin_accents_and_control_characters_are_not_text() -> None:
    for ch in ("é", "\t", "\n", "\x7f", "\u00a0"):
        with pytest.raises(charset.UnencodableCharacter):
            charset.encode(ch)


def test_lossy_encoding_replaces_with_question_mark() -> None:
    assert charset.encode_lossy("Café ☕") == h("43 61 66 3F 20 3F")


def test_undefined_byte_is_named() -> None:
    for byte in (0x00, 0x0A, 0x7F, 0xFE):
        with pytest.raises(charset.UndecodableByte) as info:
            charset.decode(b"AB" + bytes((byte,)))
        assert (info.value.byte, info.value.position) == (byte, 2)
        assert f"{byte:02X}" in info.value.en


def _defined_bytes() -> list[int]:
    out = []
    for b in range(256):
        try:
            charset.decode(bytes((b,)))
        except charset.UndecodableByte:
            continue
        out.append(b)
    return out


def test_defined_bytes() -> None:
    defined = set(_defined_bytes())
    assert defined == set(range(0x20, 0x7F)) | set(range(0x80, 0xFE)) | {0xFF}


@given(st.lists(st.sampled_from(_defined_bytes())).map(bytes))
def test_bytes_round_trip(data: bytes) -> None:
    assert charset.encode(charset.decode(data)) == data


@given(st.text(alphabet=st.sampled_from(charset.decode(bytes(_defined_bytes())))))
def test_text_round_trip(text: str) -> None:
    assert charset.decode(charset.encode(text)) == text
