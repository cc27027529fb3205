"""Byte links to devices: TCP and serial ports, both async, both reconnectable.

A transport moves bytes and nothing else: no framing, no retries beyond opening the link. `read` returns
what has arrived (at least one byte) or b"" when the timeout passes; a closed or broken link raises
LinkError. Serial reads use the event loop's reader on POSIX (ptys included) and a worker thread elsewhere,
so the loop never blocks on a port.
"""

from __future__ import annotations

import abc
import asyncio
import os
import sys

from .errors import LinkError, device_error

__all__ = ["SerialTransport", "TcpTransport", "Transport", "parse_address"]


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `host`, `[::1]:5555` → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


class Transport(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def read(self, timeout: float) -> bytes: ...

    @property
    @abc.abstractmethod
    def is_open(self) -> bool: ...

    @abc.abstractmethod
    def describe(self) -> str: ...

    async def drain_input(self) -> None:
        """Drop whatever stale bytes are waiting (after a reconnect or a timeout)."""
        while self.is_open and await self.read(0):
            pass


def _link_down(where: str, exc: BaseException | None = None) -> LinkError:
    detail = f"{where}: {exc}" if exc else where
    error = device_error("link", device_text=detail)
    assert isinstance(error, LinkError)
    return error


class _Inbox:
    """Bytes that arrived, and one waiter to wake: cheaper than a StreamReader plus wait_for per read."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.error: LinkError | None = None
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        self._wake()

    def fail(self, error: LinkError) -> None:
        self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self, timeout: float) -> bytes:
        if not self.data and self.error is None and timeout > 0:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, self._wake)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self.data:
            chunk = bytes(self.data)
            self.data.clear()
            return chunk
        if self.error is not None:
            raise self.error
        return b""


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, inbox: _Inbox, name: str) -> None:
        self.inbox = inbox
        self.name = name

    def data_received(self, data: bytes) -> None:
        self.inbox.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inbox.fail(_link_down(f"{self.name} closed the connection", exc))


class TcpTransport(Transport):
    def __init__(self, host: str, port: int, *, connect_timeout: float = 3.0) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._transport: asyncio.Transport | None = None
        self._inbox = _Inbox()

    def describe(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing() and self._inbox.error is None

    async def open(self) -> None:
        await self.close()
        inbox = self._inbox = _Inbox()
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _TcpProtocol(inbox, self.describe()), self.host, self.port),
                self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise _link_down(f"cannot connect to {self.describe()}", exc) from None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:  # the other side went away the moment it answered (a register losing power)
                transport.close()
                raise _link_down(f"{self.describe()} closed the connection at once", exc) from None
        self._transport = transport  # type: ignore[assignment]

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
            await asyncio.sleep(0)  # let connection_lost run

    async def write(self, data: bytes) -> None:
        if not self.is_open:
            raise self._inbox.error or _link_down(f"{self.describe()} is not open")
        assert self._transport is not None
        self._transport.write(data)

    async def read(self, timeout: float) -> bytes:
        if self._transport is None:
            raise _link_down(f"{self.describe()} is not open")
        return await self._inbox.take(timeout)


class SerialTransport(Transport):
    """A serial port (8N1) through pyserial; `baudrate` may be changed between opens (auto-probe)."""

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self.port = port
        self.baudrate = baudrate
        self._serial = None  # serial.Serial
        self._inbox = _Inbox()

    def describe(self) -> str:
        return f"serial://{self.port}@{self.baudrate}"

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    async def open(self) -> None:
        await self.close()
        try:
            import serial  # pyserial
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise _link_down("pyserial is not installed", exc) from None
        try:
            self._serial = serial.Serial(self.port, self.baudrate, bytesize=8, parity="N", stopbits=1,
                                         timeout=0, write_timeout=2, exclusive=True if os.name == "posix" else None)
        except (OSError, ValueError, serial.SerialException) as exc:
            self._serial = None
            raise _link_down(f"cannot open {self.describe()}", exc) from None
        self._inbox = _Inbox()
        if sys.platform != "win32":
            asyncio.get_running_loop().add_reader(self._serial.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        assert self._serial is not None
        try:
            chunk = os.read(self._serial.fileno(), 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(exc)
            return
        if chunk:
            self._inbox.feed(chunk)
        else:
            self._fail(None)

    def _fail(self, exc: OSError | None) -> None:
        if self._serial is not None and sys.platform != "win32":
            asyncio.get_running_loop().remove_reader(self._serial.fileno())
        self._inbox.fail(_link_down(f"{self.describe()} went away", exc))

    async def close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            if sys.platform != "win32":
                try:
                    asyncio.get_running_loop().remove_reader(port.fileno())
                except (ValueError, OSError):
                    pass
            port.close()

    async def write(self, data: bytes) -> None:
        if self._serial is None:
            raise _link_down(f"{self.describe()} is not open")
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                await asyncio.to_thread(self._serial.write, data)
            else:
                view = memoryview(data)
                while view:
                    try:
                        written = os.write(self._serial.fileno(), view)
                    except BlockingIOError:
                        await asyncio.sleep(0.001)
                        continue
                    view = view[written:]
        except OSError as exc:
            await self.close()
            raise _link_down(f"write to {self.describe()}", exc) from None

    async def read(self, timeout: float) -> bytes:
        if self._serial is None:
            raise self._inbox.error or _link_down(f"{self.describe()} is not open")
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            self._serial.timeout = timeout
            return await asyncio.to_thread(self._serial.read, 4096)
        try:
            return await self._inbox.take(timeout)
        except LinkError:
            await self.close()
            raise
