"""FFD TLV: tag and length little-endian, CP866 strings, VLN/FVLN numbers, nested STLV."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kktbridge.devices import tlv
from kktbridge.fiscal import FormatError


def test_string_and_byte():
    assert tlv.encode(1008, "a@b.ru").to_bytes() == bytes.fromhex("F0 03 06 00") + b"a@b.ru"
    assert tlv.encode(1021, "Иванов").value == "Иванов".encode("cp866")
    assert tlv.encode(1212, 4).to_bytes() == bytes.fromhex("BC 04 01 00 04")
    assert tlv.encode(2100, 256).value == bytes.fromhex("00 01")


def test_vln_and_fvln():
    assert tlv.encode(1229, 0).value == b"\x00"
    assert tlv.encode(1229, 344).value == bytes.fromhex("58 01")
    assert tlv.encode(1023, Decimal("2.345")).value == bytes.fromhex("03 29 09")
    assert tlv.encode(1023, Decimal("2.345")).as_decimal() == Decimal("2.345")
    assert tlv.encode(1023, Decimal("7")).value == bytes.fromhex("00 07")


def test_stlv_nesting():
    block = tlv.encode(1224, [tlv.encode(1225, "ООО"), tlv.encode(1226, "7707083893")])
    children = tlv.decode(block.value)
    assert [c.tag for c in children] == [1225, 1226] and children[0].as_text() == "ООО"
    assert tlv.decode(block.to_bytes())[0] == block


def test_errors():
    with pytest.raises(FormatError):
        tlv.encode(9999, 1)
    with pytest.raises(FormatError):
        tlv.decode(bytes.fromhex("F0 03 09 00 41"))
    with pytest.raises(FormatError):
        tlv.decode(b"\x01")


@given(st.lists(st.tuples(st.sampled_from([1008, 1021, 1191, 1230]), st.text(alphabet="абвгдАБВ xyz0123@.", max_size=40))))
def test_round_trip_strings(pairs):
    data = b"".join(tlv.encode(tag, text).to_bytes() for tag, text in pairs)
    assert [(t.tag, t.as_text()) for t in tlv.decode(data)] == pairs


@given(st.integers(min_value=0, max_value=2**48))
def test_round_trip_vln(number):
    assert tlv.decode(tlv.encode(1229, number).to_bytes())[0].as_int() == number
