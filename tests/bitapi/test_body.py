"""Every body encoding of spec/bit-api.md §1 gives back the same JSON text."""

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kktbridge.bitapi import decode_body
from kktbridge.fiscal import FormatError

PACKET = json.dumps([{"name": "1. Оплата по 'карте'", "type": "bnkCardPayment", "data": {"sum": 12.5}},
                     {"name": "тест + плюс & амперсанд = равно", "type": "kktXReport",
                      "data": {"cashierName_1021": "Пупкин И. Т.", "phone": "+7 999 123-45-67"}}],
                    ensure_ascii=False)


def encode_uri_component(text: str) -> str:
    """What JavaScript's encodeURIComponent writes."""
    return quote(text, safe="-_.!~*'()")


def rawurlencode(text: str) -> str:
    """What PHP's rawurlencode writes (RFC 3986)."""
    return quote(text, safe="-_.~")


ENCODINGS = {
    "raw JSON": lambda t: t.encode(),
    "raw JSON with BOM and spaces": lambda t: ("\ufeff \n" + t + "\n").encode(),
    "PHP json_encode \\u escapes": lambda t: json.dumps(json.loads(t)).encode(),
    "encodeURIComponent (BIT_ENCODE_TYPE: JS)": lambda t: encode_uri_component(t).encode(),
    "form field json= (1.2, jQuery)": lambda t: urlencode({"json": t}).encode(),
    "form field json= among others": lambda t: ("a=1&" + urlencode({"json": t}) + "&b=2").encode(),
    "rawurlencode": lambda t: rawurlencode(t).encode(),
    "text/plain base64": lambda t: base64.b64encode(t.encode()),
    "text/plain base64 with line breaks": lambda t: base64.encodebytes(t.encode()),
    "text/plain hex": lambda t: t.encode().hex().encode(),
    "text/plain HEX upper case": lambda t: t.encode().hex().upper().encode(),
    "cloud BIT_DATA: btoa(encodeURIComponent(json))": lambda t: base64.b64encode(encode_uri_component(t).encode()),
}


@pytest.mark.parametrize("encode", ENCODINGS.values(), ids=list(ENCODINGS))
def test_every_encoding(encode):
    assert json.loads(decode_body(encode(PACKET))) == json.loads(PACKET)


@pytest.mark.parametrize("body, code", [
    (b"", "body_empty"),
    (b"   \n", "body_empty"),
    (b"hello world", "body_format"),
    (b"json=", "body_empty"),
    (b"\xff\xfe[", "body_encoding"),
    (b"%E2%28%A1", "body_format"),
    (base64.b64encode(b"not json at all"), "body_format"),
    (b"deadbeef", "body_format"),
])
def test_refused_bodies(body, code):
    with pytest.raises(FormatError) as info:
        decode_body(body)
    assert info.value.code == code
    assert info.value.ru and info.value.en


def test_error_quotes_the_start_of_the_body():
    with pytest.raises(FormatError) as info:
        decode_body(b"<html>oops</html>")
    assert "<html>oops" in info.value.en


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@given(st.lists(json_values, min_size=1, max_size=4), st.sampled_from(sorted(ENCODINGS)))
def test_any_json_array_survives_any_encoding(value, name):
    text = json.dumps(value, ensure_ascii=False)
    assert json.loads(decode_body(ENCODINGS[name](text))) == value


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(body):
    try:
        text = decode_body(body)
    except FormatError:
        return
    assert text[:1] in "[{"
