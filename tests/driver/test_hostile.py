"""Each hostile case of issue 10, named, against a driver on a real port with an emulated ATOL register behind it.

Requests go through real sockets (raw bytes where an HTTP client would not send them). Each test ends by checking
what the register printed: nothing for a request that must be refused, the receipt for one that must work.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import ssl
import zlib
from pathlib import Path

import aiohttp
import pytest

from kktbridge.devices.atol.adapter import AtolRegister
from kktbridge.devices.errors import DeviceError
from kktbridge.emulators.atol.server import AtolEmulator
from kktbridge.emulators.fncore import read_journal

from tests.support import receipt

from .conftest import ORIGIN, close_stand, make_stand
from .test_driver_http import receipt_packet

TLS = Path(__file__).parent / "tls"  # a self-signed certificate for localhost and 127.0.0.1, for tests only


def address(stand) -> tuple[str, int]:
    host, port = stand.url.rsplit("//", 1)[1].rsplit(":", 1)
    return host.strip("[]"), int(port)


async def exchange(stand, data: bytes, timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer until the server closes: (status, headers, body)."""
    reader, writer = await asyncio.open_connection(*address(stand))
    writer.write(data)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(-1), timeout)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def request(path: str = "/", *, method: str = "POST", host: bytes = b"127.0.0.1", headers: bytes = b"",
            body: bytes = b"") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\n".encode() + b"Host: " + host + b"\r\nConnection: close\r\n" + headers +
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def packet_bytes(**changes) -> bytes:
    packet = receipt_packet()
    packet[0]["data"]["purchases"][0].update(changes)
    return json.dumps(packet, ensure_ascii=False).encode()


@pytest.fixture
async def quick(tmp_path):
    """A stand whose deadlines are short, so slow clients are dropped within the test."""
    stand = await make_stand(tmp_path, settings={"header_timeout": 0.5, "body_timeout": 0.5, "max_connections": 8})
    yield stand
    await close_stand(stand)


async def assert_receipt_still_works(stand, order: str = "after") -> None:
    before = len(stand.receipts())
    status, answer, _ = await stand.post(receipt_packet(), {"BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": order})
    assert status == 200 and "success" in answer[0], answer
    assert len(stand.receipts()) == before + 1


# --- hostile pages -------------------------------------------------------------------------------------------


async def test_dns_rebinding_a_foreign_host_name_reads_nothing(stand):
    for path, method in (("/status", "GET"), ("/", "GET"), ("/", "POST"), ("/", "OPTIONS")):
        status, headers, body = await exchange(stand, request(path, method=method, host=b"evil.example:44735",
                                                              body=packet_bytes() if method == "POST" else b""))
        assert status == 421, (path, method)
        answer = json.loads(body)
        assert answer["errorCode"] == "host_not_allowed" and "external_names" in answer["errorEn"]
        assert stand.token.encode() not in body and b"allowedOrigins" not in body
    assert stand.receipts() == []
    for host in (b"127.0.0.1", b"localhost:1", b"LOCALHOST.", b"[::1]:44735"):  # this computer's own names
        status, _, body = await exchange(stand, request("/status", method="GET", host=host))
        assert status == 200 and stand.token.encode() in body, host


async def test_external_names_and_ip_literals_are_served(tmp_path):
    stand = await make_stand(tmp_path, settings={"external_names": ["kassa.shop.example"]})
    try:
        for host in (b"kassa.shop.example:44736", b"203.0.113.5:44736"):  # a router's name or public address
            status, _, body = await exchange(stand, request(host=host, headers=f"BIT_KKT_TOKEN: {stand.token}\r\n"
                                                            .encode(), body=packet_bytes()))
            assert status == 200 and "success" in json.loads(body)[0], body
            status, _, _ = await exchange(stand, request("/status", method="GET", host=host))
            assert status == 403  # the status page stays on loopback names
        assert len(stand.receipts()) == 2
    finally:
        await close_stand(stand)


async def test_no_page_can_frame_the_driver_or_read_its_status(stand):
    async with stand.session.get(stand.url + "/") as page:
        policy = page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "'sha256-" in policy and page.headers["Cache-Control"] == "no-store"
    for path in ("/status", "/nope"):
        async with stand.session.get(stand.url + path) as response:
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    _, _, headers = await stand.post(receipt_packet(), {"BIT_KKT_TOKEN": stand.token})
    assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    for extra in ({"Origin": ORIGIN}, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        async with stand.session.get(stand.url + "/status", headers=extra) as response:  # even the shop's own site
            assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers
            assert stand.token not in await response.text()


# --- hostile bytes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [("tax_1199", "1E1000000"), ("price_1079", "1e-999999"),
                                          ("qty_1023", "1" * 5000), ("paymentFormCode_1214", "9E+99999999999")])
async def test_a_huge_exponent_is_refused_at_once_and_not_retryable(stand, field, value):
    body = packet_bytes().replace(f'"{field}": '.encode() + json.dumps(receipt_packet()[0]["data"]["purchases"][0]
                                                                        [field]).encode(), f'"{field}": {value}'.encode())
    assert value.encode() in body
    status, answer, _ = await stand.post(body, {"BIT_KKT_TOKEN": stand.token})
    assert status == 200 and answer["result"] is False and answer["retryable"] is False
    (problem,) = answer["fields"]
    assert problem == {**problem, "path": f"[0].data.purchases[0].{field}", "code": "number_format"}
    assert len(answer["error"]) < 400  # the number is not echoed whole
    assert stand.receipts() == []
    await assert_receipt_still_works(stand)


async def test_a_windows_1251_order_id_is_read_and_the_receipt_prints_once(stand):
    headers = f"BIT_KKT_TOKEN: {stand.token}\r\n".encode() + "BIT_ORDER_ID: Заказ №17\r\n".encode("cp1251")
    for attempt in range(2):
        status, response, body = await exchange(stand, request(headers=headers, body=packet_bytes()))
        assert status == 200 and "success" in json.loads(body)[0], body
        assert ("x-kktbridge-replayed" in response) == (attempt == 1)  # the retry is the same order
    assert len(stand.receipts()) == 1 and stand.driver.journal.recent()[0].order_id == "Заказ №17"
    status, _, body = await exchange(stand, request(headers=b"BIT_ORDER_ID: \x98\xff\r\n", body=packet_bytes()))
    assert json.loads(body)["fields"][0]["code"] == "header_encoding"  # 0x98 is not Windows-1251 either


@pytest.mark.parametrize("text", ['"cashierName_1021": "\\ud800 Пупкин"', '"\\udfff_1021": "Пупкин"',
                                  '"additionalAttribut_1191": "x\\udc00"'])
async def test_a_lone_surrogate_is_a_field_error(stand, text):
    data = receipt_packet()[0]["data"]
    body = json.dumps([{"type": "kktReceiptFiscalization", "data": data}])
    body = body.replace('"receiptType_1054"', text + ', "receiptType_1054"')
    status, answer, _ = await stand.post(body.encode(), {"BIT_KKT_TOKEN": stand.token})
    assert answer["result"] is False and answer["fields"][0]["code"] == "surrogate", answer
    assert answer["fields"][0]["path"].startswith("[0].data")
    assert stand.receipts() == []
    assert stand.driver.journal.recent() == []  # nothing that cannot be stored reached the journal


async def test_content_encoding_is_decoded_or_refused(stand):
    plain = packet_bytes()
    for encoding, body in (("gzip", gzip.compress(plain)), ("deflate", zlib.compress(plain)),
                           ("deflate", zlib.compress(plain)[2:-4])):  # raw DEFLATE, as some clients send it
        status, answer, _ = await stand.post(body, {"BIT_KKT_TOKEN": stand.token, "Content-Encoding": encoding,
                                                    "BIT_ORDER_ID": f"enc-{len(body)}"})
        assert status == 200 and "success" in answer[0], (encoding, answer)
    assert len(stand.receipts()) == 3
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")  # 64 MB of spaces in 65 KB
    for encoding, body, code, expected in (("br", plain, 415, "content_encoding"), ("gzip", b"not gzip", 400,
                                           "content_encoding"), ("gzip", bomb, 413, "body_too_large"),
                                           ("gzip, gzip", plain, 415, "content_encoding")):
        status, answer, _ = await stand.post(body, {"BIT_KKT_TOKEN": stand.token, "Content-Encoding": encoding})
        assert (status, answer["errorCode"]) == (code, expected) and answer["errorRu"] and answer["errorEn"]
    assert len(stand.receipts()) == 3


async def test_cash_beyond_the_registers_bcd_is_refused_before_the_register(stand):
    packet = receipt_packet()
    packet[0]["data"]["payments"]["cash_1031"] = 2147483648
    status, answer, _ = await stand.post(packet, {"BIT_KKT_TOKEN": stand.token})
    assert answer["result"] is False and answer["fields"][0]["path"] == "[0].data.payments.cash_1031"
    assert answer["fields"][0]["code"] == "range" and "99999999.99" in answer["errorEn"]
    assert stand.receipts() == [] and not stand.emulators[0].status()["receipt_open"]
    await assert_receipt_still_works(stand)


async def test_an_atol_bcd_overflow_is_a_device_error_and_leaves_no_receipt_open(tmp_path):
    """Below the request checks (a caller of the adapter that skipped them): every command of the receipt is
    built before the first is sent, so the overflow is found while nothing is open on the register."""
    emulator = AtolEmulator(state_path=tmp_path / "fn.json", journal_path=tmp_path / "j.jsonl", fsync=False)
    register = AtolRegister.tcp(*await emulator.serve_tcp("127.0.0.1", 0))
    try:
        await register.connect()
        with pytest.raises(DeviceError) as info:
            await register.fiscalize(receipt(1000, cash=214748364800))  # 2 147 483 648.00 ₽
        assert info.value.code == "bad_value" and "BCD" in info.value.en and not info.value.retryable
        assert not (await register.status()).receipt_open
        assert (await register.fiscalize(receipt(1000))).total == 1000
    finally:
        await register.close()
        await emulator.close()


async def test_mercury_refuses_a_payment_beyond_any_register(tmp_path):
    stand = await make_stand(tmp_path, registers=0, mercury=True)
    try:
        packet = receipt_packet()
        packet[0]["data"]["payments"]["cash_1031"] = 2147483648
        status, answer, _ = await stand.post(packet, {"BIT_KKT_TOKEN": stand.token})
        assert answer["fields"][0]["code"] == "range"
        journal = tmp_path / "mercury.jsonl"
        assert not journal.exists() or [r for r in read_journal(journal) if r["doc"] == "receipt"] == []
    finally:
        await close_stand(stand)


@pytest.mark.parametrize("value", ['"1_000"', '"١٠٠٠"', '"１０"', '"1e5000"', '" 1 0 "', '"0x10"', '"1.5.0"'])
async def test_number_spellings_outside_the_grammar_are_refused(stand, value):
    status, answer, _ = await stand.post(packet_bytes().replace(b'"price_1079": 11.0', b'"price_1079": ' +
                                                                value.encode()), {"BIT_KKT_TOKEN": stand.token})
    assert answer["result"] is False and answer["fields"][0]["path"] == "[0].data.purchases[0].price_1079"
    assert answer["fields"][0]["code"] == "money_format"
    assert stand.receipts() == []


async def test_tolerated_number_spellings_still_print(stand):
    """bit-api.md §10: PHP sends numbers as strings; a decimal comma and grouped thousands are read too."""
    packet = receipt_packet(price=1100.0)
    item = packet[0]["data"]["purchases"][0]
    item.update(price_1079="1 100,00", qty_1023="1", tax_1199="6", paymentFormCode_1214="4")
    packet[0]["data"]["payments"]["cash_1031"] = "1100.00"
    packet[0]["showMode"] = "4"
    status, answer, _ = await stand.post(packet, {"BIT_KKT_TOKEN": stand.token})
    assert "success" in answer[0], answer
    assert stand.receipts()[0]["total"] == 110000


async def test_a_command_type_with_spaces_is_refused(stand):
    packet = receipt_packet()
    packet[0]["type"] = " kktReceiptFiscalization "
    status, answer, _ = await stand.post(packet, {"BIT_KKT_TOKEN": stand.token})
    assert answer["fields"][0] == {**answer["fields"][0], "path": "[0].type", "code": "unknown_command"}
    assert stand.receipts() == []


async def test_each_problem_appears_once_in_each_text(stand):
    packet = receipt_packet()
    packet[0]["data"]["purchases"][0].update(price_1079="дорого", tax_1199="1_0")
    status, answer, _ = await stand.post(packet, {"BIT_KKT_TOKEN": stand.token})
    paths = [field["path"] for field in answer["fields"]]
    assert paths == ["[0].data.purchases[0].price_1079", "[0].data.purchases[0].tax_1199"]
    for path in paths:
        assert answer["error"].count(path) == answer["errorRu"].count(path) == answer["errorEn"].count(path) == 1
    assert "получено" in answer["errorRu"] and "got" not in answer["errorRu"]
    assert "got" in answer["errorEn"] and "получено" not in answer["errorEn"]
    ru = answer["fields"][1]["ru"]
    assert answer["error"].count(ru) == 1  # no problem is read twice


# --- slow and broken clients ---------------------------------------------------------------------------------


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection; fails if it stays open longer than `seconds`."""
    return await asyncio.wait_for(reader.read(-1), seconds)


async def test_half_sent_headers_are_dropped(quick):
    connections = []
    for _ in range(5):
        reader, writer = await asyncio.open_connection(*address(quick))
        writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nBIT_KK")
        connections.append((reader, writer))
    idle_reader, idle_writer = await asyncio.open_connection(*address(quick))  # says nothing at all
    connections.append((idle_reader, idle_writer))
    for reader, writer in connections:
        assert await closed_within(reader, 10) == b""  # header_timeout is 0.5 s; 10 s is only the test's patience
        writer.close()
    await assert_receipt_still_works(quick)


async def test_half_sent_body_is_answered_408_and_dropped(quick):
    reader, writer = await asyncio.open_connection(*address(quick))
    body = packet_bytes()
    writer.write(request(headers=f"BIT_KKT_TOKEN: {quick.token}\r\n".encode(), body=body)[:-20])
    answer = await closed_within(reader, 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"body_timeout" in answer
    assert quick.receipts() == []
    await assert_receipt_still_works(quick)


async def test_an_idle_keep_alive_connection_is_dropped(quick):
    reader, writer = await asyncio.open_connection(*address(quick))
    writer.write(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    assert await closed_within(reader, 10) == b""  # the next request did not come within header_timeout
    writer.close()


async def test_a_client_gone_mid_body_is_one_log_line(quick, caplog):
    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        reader, writer = await asyncio.open_connection(*address(quick))
        writer.write(request(headers=f"BIT_KKT_TOKEN: {quick.token}\r\n".encode(), body=packet_bytes())[:-40])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.transport.abort()
    await asyncio.sleep(0.3)
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 20 and all(r.exc_info is None for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await assert_receipt_still_works(quick)


async def test_connections_beyond_the_cap_are_answered_503(quick):
    held = [await asyncio.open_connection(*address(quick)) for _ in range(8)]  # max_connections = 8
    listener = quick.driver._listener
    for _ in range(500):  # the server side accepts them in its own time; wait for it, not for a fixed while
        if listener.open >= 8:
            break
        await asyncio.sleep(0.01)
    assert listener.open == 8
    status, _, body = await exchange(quick, request("/status", method="GET"))
    assert status == 503 and json.loads(body)["errorCode"] == "busy"
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.1)
    await assert_receipt_still_works(quick)


async def test_malformed_http_is_a_short_answer_and_no_traceback(quick, caplog):
    caplog.set_level(logging.DEBUG)
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, b"GET / HTTP/9.9\r\n\r\n",
                    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde",
                    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"):
        reader, writer = await asyncio.open_connection(*address(quick))
        writer.write(garbage)
        answer = await closed_within(reader, 10)
        writer.close()
        assert answer == b"" or answer[:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4"), answer[:100]
    assert all(r.exc_info is None for r in caplog.records), [r.getMessage() for r in caplog.records if r.exc_info]
    await assert_receipt_still_works(quick)


# --- "режим извне" -------------------------------------------------------------------------------------------


def outside_address() -> str | None:
    """This machine's address on a network interface (not loopback): connecting to it makes a non-local peer."""
    for target in ("198.51.100.1", "10.255.255.254", "192.168.255.254"):  # a route is enough: UDP sends nothing
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((target, 9))
            address = probe.getsockname()[0]
        except OSError:
            continue
        finally:
            probe.close()
        if not address.startswith("127.") and address != "0.0.0.0":
            return address
    return None


@pytest.fixture
async def outside(tmp_path):
    where = outside_address()
    if where is None:
        pytest.skip("this machine has no network interface besides loopback")
    stand = await make_stand(tmp_path, settings={"listen": "0.0.0.0:0", "allow_external": True,
                                                  "tls_cert": str(TLS / "cert.pem"), "tls_key": str(TLS / "key.pem")})
    port = int(stand.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(TLS / "cert.pem"))
    context.check_hostname = False  # the test certificate names localhost; the outside address is this machine's
    yield stand, f"https://{where}:{port}", context
    await close_stand(stand)


async def test_outside_requests_need_tls_and_a_token_and_wrong_tokens_are_slowed(outside):
    stand, url, context = outside
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async def post(token: str | None, order: str) -> tuple[int, dict, dict]:
            headers = {"BIT_ORDER_ID": order, "Origin": ORIGIN, **({"BIT_KKT_TOKEN": token} if token else {})}
            async with session.post(url, data=json.dumps(receipt_packet()), headers=headers) as response:
                return response.status, await response.json(content_type=None), dict(response.headers)

        status, answer, _ = await post(None, "no-token")  # an allowed origin, but from outside: the token is due
        assert answer["fields"][0]["code"] == "token_required"
        status, answer, _ = await post(stand.token, "right")
        assert "success" in answer[0]
        wrong = "0" * 32
        for attempt in range(5):
            status, answer, _ = await post(wrong, f"w{attempt}")
            assert status == 200 and answer["fields"][0]["code"] == "unknown_token"
        status, answer, headers = await post(stand.token, "locked")  # even the right token waits now
        assert status == 429 and answer["errorCode"] == "too_many_wrong_tokens" and int(headers["Retry-After"]) >= 1
        await asyncio.sleep(1.1)
        status, answer, _ = await post(stand.token, "after-wait")
        assert status == 200 and "success" in answer[0]
    assert len(stand.receipts()) == 2
    reader, writer = await asyncio.open_connection(url.split("//")[1].rsplit(":", 1)[0], int(url.rsplit(":", 1)[1]))
    writer.write(request("/status", method="GET"))  # plain HTTP to the TLS port gets nothing readable
    assert b"token" not in await closed_within(reader, 20)
    writer.close()


async def test_a_local_page_needs_the_token_too_in_external_mode(outside):
    stand, _, context = outside
    local = stand.url.replace("0.0.0.0", "localhost")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.post(local, data=json.dumps(receipt_packet()), headers={"Origin": ORIGIN}) as response:
            answer = await response.json(content_type=None)
    assert answer["fields"][0]["code"] == "token_required" and stand.receipts() == []


async def test_tls_serves_https_and_drops_a_silent_handshake(tmp_path):
    stand = await make_stand(tmp_path, settings={"tls_cert": str(TLS / "cert.pem"), "tls_key": str(TLS / "key.pem"),
                                                 "header_timeout": 0.5})
    try:
        assert stand.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(TLS / "cert.pem"))  # the certificate names 127.0.0.1
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            async with session.post(stand.url, data=json.dumps(receipt_packet()),
                                    headers={"BIT_KKT_TOKEN": stand.token}) as response:
                assert "success" in (await response.json(content_type=None))[0]
            async with session.get(stand.url + "/status") as response:
                assert response.status == 200 and response.headers["X-Frame-Options"] == "DENY"
        reader, writer = await asyncio.open_connection(*address(stand))  # TCP, and then not a word of TLS
        assert await closed_within(reader, 10) == b""
        writer.close()
        assert len(stand.receipts()) == 1
    finally:
        await close_stand(stand)
