"""ATOL transport v3: the published and computed vectors of spec/devices.md §1.3, byte for byte, both ways,
then properties of the framing (escaping, CRC, resynchronisation, splitting) and of the buffer messages."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktbridge.devices.atol import transport_v3 as v3
from kktbridge.devices.atol.transport_v3 import (
    ASYNC_ID,
    MAX_DATA_LEN,
    Abort,
    Ack,
    AckAdd,
    Add,
    AddFlags,
    BadCrc,
    BadEscape,
    BadPacketId,
    BufferCommand,
    CorruptFrame,
    Frame,
    FrameDecoder,
    FrameTooLong,
    IdCounter,
    MalformedMessage,
    Reply,
    Req,
    TaskStatus,
    Truncated,
    UnknownCommand,
    UnknownStatus,
    encode_frame,
    parse_reply,
    parse_request,
    retransmit_request,
)

h = bytes.fromhex


def crc8_reference(data: bytes) -> int:
    """Bit by bit from the definition: poly 0x31, init 0xFF, MSB first, no reflection, no final XOR."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) if crc & 0x80 else (crc << 1)
            crc &= 0xFF
    return crc


def decode_all(stream: bytes) -> list[v3.Event]:
    return FrameDecoder().feed(stream)


# --- spec/devices.md §1.3 vectors ---

# (packet id, buffer message, frame); test_computed_rows_mean_what_they_say checks the messages' meaning.
COMPUTED = [
    (2, Add(1, h("00 00 3F"), AddFlags.NEED_RESULT), "FE 06 00 02 C1 01 01 00 00 3F ED"),
    (3, Req(1), "FE 02 00 03 C3 01 37"),
    (4, Ack(1), "FE 02 00 04 C2 01 20"),
    (1, Abort(), "FE 01 00 01 C4 F6"),
    (4, Add(2, h("00 00 56 01 00 00 00 30")), "FE 0B 00 04 C1 01 02 00 00 56 01 00 00 00 30 23"),
    (6, Add(4, h("00 00 9A 00")), "FE 07 00 06 C1 01 04 00 00 9A 00 DC"),
    (5, Add(3, h("00 00 92 00 01")), "FE 08 00 05 C1 01 03 00 00 92 00 01 60"),
    (7, Add(5, h("00 00 4A 00 01 00 00 01 00 00")), "FE 0D 00 07 C1 01 05 00 00 4A 00 01 00 00 01 00 00 53"),
    (8, Add(6, h("00 00 5A")), "FE 06 00 08 C1 01 06 00 00 5A 0D"),
]


def test_atol4j_empty_packet_is_a_retransmit_request() -> None:
    assert encode_frame(1, b"") == h("FE 00 00 01 9D")
    assert retransmit_request(1) == h("FE 00 00 01 9D")
    [frame] = decode_all(h("FE 00 00 01 9D"))
    assert frame == Frame(1, b"")
    assert frame.is_retransmit_request


def test_atol4j_async_frame_with_escaped_crc() -> None:
    wire = h("FE 05 00 F0 A6 57 55 00 00 FD EE")
    [frame] = decode_all(wire)
    assert frame == Frame(ASYNC_ID, h("A6 57 55 00 00"))
    assert frame.is_async and not frame.is_retransmit_request
    assert v3.frame_crc(ASYNC_ID, frame.data) == 0xFE
    assert encode_frame(ASYNC_ID, frame.data) == wire
    reply = parse_reply(frame.data)
    assert reply == Reply(TaskStatus.ASYNC_RESULT, h("55 00 00"), task_id=0x57)
    assert reply.to_bytes() == frame.data


@pytest.mark.parametrize(("packet_id", "message", "wire"), COMPUTED, ids=[w for _, _, w in COMPUTED])
def test_computed_rows_encode(packet_id: int, message: v3.Request, wire: str) -> None:
    assert encode_frame(packet_id, message.to_bytes()) == h(wire)


@pytest.mark.parametrize(("packet_id", "message", "wire"), COMPUTED, ids=[w for _, _, w in COMPUTED])
def test_computed_rows_decode(packet_id: int, message: v3.Request, wire: str) -> None:
    [frame] = decode_all(h(wire))
    assert frame == Frame(packet_id, message.to_bytes())
    assert parse_request(frame.data) == message


def test_computed_rows_mean_what_they_say() -> None:
    add = parse_request(h("C1 01 05 00 00 4A 00 01 00 00 01 00 00"))
    assert isinstance(add, Add)
    assert (add.flags, add.task_id) == (AddFlags.NEED_RESULT, 5)
    assert add.command[:3] == h("00 00 4A")  # password 0000, close receipt
    assert add.command[5:] == h("00 00 01 00 00")  # 100.00 in BCD kopecks
    assert parse_request(h("C4")) == Abort()
    assert parse_request(h("C3 01")) == Req(1)


# --- CRC ---


@given(st.integers(0, 0xFF), st.binary(max_size=64))
def test_crc_matches_the_bitwise_definition(packet_id: int, data: bytes) -> None:
    assert v3.frame_crc(packet_id, data) == crc8_reference(bytes((packet_id,)) + data)


def _one_byte_data_with_crc(packet_id: int, crc: int) -> bytes:
    """A data byte that needs no escaping itself but makes the frame's CRC equal `crc`."""
    return next(bytes((b,)) for b in range(0xFD) if v3.frame_crc(packet_id, bytes((b,))) == crc)


@pytest.mark.parametrize(("crc", "escaped"), [(0xFE, "FD EE"), (0xFD, "FD ED")])
def test_crc_byte_is_escaped(crc: int, escaped: str) -> None:
    data = _one_byte_data_with_crc(9, crc)
    wire = encode_frame(9, data)
    assert wire == h("FE 01 00 09") + data + h(escaped)
    assert decode_all(wire) == [Frame(9, data)]


def test_data_bytes_fe_and_fd_are_escaped() -> None:
    wire = encode_frame(0x10, h("FE FD 00 FD FE"))
    assert wire[:4] == h("FE 05 00 10")
    assert wire[4:13] == h("FD EE FD ED 00 FD ED FD EE")
    assert len(wire) in (14, 15)  # then the CRC, escaped or not
    assert wire.count(0xFE) == 1
    assert decode_all(wire) == [Frame(0x10, h("FE FD 00 FD FE"))]


def test_length_is_split_in_7_bit_halves() -> None:
    data = bytes(300)
    wire = encode_frame(0, data)
    assert wire[1:3] == bytes((300 & 0x7F, 300 >> 7)) == h("2C 02")
    big = encode_frame(0, bytes(MAX_DATA_LEN))
    assert big[1:3] == h("7F 7F")
    assert decode_all(big) == [Frame(0, bytes(MAX_DATA_LEN))]


def test_encode_refuses_what_cannot_be_framed() -> None:
    with pytest.raises(FrameTooLong):
        encode_frame(0, bytes(MAX_DATA_LEN + 1))
    for bad in (-1, 0xFE, 0x100):
        with pytest.raises(BadPacketId):
            encode_frame(bad, b"\x00")


# --- the decoder ---


def test_garbage_before_a_frame_is_discarded_and_counted() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(h("00 11 FD ED 7F") + h("FE 02 00 03 C3 01 37")) == [Frame(3, h("C3 01"))]
    assert decoder.discarded == 5
    assert decoder.pending == 0


def test_bad_crc_is_an_event_with_the_packet_id_and_decoding_goes_on() -> None:
    stream = h("FE 02 00 03 C3 01 38") + h("FE 02 00 04 C2 01 20")
    events = decode_all(stream)
    assert events[1] == Frame(4, h("C2 01"))
    bad = events[0]
    assert isinstance(bad, BadCrc) and isinstance(bad, CorruptFrame)
    assert (bad.packet_id, bad.data, bad.received, bad.expected) == (3, h("C3 01"), 0x38, 0x37)
    assert retransmit_request(bad.packet_id) == encode_frame(3)


def test_bad_escape_is_reported() -> None:
    [event, frame] = decode_all(h("FE 02 00 07 FD 41 00 00") + h("FE 01 00 01 C4 F6"))
    assert isinstance(event, BadEscape) and event.packet_id == 7
    assert frame == Frame(1, h("C4"))


def test_a_new_fe_truncates_an_unfinished_frame() -> None:
    [event, frame] = decode_all(h("FE 09 00 05 C1 01") + h("FE 01 00 01 C4 F6"))
    assert event == Truncated(5, h("FE 09 00 05 C1 01"))
    assert frame == Frame(1, h("C4"))


def test_escape_at_the_end_of_the_input_waits_for_its_pair() -> None:
    wire = encode_frame(0xF0, h("A6 01 FD"))
    cut = wire.index(0xFD) + 1
    decoder = FrameDecoder()
    assert decoder.feed(wire[:cut]) == []
    assert decoder.feed(wire[cut:]) == [Frame(0xF0, h("A6 01 FD"))]


def test_bad_escape_split_right_after_the_escape_byte() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(h("FE 02 00 07 00 FD")) == []
    [event] = decoder.feed(h("41 00"))
    assert isinstance(event, BadEscape) and event.packet_id == 7


def test_header_that_cannot_be_one_resynchronises() -> None:
    # LEN0 > 0x7F: that FE was noise; FE as packet id: noise too, the next FE starts the frame.
    for noise in (h("FE 80 00 01"), h("FE 00 00"), h("FE 01")):
        assert decode_all(noise + h("FE 01 00 01 C4 F6")) == [Frame(1, h("C4"))]


def test_partial_header_waits() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(h("FE 02")) == []
    assert decoder.feed(h("00 03 C3")) == []
    assert decoder.feed(h("01 37")) == [Frame(3, h("C3 01"))]


def test_reset_drops_a_partial_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(h("FE 02 00 03 C3"))
    decoder.reset()
    assert decoder.feed(h("01 37 FE 02 00 04 C2 01 20")) == [Frame(4, h("C2 01"))]


def test_long_frame_fed_byte_by_byte() -> None:
    data = bytes([0xFD, 0xFE, 0x01] * 2000)
    wire = encode_frame(0x55, data)
    decoder = FrameDecoder()
    events = [e for i in range(len(wire)) for e in decoder.feed(wire[i : i + 1])]
    assert events == [Frame(0x55, data)]


# --- framing properties ---

# Data that is rich in the bytes the framing treats specially.
special_bytes = st.sampled_from([0xFE, 0xFD, 0xEE, 0xED, 0x00, 0x7F, 0x80, 0xFF]) | st.integers(0, 255)
frame_data = st.lists(special_bytes, max_size=300).map(bytes)
packet_ids = st.integers(0, 0xFD)  # every byte except FE (STX)


@given(packet_ids, frame_data)
def test_round_trip_any_bytes(packet_id: int, data: bytes) -> None:
    wire = encode_frame(packet_id, data)
    assert wire.count(0xFE) == 1  # only the STX
    assert decode_all(wire) == [Frame(packet_id, data)]


@settings(max_examples=30, deadline=None)
@given(packet_ids, st.integers(0, MAX_DATA_LEN), st.randoms(use_true_random=False))
def test_round_trip_up_to_the_14_bit_maximum(packet_id: int, length: int, rnd: random.Random) -> None:
    data = rnd.randbytes(length)
    assert decode_all(encode_frame(packet_id, data)) == [Frame(packet_id, data)]


@given(packet_ids)
def test_every_crc_value_round_trips(packet_id: int) -> None:
    seen = set()
    for b in range(256):
        data = bytes((0x41, b))
        seen.add(v3.frame_crc(packet_id, data))
        assert decode_all(encode_frame(packet_id, data)) == [Frame(packet_id, data)]
    assert seen == set(range(256))  # the CRC byte took every value, FE and FD included


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


@given(
    st.lists(st.tuples(packet_ids, frame_data), min_size=1, max_size=5),
    st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\xfe", b"")), min_size=6, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_frames_survive_garbage_and_any_split(
    frames: list[tuple[int, bytes]], garbage: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(g + encode_frame(i, d) for g, (i, d) in zip(garbage, frames, strict=False))
    decoder = FrameDecoder()
    events = [e for chunk in _split(stream, cuts) for e in decoder.feed(chunk)]
    assert events == [Frame(i, d) for i, d in frames]
    assert decoder.discarded == sum(map(len, garbage[: len(frames)]))


@given(st.binary(max_size=40), st.tuples(packet_ids, frame_data), st.lists(st.integers(0, 1000), max_size=8))
def test_garbage_with_fe_cannot_hide_the_next_frame(garbage: bytes, frame: tuple[int, bytes], cuts: list[int]) -> None:
    decoder = FrameDecoder()
    events = [e for chunk in _split(garbage + encode_frame(*frame), cuts) for e in decoder.feed(chunk)]
    assert events[-1] == Frame(*frame)


@given(packet_ids, frame_data.filter(len), st.data())
def test_any_single_byte_error_in_the_body_is_caught(packet_id: int, data: bytes, draw: st.DataObject) -> None:
    wire = bytearray(encode_frame(packet_id, data))
    literals = [i for i in range(4, len(wire)) if wire[i] != 0xFD and wire[i - 1] != 0xFD]
    if not literals:
        return
    i = draw.draw(st.sampled_from(literals))
    wire[i] = draw.draw(st.integers(0, 0xFC).filter(lambda b: b != wire[i]))
    [event] = decode_all(bytes(wire))
    assert isinstance(event, BadCrc) and event.packet_id == packet_id


# --- buffer messages ---


def test_code_tables() -> None:
    assert {c.name: c.value for c in BufferCommand} == {
        "ADD": 0xC1, "ACK": 0xC2, "REQ": 0xC3, "ABORT": 0xC4, "ACK_ADD": 0xC5,
    }  # fmt: skip
    assert (AddFlags.NEED_RESULT, AddFlags.IGNORE_ERR, AddFlags.ASYNC) == (1, 2, 4)
    assert [s.value for s in TaskStatus] == [0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xB1, 0xB2, 0xB3, 0xB4]
    assert {s for s in TaskStatus if s.is_final} == {
        TaskStatus.RESULT, TaskStatus.ERROR, TaskStatus.ASYNC_RESULT, TaskStatus.ASYNC_ERROR,
    }  # fmt: skip
    assert {s for s in TaskStatus if s.is_buffer_error} == {
        TaskStatus.OVERFLOW, TaskStatus.ALREADY_EXISTS, TaskStatus.NOT_FOUND, TaskStatus.ILLEGAL_VALUE,
    }  # fmt: skip


def test_ack_add_has_the_layout_of_add() -> None:
    request = AckAdd(7, h("00 00 3F"), AddFlags.NEED_RESULT | AddFlags.ASYNC)
    assert request.to_bytes() == h("C5 05 07 00 00 3F")
    assert parse_request(request.to_bytes()) == request


def test_sync_reply_has_no_task_id() -> None:
    assert parse_reply(h("A3 55 00 00")) == Reply(TaskStatus.RESULT, h("55 00 00"))
    assert parse_reply(h("A1")) == Reply(TaskStatus.PENDING)
    assert parse_reply(h("A7 02 55 8C")) == Reply(TaskStatus.ASYNC_ERROR, h("55 8C"), task_id=2)
    assert Reply(TaskStatus.ILLEGAL_VALUE).to_bytes() == h("B4")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedMessage),
        (h("C7 00"), UnknownCommand),
        (h("C1 01"), MalformedMessage),
        (h("C2"), MalformedMessage),
        (h("C3 01 02"), MalformedMessage),
        (h("C4 00"), MalformedMessage),
    ],
)
def test_malformed_requests(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_request(data)


@pytest.mark.parametrize(
    ("data", "error"), [(b"", MalformedMessage), (h("55 00"), UnknownStatus), (h("A6"), MalformedMessage)]
)
def test_malformed_replies(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_reply(data)


def test_reply_and_task_id_must_agree() -> None:
    with pytest.raises(MalformedMessage):
        Reply(TaskStatus.ASYNC_RESULT, b"")
    with pytest.raises(MalformedMessage):
        Reply(TaskStatus.RESULT, b"", task_id=1)
    with pytest.raises(MalformedMessage):
        Ack(0x100).to_bytes()


byte = st.integers(0, 255)
requests = st.one_of(
    st.builds(Add, byte, st.binary(max_size=40), st.builds(AddFlags, st.integers(0, 7))),
    st.builds(AckAdd, byte, st.binary(max_size=40), st.builds(AddFlags, st.integers(0, 7))),
    st.builds(Ack, byte),
    st.builds(Req, byte),
    st.just(Abort()),
)


@given(requests, packet_ids)
def test_requests_round_trip_through_frames(request: v3.Request, packet_id: int) -> None:
    [frame] = decode_all(encode_frame(packet_id, request.to_bytes()))
    assert isinstance(frame, Frame)
    assert parse_request(frame.data) == request


@given(st.sampled_from(list(TaskStatus)), st.binary(max_size=40), byte)
def test_replies_round_trip(status: TaskStatus, payload: bytes, task_id: int) -> None:
    reply = Reply(status, payload, task_id if status.is_async else None)
    assert parse_reply(reply.to_bytes()) == reply


def test_id_counter_cycles_0_to_df() -> None:
    ids = IdCounter()
    first = [next(ids) for _ in range(0xE0 + 3)]
    assert first[:3] == [0, 1, 2]
    assert first[0xDF] == 0xDF
    assert first[0xE0:] == [0, 1, 2]
    assert IdCounter(start=0xDF).peek() == 0xDF
    with pytest.raises(ValueError):
        IdCounter(start=0xE0)
