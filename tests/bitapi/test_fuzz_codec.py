"""The codec fuzzed with hypothesis: whatever the bytes, decoding ends in a packet or a PacketError whose texts
can be written out, and the number grammar accepts exactly the spellings docs/input-format.md lists."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kktbridge.bitapi import Packet, PacketError, decode_request, dumps, parse_headers
from kktbridge.bitapi.jsontext import loads
from kktbridge.examples import example_packet
from kktbridge.fiscal import FormatError, Quantity, parse_rubles
from kktbridge.fiscal.numbers import MAX_DIGITS, json_literal_problem, read_decimal, read_integer, spelling_problem

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_refusal(error: PacketError) -> None:
    """A refusal's texts: UTF-8 all through, each problem once, the languages apart."""
    for text in (error.text(), error.text_ru(), error.text_en()):
        text.encode("utf-8")
    assert len(error.fields) <= 101
    for field in error.fields:
        assert error.text_ru().count(f"{field.path}: {field.ru}") >= 1
        assert error.text().count(f"{field.path}: {field.ru} / {field.en}") == \
            [f"{f.path}: {f.ru} / {f.en}" for f in error.fields].count(f"{field.path}: {field.ru} / {field.en}")


def decode(headers, body: bytes) -> Packet | None:
    try:
        packet = decode_request(headers, body)
    except PacketError as exc:
        check_refusal(exc)
        return None
    dumps([command.name for command in packet.commands]).encode("utf-8")
    return packet


header_text = st.binary(max_size=60).map(lambda raw: raw.decode("utf-8", "surrogateescape"))


@FUZZ
@given(body=st.binary(max_size=3000), headers=st.lists(st.tuples(st.sampled_from(
    ["Action", "BIT_KKT_TOKEN", "bit_order_id", "BIT_ENCODE_TYPE", "X", "0123456789abcdef0123456789abcdef"]),
    header_text), max_size=5))
def test_any_bytes_end_in_a_packet_or_a_refusal(body, headers):
    decode(headers, body)


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False).map(str).map(lambda t: t.replace("E", "e")),
    st.sampled_from(["1E1000000", "1_000", "١٠٠٠", " 4 ", "\ud800", "9" * 40, "-0.00", "1e-7", "12,50", "NaN"]),
)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                             st.dictionaries(st.text(max_size=12), inner, max_size=6)),
                          max_leaves=40)


@FUZZ
@given(value=json_value, where=st.sampled_from(["price_1079", "qty_1023", "tax_1199", "cash_1031", "type",
                                                "receiptType_1054", "productName_1030", "purchases", "showMode"]))
def test_any_value_in_any_field_ends_in_a_packet_or_a_refusal(value, where):
    packet = json.loads(example_packet())
    receipt = packet[1]
    item = receipt["data"]["purchases"][0]
    if where in item:
        item[where] = value
    elif where in ("type", "showMode"):
        receipt[where] = value
    elif where == "cash_1031":
        receipt["data"]["payments"] = {"cash_1031": value}
    else:
        receipt["data"][where] = value
    text = json.dumps(packet, ensure_ascii=False)
    for literal in ("1E1000000", "9" * 40, "1e-7"):  # also as JSON numbers, not only as strings
        text = text.replace(f'"{literal}"', literal)
    decode({"Action": "command_list"}, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(text=json_value.map(lambda v: json.dumps(v)))
def test_loads_returns_only_what_can_be_written_back(text):
    try:
        value = loads(text)
    except FormatError:
        return
    dumps(value).encode("utf-8")  # no lone surrogate, no float, no unbounded number survives loads


# --- the number grammar, against an independent reading of docs/input-format.md ---------------------------------

REFERENCE = re.compile(r"[ \t\r\n\u00a0\u202f]*[+-]?(?:[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+|[0-9]+)(?:[.,][0-9]+)?"
                       r"(?:[eE][+-]?[0-9]{1,2})?[ \t\r\n\u00a0\u202f]*")


def reference_accepts(text: str) -> bool:
    if not REFERENCE.fullmatch(text):
        return False
    mantissa = re.split(r"[eE]", text.strip(" \t\r\n\u00a0\u202f"))[0]
    return sum(char.isdigit() for char in mantissa) <= MAX_DIGITS and len(text) <= 64


number_like = st.text(alphabet=st.sampled_from(list("0123456789+-.,eE _\u00a0\u202f٠١٢٣४５x")), max_size=30)


@FUZZ
@given(text=number_like)
@example("1_000")
@example("١٠٠٠")
@example("1 000,50")
@example(" 12 ")
@example("1e100")
@example("1e99")
def test_the_number_grammar_is_exactly_the_documented_one(text):
    accepted = spelling_problem(text) is None
    assert accepted == reference_accepts(text), text
    if accepted:
        value = read_decimal(text)
        plain = re.sub(r"[ \u00a0\u202f\t\r\n]", "", text).replace(",", ".")
        assert value == Decimal(plain)


@FUZZ
@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=60), fraction=st.text(alphabet="0123456789",
       max_size=10), exponent=st.integers(-10**6, 10**6))
def test_json_literals_are_bounded_before_they_become_decimals(digits, fraction, exponent):
    digits = digits.lstrip("0") or "0"
    literal = digits + (f".{fraction}" if fraction else "") + f"e{exponent}"
    problem = json_literal_problem(literal)
    too_long = len(digits) + len(fraction) > MAX_DIGITS or len(str(abs(exponent))) > 2
    assert (problem is not None) == too_long
    if problem is None:  # what passes is small enough for any arithmetic kktbridge does
        try:
            kopecks = parse_rubles(Decimal(literal))
            assert kopecks < 10**15
        except FormatError:
            pass
        try:
            Quantity.parse(Decimal(literal))
        except FormatError:
            pass


@FUZZ
@given(text=st.text(max_size=25))
def test_integers_as_text_are_ascii_digits_only(text):
    value = read_integer(text)
    stripped = text.strip(" \t\r\n\u00a0\u202f")
    if value is not None:
        assert re.fullmatch(r"[+-]?[0-9]{1,18}", stripped) and value == int(stripped)
    else:
        assert not re.fullmatch(r"[+-]?[0-9]{1,18}", stripped)


@FUZZ
@given(values=st.lists(st.binary(max_size=40), max_size=6))
def test_header_values_come_out_as_text_that_can_be_stored(values):
    names = ["Action", "BIT_KKT_TOKEN", "BIT_ORDER_ID", "BIT_ENCODE_TYPE", "bit_order_id", "Origin"]
    pairs = [(names[i % len(names)], raw.decode("utf-8", "surrogateescape")) for i, raw in enumerate(values)]
    parsed, errors = parse_headers(pairs)
    for text in (parsed.order_id, parsed.action, parsed.encode_type, *[e.ru + e.en for e in errors]):
        if text is not None:
            text.encode("utf-8")
