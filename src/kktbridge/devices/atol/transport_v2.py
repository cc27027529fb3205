"""ATOL transport protocol v2: STX/ETX/DLE frames inside an ENQ/ACK/EOT exchange, for older registers.

Rules of this file:
- Everything that affects the v2 exchange lives here: the frame codec, the byte tokenizer (`FrameDecoder`),
  the timeouts, and two sans-I/O state machines, `HostExchange` (the driver's side of one command) and
  `DeviceSession` (the register's side, for the emulator). Their transitions are the `_TABLE` dicts.
- The machines never touch a port or a clock. They consume bytes (`receive_data`) and expirations of the one
  timer they asked for (`timeout`), and return what to do: `Send(bytes)`, `StartTimer(name, ms)` (which
  replaces the running timer), `StopTimer()`, and events for the caller. An input the table does not list
  for the current state is ignored: a stray byte on a serial line is noise, not an error.

Frame: `02 | DATA with DLE (10) before every 03 and 10 | 03 | CRC`, CRC = XOR of every byte after STX up to and
including ETX, stuffed DLEs included. (Sources: kurbatov/atol4j transport/protocol/v2, the Delphi driver
dant_AtolFRDevice `sendCommand`/`receiveResult`; spec/devices.md §1.4.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum, auto
from typing import ClassVar, TypeAlias

__all__ = [
    "ENQ_TRIES",
    "FRAME_TRIES",
    "RECEIVE_TRIES",
    "T1",
    "T2",
    "T3",
    "T4",
    "T5",
    "T6",
    "T7",
    "T8",
    "BadChecksum",
    "Control",
    "ControlByte",
    "DeviceSession",
    "DeviceState",
    "ExchangeDone",
    "ExchangeFailed",
    "Failure",
    "Frame",
    "FrameDecoder",
    "FrameStart",
    "HostExchange",
    "HostState",
    "ReplyAbandoned",
    "ReplyFailed",
    "ReplySent",
    "RequestReceived",
    "Send",
    "StartTimer",
    "StateError",
    "StopTimer",
    "V2Error",
    "encode_frame",
    "t5_for",
    "t5_for_request",
    "xor_checksum",
]


class ControlByte(IntEnum):
    STX = 0x02
    ETX = 0x03
    EOT = 0x04
    ENQ = 0x05
    ACK = 0x06
    DLE = 0x10
    NAK = 0x15


STX, ETX, EOT, ENQ, ACK, DLE, NAK = (c.value for c in ControlByte)

# --- timeouts, ms (atol4j Timeout.java; dant uses the same) ---

T1 = 500  # ACK to an ENQ
T2 = 2000  # STX after ACKing the other side's ENQ
T3 = 500  # EOT (or a repeated frame) after ACKing a frame
T4 = 500  # ACK or NAK to a frame
T5 = 10000  # the device's ENQ that starts its reply; default, see t5_for
T6 = 500  # between two bytes of a frame
T7 = 500  # pause after an ENQ collision
T8 = 1000  # published, used by no rule of this module

_T5_BY_COMMAND: dict[int, int] = {
    0x6B: 10000,
    **dict.fromkeys((0x4A, 0x8D, 0x8E, 0xA7), 20000),
    0x5A: 40000,
    0x91: 45000,
    **dict.fromkeys((0xA6, 0xE6, 0xEA, 0xEB), 50000),
    **dict.fromkeys((0xA8, 0xAB), 120000),
}

ENQ_TRIES = 5  # ENQs sent before giving up
FRAME_TRIES = 10  # sends of one frame before giving up
RECEIVE_TRIES = 10  # bad receptions of one frame before giving up


def t5_for(command_code: int) -> int:
    """How long to wait for the device's reply to command `command_code`, in ms."""
    return _T5_BY_COMMAND.get(command_code, T5)


def t5_for_request(data: bytes) -> int:
    """T5 for a request `password(2) + command + params`: the command code is its third byte."""
    return t5_for(data[2]) if len(data) >= 3 else T5


# --- errors ---


class V2Error(ValueError):
    """Misuse of the v2 codec."""


class StateError(V2Error):
    """A machine was asked for something its current state does not allow (h11's LocalProtocolError)."""


# --- frames ---


def xor_checksum(data: bytes | bytearray) -> int:
    """XOR of all bytes, folded as one big integer (much faster than a Python loop over long frames)."""
    width = len(data)
    if not width:
        return 0
    x = int.from_bytes(data, "little")
    while width > 1:
        half = (width + 1) // 2
        x = (x & ((1 << (8 * half)) - 1)) ^ (x >> (8 * half))
        width = half
    return x


def _stuff(data: bytes) -> bytes:
    return data.replace(b"\x10", b"\x10\x10").replace(b"\x03", b"\x10\x03")


def encode_frame(data: bytes | bytearray | memoryview) -> bytes:
    """One v2 frame around `data`."""
    body = _stuff(bytes(data)) + b"\x03"
    return b"\x02" + body + bytes((xor_checksum(body),))


@dataclass(frozen=True, slots=True)
class Control:
    """A control byte outside any frame (ENQ, ACK, NAK or EOT)."""

    byte: ControlByte


@dataclass(frozen=True, slots=True)
class FrameStart:
    """An STX: the bytes that follow belong to a frame until ETX and its checksum."""


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes


@dataclass(frozen=True, slots=True)
class BadChecksum:
    data: bytes
    received: int
    expected: int


Token: TypeAlias = Control | FrameStart | Frame | BadChecksum

_IDLE, _DATA, _ESCAPED, _CHECKSUM = range(4)
_SPECIAL = re.compile(b"[\x03\x10]")
_OUTSIDE = {b: Control(ControlByte(b)) for b in (ENQ, ACK, NAK, EOT)}
_FRAME_START = FrameStart()


class FrameDecoder:
    """Byte-stream tokenizer in h11 style: `receive_data`, then `next_event` until it returns None.

    Outside a frame, ENQ/ACK/NAK/EOT become `Control` tokens and other bytes are discarded (counted). STX opens
    a frame, in which every byte is data: a DLE takes the next byte literally, ETX ends the data, and the byte
    after ETX is the checksum. `reset` drops a partial frame (the caller's T6 expired).
    """

    __slots__ = ("_buf", "_data", "_pos", "_raw", "_state", "discarded")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._state = _IDLE
        self._raw = bytearray()  # everything after STX up to and including ETX, as received
        self._data = bytearray()  # the same, unstuffed, without ETX
        self.discarded = 0

    @property
    def in_frame(self) -> bool:
        return self._state != _IDLE

    def reset(self) -> None:
        self._state = _IDLE
        self._raw.clear()
        self._data.clear()

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def feed(self, data: bytes | bytearray | memoryview) -> list[Token]:
        """`receive_data` then every token it completes."""
        self.receive_data(data)
        tokens = []
        while (token := self.next_event()) is not None:
            tokens.append(token)
        return tokens

    def next_event(self) -> Token | None:
        buf = self._buf
        end = len(buf)
        while self._pos < end:
            token = _STEPS[self._state](self, buf, end)
            if token is not None:
                return token
        return None

    def _step_idle(self, buf: bytearray, end: int) -> Token | None:
        byte = buf[self._pos]
        self._pos += 1
        if byte == STX:
            self._state = _DATA
            return _FRAME_START
        token = _OUTSIDE.get(byte)
        if token is None:
            self.discarded += 1
        return token

    def _step_data(self, buf: bytearray, end: int) -> None:
        pos = self._pos
        match = _SPECIAL.search(buf, pos)
        stop = end if match is None else match.start()
        self._data += buf[pos:stop]
        if match is None:
            self._raw += buf[pos:stop]
            self._pos = stop
            return
        self._raw += buf[pos : stop + 1]
        self._pos = stop + 1
        self._state = _ESCAPED if buf[stop] == DLE else _CHECKSUM

    def _step_escaped(self, buf: bytearray, end: int) -> None:
        byte = buf[self._pos]
        self._pos += 1
        self._raw.append(byte)
        self._data.append(byte)
        self._state = _DATA

    def _step_checksum(self, buf: bytearray, end: int) -> Token:
        received = buf[self._pos]
        self._pos += 1
        expected = xor_checksum(self._raw)
        data = bytes(self._data)
        self.reset()
        if received == expected:
            return Frame(data)
        return BadChecksum(data, received, expected)


_STEPS: dict[int, Callable[[FrameDecoder, bytearray, int], Token | None]] = {
    _IDLE: FrameDecoder._step_idle,
    _DATA: FrameDecoder._step_data,
    _ESCAPED: FrameDecoder._step_escaped,
    _CHECKSUM: FrameDecoder._step_checksum,
}


# --- what the machines ask of their caller, and what they tell it ---


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Start (or restart) the one timer; when it expires, call the machine's `timeout()`."""

    name: str
    ms: int


@dataclass(frozen=True, slots=True)
class StopTimer:
    pass


class Failure(Enum):
    DEVICE_NOT_READY = "no ACK to ENQ"  # host: ENQ_TRIES ENQs unanswered
    FRAME_REJECTED = "frame not acknowledged"  # FRAME_TRIES sends without ACK
    NO_REPLY = "no ENQ from the device within T5"
    REPLY_TIMEOUT = "no STX within T2"
    REPLY_CORRUPT = "frame still corrupt after retries"  # RECEIVE_TRIES bad receptions
    HOST_NOT_READY = "host does not ACK the device's ENQ"  # device: ENQ_TRIES ENQs unanswered


@dataclass(frozen=True, slots=True)
class ExchangeDone:
    reply: bytes


@dataclass(frozen=True, slots=True)
class ExchangeFailed:
    reason: Failure


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """The device has a command to execute; answer it with `DeviceSession.reply`."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ReplySent:
    pass


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    reason: Failure


@dataclass(frozen=True, slots=True)
class ReplyAbandoned:
    """The host sent ENQ while the device offered its reply (a collision): the device yields and drops it."""


Output: TypeAlias = (
    Send
    | StartTimer
    | StopTimer
    | ExchangeDone
    | ExchangeFailed
    | RequestReceived
    | ReplySent
    | ReplyFailed
    | ReplyAbandoned
)


class Input(Enum):
    ENQ = auto()
    ACK = auto()
    NAK = auto()
    EOT = auto()
    FRAME_START = auto()
    FRAME = auto()
    BAD_FRAME = auto()
    TIMEOUT = auto()


_CONTROL_INPUT = {ENQ: Input.ENQ, ACK: Input.ACK, NAK: Input.NAK, EOT: Input.EOT}


def _input_of(token: Token) -> Input:
    if isinstance(token, Control):
        return _CONTROL_INPUT[token.byte]
    if isinstance(token, Frame):
        return Input.FRAME
    if isinstance(token, BadChecksum):
        return Input.BAD_FRAME
    return Input.FRAME_START


Handler: TypeAlias = Callable[..., None]


class _Machine:
    """Dispatch through `_TABLE`, collect outputs, own the tokenizer and the one timer."""

    _TABLE: ClassVar[dict[tuple[Enum, Input], Handler]]
    _RECEIVING: ClassVar[Enum]  # the state in which a frame is arriving (T6 runs between its bytes)
    state: Enum

    def __init__(self) -> None:
        self._decoder = FrameDecoder()
        self._out: list[Output] = []
        self.timer: StartTimer | None = None

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Output]:
        """Bytes from the other side, in any split."""
        self._decoder.receive_data(data)
        while (token := self._decoder.next_event()) is not None:
            self._dispatch(_input_of(token), token)
        if data and self.state is self._RECEIVING and not any(isinstance(o, StartTimer) for o in self._out):
            self._arm("T6", T6)  # another byte of the frame: restart the inter-byte timer
        return self._flush()

    def timeout(self) -> list[Output]:
        """The timer of the last StartTimer expired."""
        if self.timer is None:
            raise StateError(f"no timer is running in state {self.state.name}")
        self.timer = None
        self._decoder.reset()  # a partial frame older than the timer is stale
        self._dispatch(Input.TIMEOUT, None)
        return self._flush()

    def _dispatch(self, what: Input, token: Token | None) -> None:
        handler = self._TABLE.get((self.state, what))
        if handler is not None:
            handler(self, token)

    def _flush(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def _send(self, data: bytes) -> None:
        self._out.append(Send(data))

    def _arm(self, name: str, ms: int) -> None:
        self.timer = StartTimer(name, ms)
        self._out.append(self.timer)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer = None
            self._out.append(StopTimer())


_ENQ_B, _ACK_B, _NAK_B, _EOT_B = bytes((ENQ,)), bytes((ACK,)), bytes((NAK,)), bytes((EOT,))


# --- host side ---


class HostState(Enum):
    READY = auto()  # built, start() not called yet
    AWAIT_ENQ_ACK = auto()  # sent ENQ, T1
    COLLISION_WAIT = auto()  # the device answered ENQ with ENQ, T7
    AWAIT_FRAME_ACK = auto()  # sent the frame, T4
    AWAIT_REPLY_ENQ = auto()  # sent EOT, T5
    AWAIT_STX = auto()  # ACKed the device's ENQ, T2
    RECEIVING = auto()  # inside the reply frame, T6
    AWAIT_EOT = auto()  # ACKed the reply, T3
    DONE = auto()
    FAILED = auto()


class HostExchange(_Machine):
    """The host's side of one v2 command: ENQ/ACK, frame/ACK, EOT, then the device's ENQ, frame and EOT.

    - ENQ is sent up to ENQ_TRIES times, each waiting T1 for ACK; an ENQ from the device instead (a collision)
      pauses T7 before the next try; a NAK just lets T1 run out. Then EOT and DEVICE_NOT_READY.
    - The frame is sent up to FRAME_TRIES times, each waiting T4; NAK or silence resends. Then EOT and
      FRAME_REJECTED. An ENQ after a resend means the device took the frame and its ACK was lost (dant).
    - After EOT the device has T5 (per command) to send ENQ; the host ACKs it, waits T2 for STX, T6 between
      bytes; a good frame gets ACK, a bad one NAK (up to RECEIVE_TRIES). EOT, or T3 of silence, ends it.
    """

    _RECEIVING = HostState.RECEIVING

    def __init__(self, request: bytes | bytearray | memoryview, *, t5: int | None = None) -> None:
        super().__init__()
        self.request = bytes(request)
        self.t5 = t5_for_request(self.request) if t5 is None else t5
        self._frame = encode_frame(self.request)
        self.state = HostState.READY
        self.enq_tries = 0
        self.frame_sends = 0
        self.bad_replies = 0
        self.collisions = 0
        self.reply: bytes | None = None
        self.failure: Failure | None = None

    @property
    def finished(self) -> bool:
        return self.state in (HostState.DONE, HostState.FAILED)

    def start(self) -> list[Output]:
        if self.state is not HostState.READY:
            raise StateError(f"exchange already started (state {self.state.name})")
        self._send_enq(None)
        return self._flush()

    def _send_enq(self, _: Token | None) -> None:
        self.enq_tries += 1
        self._send(_ENQ_B)
        self.state = HostState.AWAIT_ENQ_ACK
        self._arm("T1", T1)

    def _retry_enq(self, _: Token | None) -> None:
        if self.enq_tries >= ENQ_TRIES:
            self._send(_EOT_B)
            self._fail(Failure.DEVICE_NOT_READY)
        else:
            self._send_enq(None)

    def _collision(self, _: Token | None) -> None:
        self.collisions += 1
        self.state = HostState.COLLISION_WAIT
        self._arm("T7", T7)

    def _send_frame(self, _: Token | None) -> None:
        self.frame_sends += 1
        self._send(self._frame)
        self.state = HostState.AWAIT_FRAME_ACK
        self._arm("T4", T4)

    def _resend_frame(self, _: Token | None) -> None:
        if self.frame_sends >= FRAME_TRIES:
            self._send(_EOT_B)
            self._fail(Failure.FRAME_REJECTED)
        else:
            self._send_frame(None)

    def _frame_acked(self, _: Token | None) -> None:
        self._send(_EOT_B)
        self.state = HostState.AWAIT_REPLY_ENQ
        self._arm("T5", self.t5)

    def _enq_while_frame_unacked(self, token: Token | None) -> None:
        if self.frame_sends > 1:
            self._ack_enq(token)

    def _ack_enq(self, _: Token | None) -> None:
        self._send(_ACK_B)
        self.state = HostState.AWAIT_STX
        self._arm("T2", T2)

    def _frame_started(self, _: Token | None) -> None:
        self.state = HostState.RECEIVING
        self._arm("T6", T6)

    def _accept_reply(self, token: Token | None) -> None:
        assert isinstance(token, Frame)
        self.reply = token.data
        self._send(_ACK_B)
        self.state = HostState.AWAIT_EOT
        self._arm("T3", T3)

    def _reject_reply(self, _: Token | None) -> None:
        self.bad_replies += 1
        self._send(_NAK_B)
        if self.bad_replies >= RECEIVE_TRIES:
            self._fail(Failure.REPLY_CORRUPT)
        else:
            self.state = HostState.AWAIT_STX
            self._arm("T2", T2)

    def _finish(self, _: Token | None) -> None:
        assert self.reply is not None
        self.state = HostState.DONE
        self._disarm()
        self._out.append(ExchangeDone(self.reply))

    def _no_reply(self, _: Token | None) -> None:
        self._fail(Failure.NO_REPLY)

    def _no_stx(self, _: Token | None) -> None:
        self._fail(Failure.REPLY_TIMEOUT)

    def _fail(self, reason: Failure) -> None:
        self.failure = reason
        self.state = HostState.FAILED
        self._disarm()
        self._out.append(ExchangeFailed(reason))

    St, In = HostState, Input
    _TABLE: ClassVar[dict[tuple[Enum, Input], Handler]] = {
        (St.AWAIT_ENQ_ACK, In.ACK): _send_frame,
        (St.AWAIT_ENQ_ACK, In.ENQ): _collision,
        (St.AWAIT_ENQ_ACK, In.TIMEOUT): _retry_enq,
        (St.COLLISION_WAIT, In.TIMEOUT): _retry_enq,
        (St.AWAIT_FRAME_ACK, In.ACK): _frame_acked,
        (St.AWAIT_FRAME_ACK, In.NAK): _resend_frame,
        (St.AWAIT_FRAME_ACK, In.TIMEOUT): _resend_frame,
        (St.AWAIT_FRAME_ACK, In.ENQ): _enq_while_frame_unacked,
        (St.AWAIT_REPLY_ENQ, In.ENQ): _ack_enq,
        (St.AWAIT_REPLY_ENQ, In.TIMEOUT): _no_reply,
        (St.AWAIT_STX, In.ENQ): _ack_enq,  # our ACK was lost: the device asks again
        (St.AWAIT_STX, In.FRAME_START): _frame_started,
        (St.AWAIT_STX, In.TIMEOUT): _no_stx,
        (St.RECEIVING, In.FRAME): _accept_reply,
        (St.RECEIVING, In.BAD_FRAME): _reject_reply,
        (St.RECEIVING, In.TIMEOUT): _reject_reply,
        (St.AWAIT_EOT, In.EOT): _finish,
        (St.AWAIT_EOT, In.TIMEOUT): _finish,
        (St.AWAIT_EOT, In.FRAME_START): _frame_started,  # our ACK was lost: the device sends the frame again
    }
    del St, In


# --- device side ---


class DeviceState(Enum):
    IDLE = auto()  # waiting for the host's ENQ, no timer
    AWAIT_STX = auto()  # ACKed the host's ENQ, T2
    RECEIVING = auto()  # inside the host's frame, T6
    AWAIT_EOT = auto()  # ACKed the frame, T4
    BUSY = auto()  # executing; the caller answers with reply(), ENQs get NAK
    AWAIT_ENQ_ACK = auto()  # sent ENQ, T1
    AWAIT_FRAME_ACK = auto()  # sent the reply frame, T3


class DeviceSession(_Machine):
    """The register's side of the v2 link, for any number of exchanges in a row.

    The request is handed over (`RequestReceived`) once the host's EOT arrives, or T4 after the ACK if that
    EOT is lost, so a frame the host resends because our ACK was lost is delivered once. `reply(data)` offers
    the answer: ENQ up to ENQ_TRIES times (T1 each), the frame up to FRAME_TRIES times (T3 each), then EOT.
    If the host sends ENQ while we offer ours, the device yields: it drops the reply (`ReplyAbandoned`)
    and serves the host's next ENQ.
    """

    _RECEIVING = DeviceState.RECEIVING

    def __init__(self) -> None:
        super().__init__()
        self.state = DeviceState.IDLE
        self.request: bytes | None = None
        self.bad_requests = 0
        self.enq_tries = 0
        self.frame_sends = 0
        self._reply_frame = b""

    def reply(self, data: bytes | bytearray | memoryview) -> list[Output]:
        """Answer the request last delivered by RequestReceived."""
        if self.state is not DeviceState.BUSY:
            raise StateError(f"no request to answer (state {self.state.name})")
        self._reply_frame = encode_frame(data)
        self.enq_tries = 0
        self.frame_sends = 0
        self._send_enq(None)
        return self._flush()

    def _new_exchange(self, token: Token | None) -> None:
        self.bad_requests = 0
        self.request = None
        self._ack_enq(token)

    def _ack_enq(self, _: Token | None) -> None:
        self._send(_ACK_B)
        self.state = DeviceState.AWAIT_STX
        self._arm("T2", T2)

    def _frame_started(self, _: Token | None) -> None:
        self.state = DeviceState.RECEIVING
        self._arm("T6", T6)

    def _accept_request(self, token: Token | None) -> None:
        assert isinstance(token, Frame)
        self.request = token.data
        self._send(_ACK_B)
        self.state = DeviceState.AWAIT_EOT
        self._arm("T4", T4)

    def _reject_request(self, _: Token | None) -> None:
        self.bad_requests += 1
        self._send(_NAK_B)
        if self.bad_requests >= RECEIVE_TRIES:
            self._idle(None)
        else:
            self.state = DeviceState.AWAIT_STX
            self._arm("T2", T2)

    def _deliver(self, _: Token | None) -> None:
        assert self.request is not None
        self.state = DeviceState.BUSY
        self._disarm()
        self._out.append(RequestReceived(self.request))

    def _refuse(self, _: Token | None) -> None:
        self._send(_NAK_B)

    def _send_enq(self, _: Token | None) -> None:
        self.enq_tries += 1
        self._send(_ENQ_B)
        self.state = DeviceState.AWAIT_ENQ_ACK
        self._arm("T1", T1)

    def _retry_enq(self, _: Token | None) -> None:
        if self.enq_tries >= ENQ_TRIES:
            self._give_up(Failure.HOST_NOT_READY)
        else:
            self._send_enq(None)

    def _yield(self, _: Token | None) -> None:
        self._idle(None)
        self._out.append(ReplyAbandoned())

    def _send_reply(self, _: Token | None) -> None:
        self.frame_sends += 1
        self._send(self._reply_frame)
        self.state = DeviceState.AWAIT_FRAME_ACK
        self._arm("T3", T3)

    def _resend_reply(self, _: Token | None) -> None:
        if self.frame_sends >= FRAME_TRIES:
            self._give_up(Failure.FRAME_REJECTED)
        else:
            self._send_reply(None)

    def _reply_acked(self, _: Token | None) -> None:
        self._send(_EOT_B)
        self._idle(None)
        self._out.append(ReplySent())

    def _give_up(self, reason: Failure) -> None:
        self._send(_EOT_B)
        self._idle(None)
        self._out.append(ReplyFailed(reason))

    def _idle(self, _: Token | None) -> None:
        self.state = DeviceState.IDLE
        self._disarm()

    St, In = DeviceState, Input
    _TABLE: ClassVar[dict[tuple[Enum, Input], Handler]] = {
        (St.IDLE, In.ENQ): _new_exchange,
        (St.AWAIT_STX, In.ENQ): _ack_enq,  # our ACK was lost: the host asks again
        (St.AWAIT_STX, In.FRAME_START): _frame_started,
        (St.AWAIT_STX, In.TIMEOUT): _idle,
        (St.RECEIVING, In.FRAME): _accept_request,
        (St.RECEIVING, In.BAD_FRAME): _reject_request,
        (St.RECEIVING, In.TIMEOUT): _reject_request,
        (St.AWAIT_EOT, In.EOT): _deliver,
        (St.AWAIT_EOT, In.TIMEOUT): _deliver,
        (St.AWAIT_EOT, In.FRAME_START): _frame_started,  # our ACK was lost: the host sends the frame again
        (St.BUSY, In.ENQ): _refuse,
        (St.AWAIT_ENQ_ACK, In.ACK): _send_reply,
        (St.AWAIT_ENQ_ACK, In.ENQ): _yield,
        (St.AWAIT_ENQ_ACK, In.TIMEOUT): _retry_enq,
        (St.AWAIT_FRAME_ACK, In.ACK): _reply_acked,
        (St.AWAIT_FRAME_ACK, In.NAK): _resend_reply,
        (St.AWAIT_FRAME_ACK, In.TIMEOUT): _resend_reply,
    }
    del St, In
