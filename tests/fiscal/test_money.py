"""Money: rubles in, integer kopecks out, exactly, never through float."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kktbridge.fiscal import FormatError, format_rubles, kopecks_to_decimal, parse_kopecks, parse_rubles
from kktbridge.bitapi import loads


@pytest.mark.parametrize(
    "value, kopecks",
    [
        (12, 1200),
        (Decimal("11.00"), 1100),
        (Decimal("0.1"), 10),
        ("12.50", 1250),
        ("12,5", 1250),
        (" 1 000,01 ", 100001),
        (0.1, 10),  # a Python float is read from its repr, not its binary value
        (0.29, 29),  # 0.29 * 100 == 28.999999999999996 in float arithmetic
        (Decimal("1.230"), 123),
        (0, 0),
    ],
)
def test_parse_rubles(value, kopecks):
    assert parse_rubles(value) == kopecks


@pytest.mark.parametrize(
    "value, code",
    [
        ("12.001", "money_precision"),
        (Decimal("0.005"), "money_precision"),
        (-1, "money_negative"),
        ("abc", "money_format"),
        ("", "money_format"),
        ("NaN", "money_format"),
        (True, "money_format"),
        (None, "money_format"),
        ([1], "money_format"),
        (Decimal("Infinity"), "money_format"),
        ("1e20", "money_range"),
    ],
)
def test_parse_rubles_rejects(value, code):
    with pytest.raises(FormatError) as info:
        parse_rubles(value)
    assert info.value.code == code
    assert info.value.ru and info.value.en


def test_json_numbers_arrive_as_decimal():
    assert parse_rubles(loads("[0.29]")[0]) == 29
    assert isinstance(loads("[12.10]")[0], Decimal)


def test_parse_kopecks():
    assert parse_kopecks(1250) == 1250
    for bad in (12.5, "12", True, -1):
        with pytest.raises(FormatError):
            parse_kopecks(bad)


def test_format():
    assert format_rubles(0) == "0.00"
    assert format_rubles(5) == "0.05"
    assert format_rubles(123456) == "1234.56"
    assert format_rubles(-150) == "-1.50"
    assert kopecks_to_decimal(1250) == Decimal("12.50")
    assert str(kopecks_to_decimal(1200)) == "12.00"


@given(st.integers(min_value=0, max_value=10**14))
def test_format_parse_round_trip(kopecks):
    text = format_rubles(kopecks)
    assert parse_rubles(text) == kopecks
    assert parse_rubles(kopecks_to_decimal(kopecks)) == kopecks
    assert parse_rubles(loads(f"[{text}]")[0]) == kopecks


@given(st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_two_place_decimals_are_exact(number):
    assert parse_rubles(number) == int(number * 100)
    assert parse_rubles(str(number)) == int(number * 100)


@given(st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False))
def test_third_decimal_is_refused_not_rounded(number):
    if (number * 100) % 1:
        with pytest.raises(FormatError):
            parse_rubles(number)
    else:
        assert parse_rubles(number) == int(number * 100)


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False))
def test_floats_follow_their_repr(value):
    number = Decimal(repr(value))
    if (number * 100) % 1:
        with pytest.raises(FormatError):
            parse_rubles(value)
    else:
        assert parse_rubles(value) == int(number * 100)
