"""The driver's socket: TLS, how many clients at once, and how long and how much a client may send.

Rules that hold here, around aiohttp (which parses HTTP and knows none of them):
- a connection has `header_timeout` seconds to deliver a complete request line and headers, counted from the
  moment it connects or from the previous answer on it; a TLS handshake has the same time;
- then `body_timeout` seconds for the whole body (`read_body`), and the same again to take the answer;
- a body is at most MAX_BODY bytes, after decoding its Content-Encoding (gzip or deflate; any other is refused);
- at most `max_connections` connections are open; one more is answered 503 and closed at once;
- a client that is too slow or goes away is one log line naming it, never a traceback; so is a request aiohttp
  cannot parse. A traceback in the log means a bug in kktbridge.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import zlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..fiscal import shown

__all__ = ["MAX_BODY", "BodyRefused", "ClientGone", "Listener", "ServerLog", "read_body", "tls_context"]

MAX_BODY = 2 * 1024 * 1024
log = logging.getLogger("kktbridge.driver")


@dataclass
class BodyRefused(Exception):
    """A body that cannot be taken: the HTTP status to answer and a text in both languages."""

    status: int
    code: str
    ru: str
    en: str


class ClientGone(Exception):
    """The client closed the connection before its request was in."""


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from PEM files: TLS 1.2 or newer, the library's default ciphers."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class _Connection(asyncio.Protocol):
    """One accepted connection: counts itself, keeps the header deadline, and hands everything to aiohttp."""

    def __init__(self, listener: "Listener", inner: asyncio.Protocol) -> None:
        self.listener = listener
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.made = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        listener = self.listener
        if listener.open >= listener.max_connections:
            listener.refused += 1
            if listener.refused == 1 or listener.refused % 100 == 0:
                log.warning("more than %d connections at once: refused %s (%d refused so far)",
                            listener.max_connections, _peer(transport), listener.refused)
            transport.write(_BUSY)  # type: ignore[attr-defined]
            transport.close()
            return
        self.made = True
        listener.open += 1
        listener.connections[self.inner] = self
        self.arm()
        self.inner.connection_made(transport)

    def arm(self) -> None:
        """Start the time the client has to send its next request line and headers."""
        self.disarm()
        self.timer = asyncio.get_running_loop().call_later(self.listener.header_timeout, self._too_slow)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _too_slow(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            log.info("closed the connection of %s: no complete request in %g s", _peer(self.transport),
                     self.listener.header_timeout)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        if self.made:
            self.made = False
            self.listener.open -= 1
            self.listener.connections.pop(self.inner, None)
            self.inner.connection_lost(exc)
        self.transport = None


_BUSY_BODY = ('{"result":false,"error":"драйвер занят: слишком много соединений, повторите позже / the driver is '
              'busy: too many connections, try again later","errorCode":"busy","retryable":true}').encode()
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return shown(f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer), 60)


class Listener:
    """The listening socket of one driver, in front of an aiohttp low-level server."""

    def __init__(self, server: web.Server, *, header_timeout: float, max_connections: int) -> None:
        self.server = server
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self.connections: dict[Any, _Connection] = {}
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int, context: ssl.SSLContext | None = None) -> int:
        """Listen; returns the port (the one the system picked for port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self, self.server()), host, port, ssl=context,
                                                ssl_handshake_timeout=self.header_timeout if context else None,
                                                backlog=min(self.max_connections, 1024))
        return self._server.sockets[0].getsockname()[1]

    def request_started(self, protocol: Any) -> None:
        """A request's headers are in: its connection's header deadline stops."""
        connection = self.connections.get(protocol)
        if connection is not None:
            connection.disarm()

    def request_done(self, protocol: Any) -> None:
        """The answer is out: the next request on the connection has `header_timeout` again."""
        connection = self.connections.get(protocol)
        if connection is not None and connection.transport is not None:
            connection.arm()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def read_body(request: web.BaseRequest, timeout: float, limit: int = MAX_BODY) -> bytes:
    """The request's body within `timeout` seconds, decoded from its Content-Encoding, at most `limit` bytes;
    BodyRefused says why not (with the status to answer), ClientGone that the client left."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise BodyRefused(415, "content_encoding", f"Content-Encoding «{shown(encoding)}» не поддерживается: "
                          "пришлите тело без сжатия, в gzip или deflate",
                          f"Content-Encoding '{shown(encoding)}' is not supported: send the body uncompressed, as "
                          "gzip or as deflate")
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    decoder = _Decoder(encoding, limit)
    received = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    break
                received += len(chunk)
                if received > limit:
                    raise _too_large(limit)
                decoder.feed(chunk)
    except TimeoutError:
        log.info("%s took more than %g s to send its body (%d bytes received); answered 408",
                 shown(request.remote or "?"), timeout, received)
        raise BodyRefused(408, "body_timeout", f"тело запроса не пришло за {timeout:g} с",
                          f"the request body did not arrive within {timeout:g} s") from None
    except ConnectionError:
        log.info("%s went away while sending its body (%d of %s bytes)", shown(request.remote or "?"), received,
                 request.content_length if request.content_length is not None else "?")
        raise ClientGone() from None
    except BodyRefused:
        raise
    except Exception as exc:  # a broken chunked encoding and the like: aiohttp's payload errors
        raise BodyRefused(400, "body_broken", f"тело запроса передано с ошибкой: {shown(str(exc), 80)}",
                          f"the request body is malformed: {shown(str(exc), 80)}") from None
    return decoder.finish()


def _too_large(limit: int) -> BodyRefused:
    return BodyRefused(413, "body_too_large", f"тело запроса больше {limit // 1024 // 1024} МБ",
                       f"the request body is larger than {limit // 1024 // 1024} MB")


class _Decoder:
    """Content-Encoding undone as the body arrives, never past `limit` bytes of output (no zip bomb gets far)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.compressed = encoding in ("gzip", "x-gzip", "deflate")
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.raw_deflate = False
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self.inflater = zlib.decompressobj(wbits) if self.compressed else None
        self.encoding = encoding

    def feed(self, data: bytes) -> None:
        if self.inflater is None:
            self.parts.append(data)
            return
        try:
            out = self.inflater.decompress(data, self.limit + 1 - self.size)
        except zlib.error:
            if self.encoding == "deflate" and not self.size and not self.raw_deflate:
                self.raw_deflate = True  # some clients send raw DEFLATE without the zlib header
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                self.feed(data)
                return
            raise self._broken() from None
        self._keep(out)
        if self.inflater.unconsumed_tail:
            raise _too_large(self.limit)

    def _keep(self, out: bytes) -> None:
        self.size += len(out)
        if self.size > self.limit:
            raise _too_large(self.limit)
        self.parts.append(out)

    def _broken(self) -> BodyRefused:
        return BodyRefused(400, "content_encoding", f"тело запроса не распаковывается как {self.encoding}",
                           f"the request body cannot be decompressed as {self.encoding}")

    def finish(self) -> bytes:
        if self.inflater is not None:
            try:
                self._keep(self.inflater.flush())
            except zlib.error:
                raise self._broken() from None
            if not self.inflater.eof:
                raise self._broken()
        return b"".join(self.parts)


class ServerLog:
    """What aiohttp's server logs, through kktbridge's logger: a request aiohttp cannot parse, or a client that
    broke the connection, is one line naming the client; anything else keeps its traceback (it is a bug)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def exception(self, msg: str, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, (HttpProcessingError, ConnectionError, TimeoutError)):
            self.logger.info(msg + ": %s", *[shown(str(a), 60) for a in args], shown(str(exc), 160))
        else:
            self.logger.error(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        self.logger.debug(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)
