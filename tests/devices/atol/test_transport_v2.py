"""ATOL transport v2: the vectors of spec/devices.md §1.4 byte for byte, the tokenizer, the timeouts, and the host
and device machines driven against each other over a simulated line that can lose, corrupt and split bytes."""

from __future__ import annotations

import functools
import operator
from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktbridge.devices.atol import transport_v2 as v2
from kktbridge.devices.atol.transport_v2 import (
    BadChecksum,
    Control,
    ControlByte,
    DeviceSession,
    DeviceState,
    ExchangeDone,
    ExchangeFailed,
    Failure,
    Frame,
    FrameDecoder,
    FrameStart,
    HostExchange,
    HostState,
    ReplyAbandoned,
    ReplyFailed,
    ReplySent,
    RequestReceived,
    Send,
    StartTimer,
    StateError,
    StopTimer,
    encode_frame,
    t5_for,
    t5_for_request,
)

h = bytes.fromhex

ATOL4J = ("1F 00 FF 10 02 03 1A", "02 1F 00 FF 10 10 02 10 03 1A 03 E8")
COMPUTED = [
    ("00 00 3F", "02 00 00 3F 03 3C"),
    ("00 00 9A 00", "02 00 00 9A 00 03 99"),
    ("00 00 4A 00 01 00 00 01 00 00", "02 00 00 4A 00 01 00 00 01 00 00 03 49"),
]
VECTORS = [ATOL4J, *COMPUTED]


# --- frames ---


@pytest.mark.parametrize(("data", "wire"), VECTORS, ids=[w for _, w in VECTORS])
def test_vectors_encode(data: str, wire: str) -> None:
    assert encode_frame(h(data)) == h(wire)


@pytest.mark.parametrize(("data", "wire"), VECTORS, ids=[w for _, w in VECTORS])
def test_vectors_decode(data: str, wire: str) -> None:
    assert FrameDecoder().feed(h(wire)) == [FrameStart(), Frame(h(data))]


def test_vector_decodes_split_at_every_point() -> None:
    wire = h(ATOL4J[1])
    for cut in range(len(wire) + 1):
        decoder = FrameDecoder()
        tokens = decoder.feed(wire[:cut]) + decoder.feed(wire[cut:])
        assert tokens == [FrameStart(), Frame(h(ATOL4J[0]))], cut


def test_control_bytes_outside_frames_and_data_inside() -> None:
    # ENQ (05) and ACK (06) inside the frame are data; outside they are control bytes; 0x33 is noise.
    decoder = FrameDecoder()
    tokens = decoder.feed(h("33 05") + encode_frame(h("05 06 15 04")) + h("06 15 04"))
    assert tokens == [
        Control(ControlByte.ENQ),
        FrameStart(),
        Frame(h("05 06 15 04")),
        Control(ControlByte.ACK),
        Control(ControlByte.NAK),
        Control(ControlByte.EOT),
    ]
    assert decoder.discarded == 1


def test_bad_checksum_is_a_token() -> None:
    wire = bytearray(encode_frame(h("00 00 3F")))
    wire[-1] ^= 0x01
    assert FrameDecoder().feed(bytes(wire)) == [FrameStart(), BadChecksum(h("00 00 3F"), 0x3D, 0x3C)]


def test_dle_takes_any_next_byte_literally() -> None:
    # atol4j and dant both keep the byte after DLE whatever it is; the checksum covers the DLE.
    body = h("10 41 03")
    wire = h("02") + body + bytes((functools.reduce(operator.xor, body),))
    assert FrameDecoder().feed(wire) == [FrameStart(), Frame(h("41"))]


def test_reset_drops_a_partial_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(h("02 00 00"))
    assert decoder.in_frame
    decoder.reset()
    assert not decoder.in_frame
    assert decoder.feed(h("06")) == [Control(ControlByte.ACK)]


special = st.sampled_from([0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x15]) | st.integers(0, 255)
frame_data = st.lists(special, max_size=300).map(bytes)


@given(frame_data, st.lists(st.integers(0, 700), max_size=10))
def test_stuffing_round_trips_in_any_split(data: bytes, cuts: list[int]) -> None:
    wire = encode_frame(data)
    body = wire[1:-1]
    assert body.endswith(b"\x03")
    assert wire[-1] == functools.reduce(operator.xor, body, 0)
    points = sorted({c % (len(wire) + 1) for c in cuts})
    decoder = FrameDecoder()
    tokens = [t for a, b in zip([0, *points], [*points, len(wire)], strict=True) for t in decoder.feed(wire[a:b])]
    assert tokens == [FrameStart(), Frame(data)]


@given(st.binary(max_size=2000))
def test_xor_checksum_is_xor_of_all_bytes(data: bytes) -> None:
    assert v2.xor_checksum(data) == functools.reduce(operator.xor, data, 0)


# --- timeouts ---


def test_timeouts() -> None:
    assert (v2.T1, v2.T2, v2.T3, v2.T4, v2.T5, v2.T6, v2.T7, v2.T8) == (500, 2000, 500, 500, 10000, 500, 500, 1000)


def test_t5_per_command() -> None:
    table = {
        0x6B: 10000,
        0x4A: 20000, 0x8D: 20000, 0x8E: 20000, 0xA7: 20000,
        0x5A: 40000,
        0x91: 45000,
        0xA6: 50000, 0xE6: 50000, 0xEA: 50000, 0xEB: 50000,
        0xA8: 120000, 0xAB: 120000,
    }  # fmt: skip
    for code in range(256):
        assert t5_for(code) == table.get(code, 10000), hex(code)
    assert t5_for_request(h("00 00 5A")) == 40000  # the command code follows the 2-byte password
    assert t5_for_request(h("5A")) == 10000


# --- the machines, paired ---


@dataclass
class Line:
    """A host and a device on one simulated serial line with a clock in ms.

    Transmissions are numbered per side (0, 1, 2...); `drop` loses some, `corrupt` flips the last byte of some
    (for a frame, its checksum). `cuts` re-splits what arrives. The device answers each request `reply_after`
    ms after receiving it (None: never). Timers expiring at the same instant fire host first unless
    `device_first`.
    """

    host: HostExchange
    device: DeviceSession
    reply: bytes = b"\x55\x00\x00"
    reply_after: int | None = 0
    drop: dict[str, set[int]] = field(default_factory=lambda: {"H": set(), "D": set()})
    corrupt: dict[str, set[int]] = field(default_factory=lambda: {"H": set(), "D": set()})
    cuts: list[int] = field(default_factory=list)
    device_first: bool = False
    now: int = 0
    wire: list[tuple[str, bytes]] = field(default_factory=list)  # what each side sent, in order
    events: list[tuple[str, object]] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    timers_started: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queue: deque[tuple[str, bytes]] = deque()
        self.deadline: dict[str, int | None] = {"H": None, "D": None, "R": None}
        self.sent = {"H": 0, "D": 0}

    def handle(self, side: str, outputs: list[v2.Output]) -> None:
        for out in outputs:
            if isinstance(out, Send):
                self._transmit(side, out.data)
            elif isinstance(out, StartTimer):
                self.deadline[side] = self.now + out.ms
                self.timers_started.append((side, out.name))
            elif isinstance(out, StopTimer):
                self.deadline[side] = None
            else:
                self.events.append((side, out))
                if isinstance(out, RequestReceived):
                    self.requests.append(out.data)
                    if self.reply_after is not None:
                        self.deadline["R"] = self.now + self.reply_after

    def _transmit(self, side: str, data: bytes) -> None:
        self.wire.append((side, data))
        n = self.sent[side]
        self.sent[side] += 1
        if n in self.drop[side]:
            return
        if n in self.corrupt[side]:
            data = data[:-1] + bytes((data[-1] ^ 0xFF,))
        self.queue.append(("D" if side == "H" else "H", data))

    def _deliver(self, target: str, data: bytes) -> None:
        machine = self.host if target == "H" else self.device
        points = sorted({c % (len(data) + 1) for c in self.cuts})
        for a, b in zip([0, *points], [*points, len(data)], strict=True):
            self.handle(target, machine.receive_data(data[a:b]))

    def _fire(self, who: str) -> None:
        self.deadline[who] = None
        if who == "R":
            self.handle("D", self.device.reply(self.reply))
        else:
            self.handle(who, (self.host if who == "H" else self.device).timeout())

    def run(self, max_steps: int = 5000) -> None:
        for _ in range(max_steps):
            if self.queue:
                self._deliver(*self.queue.popleft())
                continue
            pending = [(t, who) for who, t in self.deadline.items() if t is not None]
            if not pending:
                return
            order = {"R": 0, "D": 1, "H": 2} if self.device_first else {"R": 0, "H": 1, "D": 2}
            t, who = min(pending, key=lambda p: (p[0], order[p[1]]))
            self.now = t
            self._fire(who)
        raise AssertionError("the line never went quiet")

    def sent_by(self, side: str) -> list[bytes]:
        return [data for who, data in self.wire if who == side]


def exchange(request: bytes = h("00 00 3F"), **kwargs: object) -> Line:
    line = Line(HostExchange(request), DeviceSession(), **kwargs)  # type: ignore[arg-type]
    line.handle("H", line.host.start())
    line.run()
    return line


ENQ, ACK, NAK, EOT = h("05"), h("06"), h("15"), h("04")


def test_clean_exchange_byte_for_byte() -> None:
    line = exchange(h("00 00 3F"), reply=h("55 00 00"))
    assert line.wire == [
        ("H", ENQ),
        ("D", ACK),
        ("H", h("02 00 00 3F 03 3C")),
        ("D", ACK),
        ("H", EOT),
        ("D", ENQ),
        ("H", ACK),
        ("D", encode_frame(h("55 00 00"))),
        ("H", ACK),
        ("D", EOT),
    ]
    assert line.host.state is HostState.DONE and line.host.reply == h("55 00 00")
    assert ("H", ExchangeDone(h("55 00 00"))) in line.events
    assert ("D", ReplySent()) in line.events
    assert line.requests == [h("00 00 3F")]
    assert line.device.state is DeviceState.IDLE
    assert line.timers_started == [
        ("H", "T1"),  # waiting for ACK to ENQ
        ("D", "T2"),  # waiting for STX
        ("H", "T4"),  # waiting for ACK to the frame
        ("D", "T6"),  # inside the frame
        ("D", "T4"),  # waiting for EOT
        ("H", "T5"),  # waiting for the reply's ENQ
        ("D", "T1"),
        ("H", "T2"),
        ("D", "T3"),  # waiting for ACK to the reply
        ("H", "T6"),
        ("H", "T3"),  # waiting for EOT
    ]
    assert line.now == 0  # no timer had to expire


def test_device_session_serves_several_exchanges() -> None:
    device = DeviceSession()
    for command in (h("00 00 3F"), h("00 00 9A 00"), h("00 00 5A")):
        line = Line(HostExchange(command), device, reply=command[::-1])
        line.handle("H", line.host.start())
        line.run()
        assert line.host.reply == command[::-1]
        assert line.requests == [command]


@pytest.mark.parametrize("nak_count", [1, 2, 9])
def test_host_resends_its_frame_on_nak(nak_count: int) -> None:
    # Host transmissions: 0 ENQ, then the frame at 1, 2, 3...: corrupt the first nak_count of them.
    line = exchange(corrupt={"H": set(range(1, 1 + nak_count)), "D": set()})
    assert line.host.state is HostState.DONE
    assert line.host.frame_sends == nak_count + 1
    assert line.sent_by("D")[1 : 2 + nak_count] == [NAK] * nak_count + [ACK]
    assert line.requests == [h("00 00 3F")]


def test_host_gives_up_after_ten_frames() -> None:
    line = exchange(corrupt={"H": set(range(1, 11)), "D": set()})
    assert line.host.failure is Failure.FRAME_REJECTED
    assert line.host.frame_sends == 10
    assert line.sent_by("H")[-1] == EOT
    assert ("H", ExchangeFailed(Failure.FRAME_REJECTED)) in line.events
    assert line.requests == []


@pytest.mark.parametrize("nak_count", [1, 3, 9])
def test_host_naks_a_corrupt_reply_and_gets_it_again(nak_count: int) -> None:
    # Device transmissions: 0 ACK, 1 ACK, 2 ENQ, then the reply frame at 3, 4...
    line = exchange(corrupt={"H": set(), "D": set(range(3, 3 + nak_count))})
    assert line.host.state is HostState.DONE and line.host.reply == h("55 00 00")
    assert line.host.bad_replies == nak_count
    assert line.sent_by("H")[3 : 5 + nak_count] == [ACK] + [NAK] * nak_count + [ACK]


def test_host_gives_up_on_a_reply_that_stays_corrupt() -> None:
    line = exchange(corrupt={"H": set(), "D": set(range(3, 20))})
    assert line.host.failure is Failure.REPLY_CORRUPT
    assert line.host.bad_replies == 10


def test_silent_device() -> None:
    host = HostExchange(h("00 00 3F"))
    outputs = host.start()
    sent = [o.data for o in outputs if isinstance(o, Send)]
    for _ in range(4):
        assert host.timer == StartTimer("T1", 500)
        sent += [o.data for o in host.timeout() if isinstance(o, Send)]
    final = host.timeout()
    sent += [o.data for o in final if isinstance(o, Send)]
    assert sent == [ENQ] * 5 + [EOT]
    assert final == [Send(EOT), ExchangeFailed(Failure.DEVICE_NOT_READY)]  # the expired timer needs no stop
    assert host.timer is None
    with pytest.raises(StateError):
        host.timeout()


def test_no_reply_within_t5_of_the_command() -> None:
    line = exchange(h("00 00 5A"), reply_after=None)
    assert line.host.failure is Failure.NO_REPLY
    assert line.now == 40000  # the Z-report's T5, counted from the host's EOT at t=0
    assert line.requests == [h("00 00 5A")]


def test_lost_ack_to_the_frame_delivers_the_request_once() -> None:
    # Device transmission 1 is its ACK to the frame.
    for device_first in (False, True):
        line = exchange(drop={"H": set(), "D": {1}}, device_first=device_first)
        assert line.host.state is HostState.DONE, device_first
        assert line.requests == [h("00 00 3F")]


def test_lost_ack_to_enq_is_asked_again() -> None:
    line = exchange(drop={"H": set(), "D": {0}})
    assert line.host.state is HostState.DONE
    assert line.host.enq_tries == 2


def test_lost_ack_to_the_devices_enq_is_given_again() -> None:
    line = exchange(drop={"H": {3}, "D": set()})  # ENQ, frame, EOT, ACK(device's ENQ)
    assert line.host.state is HostState.DONE
    assert line.sent_by("D")[2:4] == [ENQ, ENQ]
    assert line.sent_by("H")[3:5] == [ACK, ACK]


def test_enq_instead_of_ack_to_a_resent_frame_means_the_frame_arrived() -> None:
    """dant: after a resend, an ENQ means the device took the frame and its ACK was lost; not on the first send."""
    host = HostExchange(h("00 00 3F"))
    host.start()
    host.receive_data(ACK)
    assert host.state is HostState.AWAIT_FRAME_ACK and host.frame_sends == 1
    assert host.receive_data(ENQ) == []
    host.timeout()  # T4: resend
    assert host.frame_sends == 2
    assert host.receive_data(ENQ) == [Send(ACK), StartTimer("T2", 2000)]
    assert host.state is HostState.AWAIT_STX


def test_lost_final_eot_ends_after_t3() -> None:
    line = exchange(drop={"H": set(), "D": {4}})  # ACK, ACK, ENQ, frame, EOT
    assert line.host.state is HostState.DONE
    assert line.timers_started[-1] == ("H", "T3")


def test_lost_ack_to_the_reply_makes_the_device_resend_it() -> None:
    # On a real line the device's T3 (from its last byte) expires before the host's T3 (from its ACK after it).
    line = exchange(drop={"H": {4}, "D": set()}, device_first=True)  # ENQ, frame, EOT, ACK(enq), ACK(reply)
    assert line.host.state is HostState.DONE
    assert line.device.frame_sends == 2
    assert line.sent_by("H")[-1] == ACK
    assert ("D", ReplySent()) in line.events


def test_lost_ack_to_the_reply_still_ends_the_exchange_when_the_host_times_out_first() -> None:
    line = exchange(drop={"H": {4}, "D": set()})
    assert line.host.state is HostState.DONE and line.host.reply == h("55 00 00")
    assert ("D", ReplyFailed(Failure.FRAME_REJECTED)) in line.events
    assert line.device.state is DeviceState.IDLE


def test_enq_collision() -> None:
    """A reply the host gave up on (T5 ran out) is offered just as the host starts the next command."""
    device = DeviceSession()
    first = Line(HostExchange(h("00 00 3F"), t5=100), device, reply_after=None)
    first.handle("H", first.host.start())
    first.run()
    assert first.host.failure is Failure.NO_REPLY
    assert device.state is DeviceState.BUSY

    line = Line(HostExchange(h("00 00 9A 00")), device, reply=h("55 00 00 01"))
    line.handle("D", device.reply(h("55 00 00 00")))  # the stale reply's ENQ...
    line.handle("H", line.host.start())  # ...and the new command's ENQ cross on the line
    line.run()
    assert line.host.collisions == 1
    assert ("D", ReplyAbandoned()) in line.events
    assert ("H", "T7") in line.timers_started
    assert line.host.state is HostState.DONE
    assert line.host.reply == h("55 00 00 01")
    assert line.requests == [h("00 00 9A 00")]


def test_busy_device_naks_enq() -> None:
    device = DeviceSession()
    first = exchange(reply_after=None)
    device = first.device
    assert device.state is DeviceState.BUSY
    assert device.receive_data(ENQ) == [Send(NAK)]


def test_misuse_is_a_state_error() -> None:
    host = HostExchange(h("00 00 3F"))
    host.start()
    with pytest.raises(StateError):
        host.start()
    with pytest.raises(StateError):
        DeviceSession().reply(b"\x55")
    with pytest.raises(StateError):
        DeviceSession().timeout()


def test_inter_byte_timeout_naks_a_partial_frame() -> None:
    device = DeviceSession()
    device.receive_data(ENQ)
    assert device.receive_data(h("02 00")) == [StartTimer("T6", 500)]
    assert device.receive_data(h("00")) == [StartTimer("T6", 500)]  # each byte restarts T6
    assert device.timeout() == [Send(NAK), StartTimer("T2", 2000)]
    assert device.receive_data(encode_frame(h("00 00 3F"))) == [StartTimer("T6", 500), Send(ACK), StartTimer("T4", 500)]


faults = st.sets(st.integers(0, 25), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    request=frame_data.filter(len),
    reply=frame_data.filter(len),
    drop_h=faults,
    drop_d=faults,
    corrupt_h=faults,
    corrupt_d=faults,
    cuts=st.lists(st.integers(0, 400), max_size=4),
    device_first=st.booleans(),
)
def test_any_faults_end_in_the_true_reply_or_a_stated_failure(
    request: bytes,
    reply: bytes,
    drop_h: set[int],
    drop_d: set[int],
    corrupt_h: set[int],
    corrupt_d: set[int],
    cuts: list[int],
    device_first: bool,
) -> None:
    line = exchange(
        request,
        reply=reply,
        drop={"H": drop_h, "D": drop_d},
        corrupt={"H": corrupt_h, "D": corrupt_d},
        cuts=cuts,
        device_first=device_first,
    )
    host = line.host
    assert host.finished
    outcome = [e for side, e in line.events if side == "H"]
    assert len(outcome) == 1
    if host.state is HostState.DONE:
        assert outcome == [ExchangeDone(reply)]
        assert line.requests == [request]
    else:
        assert outcome == [ExchangeFailed(host.failure)]  # type: ignore[arg-type]
        assert line.requests in ([], [request])
    assert line.device.state in (DeviceState.IDLE, DeviceState.BUSY)


@settings(max_examples=100, deadline=None)
@given(request=frame_data.filter(len), reply=frame_data, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_without_faults_every_exchange_completes(request: bytes, reply: bytes, cuts: list[int]) -> None:
    line = exchange(request, reply=reply, cuts=cuts)
    assert line.host.reply == reply
    assert line.requests == [request]
    assert len(line.wire) == 10
