"""Both header styles, matched without regard to letter case or - / _."""

import pytest

from kktbridge.bitapi import parse_headers

KKT = "c751398cbf6f97b912050906923da1d6"
BNK = "2bb9bbe5a103c897a4896cab18c394ae"


def test_style_1_3():
    headers, errors = parse_headers({"Action": "command_list", "BIT_KKT_TOKEN": KKT, "BIT_BNK_TRM_TOKEN": BNK,
                                     "BIT_ORDER_ID": "122", "BIT_ENCODE_TYPE": "JS"})
    assert errors == []
    assert (headers.style, headers.kkt_token, headers.bnk_token, headers.order_id, headers.encode_type) == (
        "1.3", KKT, BNK, "122", "JS")
    assert headers.tokens == (KKT, BNK)


@pytest.mark.parametrize("name", ["BIT_ORDER_ID", "bit_order_id", "Bit_order_id", "BIT-ORDER-ID", "bit-Order_id"])
def test_order_id_in_any_case(name):
    headers, errors = parse_headers([(name, " 42 ")])
    assert errors == [] and headers.order_id == "42"


def test_style_1_2_tokens_as_header_names():
    headers, errors = parse_headers([("Action", "toLocalhost"), (KKT.upper(), "1"), (BNK, "1"),
                                     ("Content-Type", "application/x-www-form-urlencoded")])
    assert errors == []
    assert headers.style == "1.2"
    assert headers.legacy_tokens == (KKT, BNK)
    assert headers.kkt_token is None and headers.tokens == (KKT, BNK)


def test_token_headers_lowercased_and_checked():
    headers, errors = parse_headers({"bit_kkt_token": KKT.upper()})
    assert headers.kkt_token == KKT
    headers, errors = parse_headers({"BIT_KKT_TOKEN": "short", "BIT_BNK_TRM_TOKEN": "z" * 32})
    assert [e.path for e in errors] == ["headers.BIT_KKT_TOKEN", "headers.BIT_BNK_TRM_TOKEN"]
    assert headers.kkt_token is None and headers.bnk_token is None


def test_unknown_action_and_long_order_id():
    headers, errors = parse_headers({"Action": "print", "BIT_ORDER_ID": "x" * 129})
    assert [e.code for e in errors] == ["action", "too_long"]
    assert "command_list" in errors[0].en


def test_allow_invalid_marking_flag():
    assert parse_headers({"BIT_ALLOW_INVALID_MRK_CODES_WITH_CASHIER": "true"})[0].allow_invalid_marking
    assert not parse_headers({})[0].allow_invalid_marking


def test_empty_values_are_absent():
    headers, errors = parse_headers({"BIT_KKT_TOKEN": "", "BIT_ORDER_ID": "  "})
    assert errors == [] and headers.kkt_token is None and headers.order_id is None
