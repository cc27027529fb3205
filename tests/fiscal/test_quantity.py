"""Quantity: up to six decimals, exact, and the item sum rounded half up to kopecks."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kktbridge.fiscal import FormatError, Quantity


def test_parse_and_print():
    assert Quantity.parse(1).micros == 1_000_000
    assert Quantity.parse(Decimal("1.234")).micros == 1_234_000
    assert Quantity.parse("0,5").micros == 500_000
    assert Quantity.parse("2.000001").micros == 2_000_001
    assert str(Quantity.parse(Decimal("1.00"))) == "1"
    assert str(Quantity.parse("2.345")) == "2.345"
    assert Quantity.parse("2.345").places == 3
    assert Quantity.parse("7").places == 0
    assert Quantity.parse("1.5").to_decimal() == Decimal("1.5")


@pytest.mark.parametrize("value, code", [("1.0000001", "quantity_precision"), (0, "quantity_range"),
                                         ("-1", "quantity_range"), ("x", "quantity_format"), (None, "quantity_format"),
                                         (True, "quantity_format")])
def test_parse_rejects(value, code):
    with pytest.raises(FormatError) as info:
        Quantity.parse(value)
    assert info.value.code == code


def test_amount_rounds_half_up():
    # the PHP demo: 1.23 × 2.345 = 2.88435 → 2.88
    assert Quantity.parse("2.345").amount_for(123) == 288
    # exactly half a kopeck goes up
    assert Quantity.parse("0.5").amount_for(1) == 1
    assert Quantity.parse("1.5").amount_for(1) == 2
    assert Quantity.parse("0.25").amount_for(2) == 1
    assert Quantity.parse("0.001").amount_for(499) == 0
    assert Quantity.parse("0.001").amount_for(500) == 1


def test_scaled_for_devices():
    assert Quantity.parse("1.5").scaled(10000) == 15000
    assert Quantity.parse("1.234").scaled(1000) == 1234
    with pytest.raises(FormatError):
        Quantity.parse("1.00001").scaled(10000)


@given(st.integers(min_value=1, max_value=10**11), st.integers(min_value=0, max_value=10**9))
def test_amount_matches_decimal_half_up(micros, price):
    q = Quantity(micros)
    exact = Decimal(price) * Decimal(micros) / Decimal(10**6)
    assert q.amount_for(price) == int(exact.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


@given(st.decimals(min_value=Decimal("0.000001"), max_value=10**5, places=6, allow_nan=False, allow_infinity=False))
def test_round_trip(value):
    q = Quantity.parse(value)
    assert Quantity.parse(str(q)) == q
    assert q.to_decimal() == value
