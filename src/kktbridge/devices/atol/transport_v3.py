"""ATOL transport protocol v3: 0xFE framing and the task-buffer messages carried inside it.

Rules of this file:
- Everything that defines v3 bytes on the wire lives here, for both directions, so the driver and the
  emulator share one codec: frames (`encode_frame`, `FrameDecoder`), host requests (C1-C5, `Add`...
  `parse_request`) and device replies (A1-B4, `Reply`, `parse_reply`).
- No I/O and no clocks. The decoder turns any byte stream into events and never raises on bad input:
  a corrupted frame is an event (`BadCrc`, `BadEscape`, `Truncated`) carrying the packet id, so the host
  can answer with an empty packet of that id (`retransmit_request`), as atol4j does.

Frame: `FE | LEN0 | LEN1 | ID | DATA(escaped) | CRC(escaped)`, LEN0 = len & 0x7F, LEN1 = len >> 7 (len is the
unescaped DATA length, at most 14 bits). Escaping inside DATA and CRC: FE -> FD EE, FD -> FD ED. CRC-8 with
polynomial 0x31, init 0xFF, MSB first, no reflection, no final XOR, over ID followed by the unescaped DATA.
Since FE never occurs escaped, every FE starts a frame: the decoder resynchronises on it.
(Source: kurbatov/atol4j transport/protocol/v3, spec/devices.md §1.3.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from functools import partial
from typing import TypeAlias

__all__ = [
    "ASYNC_ID",
    "MAX_DATA_LEN",
    "MAX_ID",
    "Abort",
    "Ack",
    "AckAdd",
    "Add",
    "AddFlags",
    "BadCrc",
    "BadEscape",
    "BadPacketId",
    "BufferCommand",
    "CorruptFrame",
    "Event",
    "Frame",
    "FrameDecoder",
    "FrameTooLong",
    "IdCounter",
    "MalformedMessage",
    "Reply",
    "Req",
    "Request",
    "TaskStatus",
    "Truncated",
    "UnknownCommand",
    "UnknownStatus",
    "V3Error",
    "crc8",
    "encode_frame",
    "frame_crc",
    "parse_reply",
    "parse_request",
    "retransmit_request",
]

STX = 0xFE
ESC = 0xFD
TSTX = 0xEE
TESC = 0xED

MAX_ID = 0xDF  # host packet ids and atol4j task ids cycle 0x00..0xDF
ASYNC_ID = 0xF0  # packet id of results the device sends on its own
MAX_DATA_LEN = 0x3FFF  # LEN0 and LEN1 hold 7 bits each

_CRC_INIT = 0xFF
_CRC_POLY = 0x31


# --- errors (raised only by encoders and message parsers; the frame decoder reports events instead) ---


class V3Error(ValueError):
    """Bytes or values that do not make a valid ATOL v3 message."""


class FrameTooLong(V3Error):
    def __init__(self, length: int) -> None:
        super().__init__(f"v3 frame data is {length} bytes, the limit is {MAX_DATA_LEN}")
        self.length = length


class BadPacketId(V3Error):
    def __init__(self, packet_id: int) -> None:
        super().__init__(f"packet id {packet_id!r} is not a byte other than 0xFE")
        self.packet_id = packet_id


class MalformedMessage(V3Error):
    """A buffer message whose length or fields do not fit its code."""


class UnknownCommand(V3Error):
    def __init__(self, code: int) -> None:
        super().__init__(f"unknown buffer command 0x{code:02X}")
        self.code = code


class UnknownStatus(V3Error):
    def __init__(self, code: int) -> None:
        super().__init__(f"unknown task status 0x{code:02X}")
        self.code = code


# --- CRC ---


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)  # a tuple of ints indexes about twice as fast as bytes in the loop below


_CRC_TABLE = _crc_table()


def crc8(data: bytes | bytearray | memoryview, crc: int = _CRC_INIT) -> int:
    """CRC-8 (poly 0x31, MSB first, no reflection, no final XOR) of `data`, continuing from `crc`."""
    table = _CRC_TABLE
    for byte in data:
        crc = table[crc ^ byte]
    return crc


def frame_crc(packet_id: int, data: bytes | bytearray | memoryview) -> int:
    """The CRC a frame carries: over the packet id followed by the unescaped data."""
    return crc8(data, _CRC_TABLE[_CRC_INIT ^ packet_id])


# --- framing ---


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\xfd", b"\xfd\xed").replace(b"\xfe", b"\xfd\xee")


def _unescape(raw: bytes) -> bytes:
    # Valid only for input whose every FD is followed by ED or EE, which the decoder has checked.
    return raw.replace(b"\xfd\xee", b"\xfe").replace(b"\xfd\xed", b"\xfd")


def encode_frame(packet_id: int, data: bytes | bytearray | memoryview = b"") -> bytes:
    """One v3 frame. Empty `data` is the request to retransmit packet `packet_id`."""
    if not isinstance(packet_id, int) or not 0 <= packet_id <= 0xFF or packet_id == STX:
        raise BadPacketId(packet_id)
    data = bytes(data)
    n = len(data)
    if n > MAX_DATA_LEN:
        raise FrameTooLong(n)
    crc = frame_crc(packet_id, data)
    return bytes((STX, n & 0x7F, n >> 7, packet_id)) + _escape(data + bytes((crc,)))


def retransmit_request(packet_id: int) -> bytes:
    """The empty packet that asks the other side to send packet `packet_id` again."""
    return encode_frame(packet_id, b"")


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose CRC matched."""

    packet_id: int
    data: bytes

    @property
    def is_retransmit_request(self) -> bool:
        return not self.data

    @property
    def is_async(self) -> bool:
        return self.packet_id == ASYNC_ID


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    """A frame that started with a readable header but cannot be trusted; `raw` is what arrived of it."""

    packet_id: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class BadCrc(CorruptFrame):
    data: bytes
    received: int
    expected: int


@dataclass(frozen=True, slots=True)
class BadEscape(CorruptFrame):
    """FD followed by something other than ED or EE."""


@dataclass(frozen=True, slots=True)
class Truncated(CorruptFrame):
    """A new FE arrived before the frame had all its bytes."""


Event: TypeAlias = Frame | CorruptFrame


class FrameDecoder:
    """Incremental frame decoder: `feed` any chunk, get the events completed by it.

    Bytes before an FE are discarded (counted in `discarded`). A partial frame waits for more bytes; the
    position reached inside it is remembered, so feeding a long frame in small pieces stays linear.
    """

    __slots__ = ("_buf", "_resume", "discarded")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._resume: tuple[int, int] | None = None  # (offset from frame start, unescaped bytes still needed)
        self.discarded = 0

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial frame (e.g. after the caller's inter-byte timeout)."""
        self.discarded += len(self._buf)
        self._buf.clear()
        self._resume = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        buf = self._buf
        buf += data
        events: list[Event] = []
        end = len(buf)
        pos = 0
        while pos < end:
            start = buf.find(STX, pos)
            if start < 0:
                self.discarded += end - pos
                pos = end
                break
            self.discarded += start - pos
            nxt = self._parse(buf, start, end, events)
            if nxt < 0:
                pos = start
                break
            pos = nxt
        if pos:
            del buf[:pos]
        return events

    def _parse(self, buf: bytearray, start: int, end: int, events: list[Event]) -> int:
        """Parse the frame at `start`; return where to continue, or -1 when more bytes are needed."""
        resume, self._resume = self._resume, None
        body = start + 4
        if end < body:
            fe = buf.find(STX, start + 1, end)
            if fe >= 0:
                self.discarded += fe - start
                return fe
            return -1
        len0, len1, packet_id = buf[start + 1], buf[start + 2], buf[start + 3]
        if len0 > 0x7F or len1 > 0x7F or packet_id == STX:
            self.discarded += 1  # not a frame header: this FE was noise
            return start + 1
        if resume is not None:
            p, need = start + resume[0], resume[1]
        else:
            p, need = body, (len0 | len1 << 7) + 1  # data plus the CRC byte
        return self._walk(buf, start, p, need, end, packet_id, events)

    def _walk(
        self, buf: bytearray, start: int, p: int, need: int, end: int, packet_id: int, events: list[Event]
    ) -> int:
        """Consume escaped body bytes from `p` until `need` unescaped bytes are read."""
        limit = buf.find(STX, p, end)
        stop = end if limit < 0 else limit
        while need:
            window = min(p + need, stop)
            j = buf.find(ESC, p, window)
            if j < 0:
                need -= window - p
                p = window
                if need:
                    return self._short(buf, start, p, need, limit, packet_id, events)
                break
            need -= j - p
            if j + 1 >= stop:
                return self._short(buf, start, j, need, limit, packet_id, events)
            if buf[j + 1] not in (TSTX, TESC):
                events.append(BadEscape(packet_id, bytes(buf[start : j + 2])))
                return j + 1
            need -= 1
            p = j + 2
        self._emit(buf, start, p, packet_id, events)
        return p

    def _short(
        self, buf: bytearray, start: int, p: int, need: int, limit: int, packet_id: int, events: list[Event]
    ) -> int:
        if limit >= 0:
            events.append(Truncated(packet_id, bytes(buf[start:limit])))
            return limit
        self._resume = (p - start, need)
        return -1

    @staticmethod
    def _emit(buf: bytearray, start: int, end: int, packet_id: int, events: list[Event]) -> None:
        raw = bytes(buf[start:end])
        body = _unescape(raw[4:])
        data, received = body[:-1], body[-1]
        expected = frame_crc(packet_id, data)
        if received == expected:
            events.append(Frame(packet_id, data))
        else:
            events.append(BadCrc(packet_id, raw, data, received, expected))


class IdCounter:
    """Cycling ids 0..`last` (packet ids and task ids both use 0x00..0xDF)."""

    __slots__ = ("_next", "last")

    def __init__(self, start: int = 0, last: int = MAX_ID) -> None:
        if not 0 <= start <= last <= 0xFF:
            raise ValueError(f"id range {start}..{last} is not inside one byte")
        self._next = start
        self.last = last

    def __iter__(self) -> IdCounter:
        return self

    def __next__(self) -> int:
        value = self._next
        self._next = 0 if value >= self.last else value + 1
        return value

    def peek(self) -> int:
        return self._next


# --- the task buffer: host requests ---


class BufferCommand(IntEnum):
    ADD = 0xC1
    ACK = 0xC2
    REQ = 0xC3
    ABORT = 0xC4
    ACK_ADD = 0xC5


class AddFlags(IntFlag):
    NONE = 0
    NEED_RESULT = 0x01
    IGNORE_ERR = 0x02
    ASYNC = 0x04


def _byte(name: str, value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise MalformedMessage(f"{name} must be a byte, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Add:
    """C1: put task `task_id` (password, command code and parameters) into the device's buffer."""

    task_id: int
    command: bytes
    flags: AddFlags = AddFlags.NEED_RESULT

    code = BufferCommand.ADD

    def to_bytes(self) -> bytes:
        return bytes((self.code, _byte("flags", self.flags), _byte("task id", self.task_id))) + self.command


@dataclass(frozen=True, slots=True)
class AckAdd:
    """C5: acknowledge the previous result and add task `task_id`, laid out like C1."""

    task_id: int
    command: bytes
    flags: AddFlags = AddFlags.NEED_RESULT

    code = BufferCommand.ACK_ADD

    def to_bytes(self) -> bytes:
        return bytes((self.code, _byte("flags", self.flags), _byte("task id", self.task_id))) + self.command


@dataclass(frozen=True, slots=True)
class Ack:
    """C2: the host has the result of `task_id`; the device may drop it."""

    task_id: int

    code = BufferCommand.ACK

    def to_bytes(self) -> bytes:
        return bytes((self.code, _byte("task id", self.task_id)))


@dataclass(frozen=True, slots=True)
class Req:
    """C3: ask for the state (and result, when ready) of `task_id`."""

    task_id: int

    code = BufferCommand.REQ

    def to_bytes(self) -> bytes:
        return bytes((self.code, _byte("task id", self.task_id)))


@dataclass(frozen=True, slots=True)
class Abort:
    """C4: cancel every task and clear the buffer."""

    code = BufferCommand.ABORT

    def to_bytes(self) -> bytes:
        return bytes((self.code,))


Request: TypeAlias = Add | AckAdd | Ack | Req | Abort


def _parse_add(cls: type[Add] | type[AckAdd], data: bytes) -> Request:
    if len(data) < 3:
        raise MalformedMessage(f"{cls.code.name} needs flags and a task id, got {data.hex(' ').upper()}")
    return cls(task_id=data[2], command=data[3:], flags=AddFlags(data[1]))


def _parse_task(cls: type[Ack] | type[Req], data: bytes) -> Request:
    if len(data) != 2:
        raise MalformedMessage(f"{cls.code.name} is its code and one task id, got {data.hex(' ').upper()}")
    return cls(task_id=data[1])


def _parse_abort(cls: type[Abort], data: bytes) -> Request:
    if len(data) != 1:
        raise MalformedMessage(f"ABORT has no body, got {data.hex(' ').upper()}")
    return cls()


_REQUEST_PARSERS: dict[int, Callable[[bytes], Request]] = {
    BufferCommand.ADD: partial(_parse_add, Add),
    BufferCommand.ACK_ADD: partial(_parse_add, AckAdd),
    BufferCommand.ACK: partial(_parse_task, Ack),
    BufferCommand.REQ: partial(_parse_task, Req),
    BufferCommand.ABORT: partial(_parse_abort, Abort),
}


def parse_request(data: bytes | bytearray | memoryview) -> Request:
    """A host frame's data as a buffer message (the emulator's side)."""
    data = bytes(data)
    if not data:
        raise MalformedMessage("empty data is a retransmit request, not a buffer message")
    parser = _REQUEST_PARSERS.get(data[0])
    if parser is None:
        raise UnknownCommand(data[0])
    return parser(data)


# --- the task buffer: device replies ---


class TaskStatus(IntEnum):
    PENDING = 0xA1
    IN_PROGRESS = 0xA2
    RESULT = 0xA3
    ERROR = 0xA4
    STOPPED = 0xA5
    ASYNC_RESULT = 0xA6
    ASYNC_ERROR = 0xA7
    WAITING = 0xA8
    OVERFLOW = 0xB1
    ALREADY_EXISTS = 0xB2
    NOT_FOUND = 0xB3
    ILLEGAL_VALUE = 0xB4

    @property
    def is_async(self) -> bool:
        return self in (TaskStatus.ASYNC_RESULT, TaskStatus.ASYNC_ERROR)

    @property
    def is_final(self) -> bool:
        """A result the host must acknowledge with C2."""
        return self in _FINAL

    @property
    def is_buffer_error(self) -> bool:
        return self >= TaskStatus.OVERFLOW


_FINAL = frozenset({TaskStatus.RESULT, TaskStatus.ERROR, TaskStatus.ASYNC_RESULT, TaskStatus.ASYNC_ERROR})


@dataclass(frozen=True, slots=True)
class Reply:
    """A device reply: `status`, then for async statuses (A6/A7, sent as packet F0) the task id, then the result."""

    status: TaskStatus
    payload: bytes = b""
    task_id: int | None = None

    def __post_init__(self) -> None:
        if self.status.is_async and self.task_id is None:
            raise MalformedMessage(f"{self.status.name} reply needs a task id")
        if not self.status.is_async and self.task_id is not None:
            raise MalformedMessage(f"{self.status.name} reply carries no task id")

    def to_bytes(self) -> bytes:
        if self.task_id is None:
            return bytes((self.status,)) + self.payload
        return bytes((self.status, _byte("task id", self.task_id))) + self.payload


def parse_reply(data: bytes | bytearray | memoryview) -> Reply:
    """A device frame's data as a task-buffer reply (the host's side)."""
    data = bytes(data)
    if not data:
        raise MalformedMessage("empty data is a retransmit request, not a reply")
    try:
        status = TaskStatus(data[0])
    except ValueError:
        raise UnknownStatus(data[0]) from None
    if not status.is_async:
        return Reply(status, data[1:])
    if len(data) < 2:
        raise MalformedMessage(f"{status.name} reply without a task id")
    return Reply(status, data[2:], data[1])
