"""Hostile requests for the driver, as raw bytes: the fuzzer's generator and the worst bodies the driver accepts.

Used by tests/driver/test_fuzz.py (the HTTP fuzzer and the latency proof) and bench/hostile_memory.py. Every
request is labelled: `refuse` means nothing may be printed for it, whatever else happens; a request without the
label may be valid (a mutation that kept the receipt good) and may print.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import random
import zlib
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["Hostile", "fuzz_requests", "parse_answer", "send_raw", "valid_packet", "worst_bodies"]


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes  # the whole request, as sent on the socket
    refuse: bool  # nothing may be printed for it
    cut: int | None = None  # the client closes after sending this many bytes


def valid_packet(order: int = 0, price: str = "11.00") -> bytes:
    item = {"productName_1030": f"товар {order}", "price_1079": float(price), "qty_1023": 1, "tax_1199": 6,
            "paymentFormCode_1214": 4, "productTypeCode_1212": 1}
    data = {"purchases": [item], "payments": {"cash_1031": float(price)}, "receiptType_1054": 1,
            "taxationType_1055": 1, "cashierName_1021": "Кассир"}
    return json.dumps([{"name": "чек", "type": "kktReceiptFiscalization", "data": data}], ensure_ascii=False).encode()


def http(body: bytes, headers: list[tuple[bytes, bytes]], *, method: bytes = b"POST", path: bytes = b"/",
         host: bytes = b"127.0.0.1", length: bool = True) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: " + host, b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if length:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# Values that must make a receipt be refused wherever they stand for a number, a string or a key.
HOSTILE_NUMBERS = [b"1E1000000", b"-1e-99999", b"9" * 5000, b"1.0e+400", b"1" * 25, b"0." + b"0" * 30 + b"1"]
HOSTILE_STRINGS = [b'"\\ud800"', b'"\\udfff\\ud800"', b'"1_000"', '"١٠٠٠"'.encode(), '"１２"'.encode(), b'"1e5000"',
                   b'"NaN"', b'"\\u0000"', b'"' + b"9" * 3000 + b'"', b'"12.345"', b'"-5"', b'" 1 0 "']
HOSTILE_TYPES = [b'" kktReceiptFiscalization"', b'"kktReceiptFiscalization "', b'"kktReceipt\\u0000Fiscalization"',
                 b'"kktReceiptFiscalizatio\\u043d"', b'"\\ud800"', b"null", b"[]", b"12"]


ALLOWED_ORIGIN = b"https://shop.example.ru"  # the allowed origin of the test stands (tests/driver/conftest.py)


def fuzz_requests(token: str, count: int, seed: int = 1) -> list[Hostile]:
    """`count` hostile requests of every kind, reproducible from `seed`."""
    rng = random.Random(seed)
    token_header = (b"BIT_KKT_TOKEN", token.encode())
    makers = [_number_in_field, _string_in_field, _command_type, _wrong_token, _mutated_bytes, _mutated_headers,
              _encodings, _structure, _garbage, _half_sent, _hosts_and_origins, _http_level]
    out = []
    for index in range(count):
        maker = makers[index % len(makers)]
        out.append(maker(rng, token_header, index))
    return out


def _field_replace(rng: random.Random, value: bytes) -> bytes:
    fields = [b'"price_1079": 11.0', b'"qty_1023": 1', b'"tax_1199": 6', b'"cash_1031": 11.0',
              b'"receiptType_1054": 1', b'"paymentFormCode_1214": 4']
    if value == b'"12.345"':  # a good quantity (the short payment is then completed in cash: docs/input-format.md)
        fields.remove(b'"qty_1023": 1')
    field = rng.choice(fields)
    return valid_packet().replace(field, field.split(b":")[0] + b": " + value)


def _number_in_field(rng, token_header, index) -> Hostile:
    body = _field_replace(rng, rng.choice(HOSTILE_NUMBERS))
    return Hostile("number", http(body, [token_header]), refuse=True)


def _string_in_field(rng, token_header, index) -> Hostile:
    value = rng.choice(HOSTILE_STRINGS)
    if rng.random() < 0.3:  # in a key, or in the cashier's name
        body = valid_packet().replace(b'"cashierName_1021"', b'"cashierName_1021": ' + value + b', "x\\ud800_1021"')
    else:
        body = _field_replace(rng, value)
    return Hostile("string", http(body, [token_header]), refuse=True)


def _command_type(rng, token_header, index) -> Hostile:
    body = valid_packet().replace(b'"kktReceiptFiscalization"', rng.choice(HOSTILE_TYPES))
    return Hostile("type", http(body, [token_header]), refuse=True)


def _wrong_token(rng, token_header, index) -> Hostile:
    wrong = rng.choice([b"0" * 32, token_header[1][:-1] + b"x", token_header[1] + b"0", b"", b"\xcf\xf0\xe8",
                        token_header[1].upper()[:31]])
    headers = [(b"BIT_KKT_TOKEN", wrong)] if wrong != token_header[1].upper()[:31] else [(wrong, b"1")]
    return Hostile("token", http(valid_packet(index), headers), refuse=True)


def _mutated_bytes(rng, token_header, index) -> Hostile:
    body = bytearray(valid_packet(index))
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(body))
        action = rng.random()
        if action < 0.4:
            body[position] = rng.randrange(256)
        elif action < 0.7:
            del body[position]
        else:
            body[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return Hostile("mutated", http(bytes(body), [token_header, (b"BIT_ORDER_ID", f"m{index}".encode())]),
                   refuse=False)


def _mutated_headers(rng, token_header, index) -> Hostile:
    choices = [
        [(b"BIT_ORDER_ID", "Заказ №".encode("cp1251") + str(index).encode())],
        [(b"BIT_ORDER_ID", b"\x98\xff\xfe")],
        [(b"BIT_ORDER_ID", b"a" * 200)],
        [(b"Action", b"\xd0\x9f\xd1\x80\xd0\xb8")],
        [(b"Action", b"command_list\x01")],
        [(b"BIT_ORDER_ID", b"\xed\xa0\x80")],  # a surrogate encoded as UTF-8 bytes
        [(b"X-" + bytes([rng.randrange(0x41, 0x5a)]) * 10, b"\xff" * 50)],
        [(b"BIT_ORDER_ID", b"1"), (b"BIT_ORDER_ID", b"2"), (b"bit-order-id", b"3")],
        [(b"Origin", "https://магазин.рф".encode())],
    ]
    headers = [token_header, *rng.choice(choices)]
    return Hostile("headers", http(valid_packet(index), headers), refuse=False)


def _encodings(rng, token_header, index) -> Hostile:
    plain = _field_replace(rng, rng.choice(HOSTILE_NUMBERS))
    kind = rng.randrange(8)
    if kind == 0:
        return Hostile("gzip", http(gzip.compress(plain), [token_header, (b"Content-Encoding", b"gzip")]), True)
    if kind == 1:
        return Hostile("deflate", http(zlib.compress(plain), [token_header, (b"Content-Encoding", b"deflate")]), True)
    if kind == 2:
        return Hostile("br", http(plain, [token_header, (b"Content-Encoding", b"br")]), True)
    if kind == 3:
        return Hostile("gzip garbage", http(b"\x1f\x8b" + bytes(rng.randrange(256) for _ in range(64)),
                                            [token_header, (b"Content-Encoding", b"gzip")]), True)
    if kind == 4:
        return Hostile("bomb", http(gzip.compress(b" " * (8 * 1024 * 1024)), [token_header,
                                                                              (b"Content-Encoding", b"gzip")]), True)
    if kind == 5:
        return Hostile("base64", http(base64.b64encode(plain), [token_header]), True)
    if kind == 6:
        return Hostile("hex", http(plain.hex().encode(), [token_header]), True)
    return Hostile("uri", http(b"json=" + quote(plain.decode()).encode(), [token_header]), True)


def _structure(rng, token_header, index) -> Hostile:
    kind = rng.randrange(7)
    if kind == 0:
        body = b"[" * 5000 + b"]" * 5000
    elif kind == 1:
        body = b"[" + b",".join([b"1"] * 30000) + b"]"
    elif kind == 2:
        body = json.dumps([{"type": "kktReceiptFiscalization", "data": {"purchases": [{}] * 1001}}]).encode()
    elif kind == 3:
        body = json.dumps([{"type": "kktXReport"}] * 65).encode()
    elif kind == 4:
        body = json.dumps([{"type": "kktReceiptFiscalization", "data": {f"p{i}_1059": {} for i in range(700)}}]
                          ).encode()
    elif kind == 5:
        body = b'[{"type": "kktReceiptFiscalization", "data": {"purchases": [' + b'{"a":' * 20 + b"1" + \
               b"}" * 20 + b"]}}]"
    else:
        body = b'{"type": "kktReceiptFiscalization", "data": "' + b"x" * 100_000 + b'"}'
    return Hostile("structure", http(body, [token_header]), refuse=True)


def _garbage(rng, token_header, index) -> Hostile:
    size = rng.choice([1, 10, 100, 5000])
    return Hostile("garbage", bytes(rng.randrange(256) for _ in range(size)), refuse=True)


def _half_sent(rng, token_header, index) -> Hostile:
    data = http(valid_packet(index), [token_header, (b"BIT_ORDER_ID", f"h{index}".encode())])
    return Hostile("half", data, refuse=True, cut=rng.randrange(1, len(data) - 1))


def _hosts_and_origins(rng, token_header, index) -> Hostile:
    kind = rng.randrange(8)
    if kind == 6:  # a preflight of the allowed origin asking for headers no browser would name
        return Hostile("preflight", http(b"", [(b"Origin", ALLOWED_ORIGIN), (b"Access-Control-Request-Method", b"POST"),
                                               (b"Access-Control-Request-Headers", rng.choice(
                                                   [b"\xff\xfe, action", b"a" * 5000, b"x,,,,y", b"\xd0\x9f"]))],
                                       method=b"OPTIONS"), True)
    if kind == 7:  # the allowed origin with a body it may not send
        return Hostile("origin", http(_field_replace(rng, rng.choice(HOSTILE_NUMBERS)),
                                      [(b"Origin", ALLOWED_ORIGIN), (b"Access-Control-Request-Private-Network", b"\xff")]),
                       True)
    if kind == 0:
        return Hostile("host", http(valid_packet(index), [token_header], host=b"evil.example"), True)
    if kind == 1:
        return Hostile("host", http(b"", [], method=b"GET", path=b"/status", host=b"127.0.0.1.evil.example"), True)
    if kind == 2:
        return Hostile("origin", http(valid_packet(index), [token_header, (b"Origin", b"https://evil.example")]),
                       True)
    if kind == 3:
        return Hostile("origin", http(b"", [(b"Origin", b"null"), (b"Access-Control-Request-Method", b"POST")],
                                      method=b"OPTIONS"), True)
    if kind == 4:
        return Hostile("host", http(valid_packet(index), [token_header], host=b"\xff\xfe"), True)
    return Hostile("status", http(b"", [(b"Origin", b"https://evil.example")], method=b"GET", path=b"/status"), True)


def _http_level(rng, token_header, index) -> Hostile:
    body = valid_packet(index)
    choices = [
        http(body, [token_header, (b"Content-Length", b"5")], length=False) + b"trailing",
        http(body, [token_header, (b"Content-Length", b"-1")], length=False),
        http(body, [token_header, (b"Transfer-Encoding", b"chunked")], length=False),
        http(b"5\r\n[1,2]\r\nzz\r\n", [token_header, (b"Transfer-Encoding", b"chunked")], length=False),
        http(body, [token_header], method=b"PUT"),
        http(body, [token_header], path=b"/%00%ff/../status"),
        http(body, [token_header] * 200),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n",
        b"POST / HTTP/1.0\r\n\r\n" + body,
        http(body, [token_header], method=b"GE\x00T"),
    ]
    return Hostile("http", rng.choice(choices), refuse=True)


def worst_bodies(token: str) -> dict[str, bytes]:
    """The requests that cost the driver the most to read, each within the largest body it takes (2 MB)."""
    bad = {"productName_1030": "", "price_1079": "x", "qty_1023": "y", "tax_1199": "z", "unit_2108": "q",
           "paymentFormCode_1214": 99, "productTypeCode_1212": 99, "amount_1043": "z"}
    data = {"receiptType_1054": 1, "purchases": [bad] * 397}  # the most objects a 100-line register's packet holds
    most_objects = json.dumps([{"type": "kktReceiptFiscalization", "data": data}]).encode()
    numbers = b"[" + b",".join([b"[" + b",".join([b"123456789012.123456789012"] * 1000) + b"]"] * 4) + b"]"
    strings = b"[" + b",".join([b'["' + b"\\u0416" * 1000 + b'"' + b', "a"' * 999 + b"]"] * 9) + b"]"
    percent = b"%5B" + b"%22" * (2 * 1024 * 1024 // 3 - 2)
    bodies = {
        "most objects, every field wrong": most_objects,
        "most numbers": numbers,
        "most strings": strings,
        "percent-encoded, 2 MB": percent,
        "exponent 1E1000000": valid_packet().replace(b'"tax_1199": 6', b'"tax_1199": 1E1000000'),
        "gzip to 2 MB": gzip.compress(most_objects.ljust(2 * 1024 * 1024 - 10, b" ")),
    }
    token_header = (b"BIT_KKT_TOKEN", token.encode())
    out = {}
    for name, body in bodies.items():
        assert len(body) <= 2 * 1024 * 1024, (name, len(body))
        headers = [token_header] + ([(b"Content-Encoding", b"gzip")] if name.startswith("gzip") else [])
        out[name] = http(body, headers)
    return out


async def send_raw(host: str, port: int, data: bytes, cut: int | None = None, timeout: float = 30) -> bytes:
    """Send a request's bytes on a new connection (only the first `cut` of them, then leave) and read the answer
    until the server closes; b"" when there is none."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data if cut is None else data[:cut])
        await writer.drain()
        if cut is not None:
            return b""
        return await asyncio.wait_for(reader.read(-1), timeout)
    except ConnectionError:
        return b""  # the server closed first (a request it refused before reading all of it)
    finally:
        writer.close()


def parse_answer(raw: bytes) -> tuple[int | None, dict[str, str], bytes]:
    """(status, headers by lower-case name, body) of a raw HTTP answer; (None, {}, b"") for none."""
    if not raw:
        return None, {}, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return int(lines[0].split()[1]), headers, body
