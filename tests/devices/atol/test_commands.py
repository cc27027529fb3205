"""The ATOL command layer pinned by the published frames of spec/devices.md §1.3–1.4, plus layouts."""

from datetime import datetime

import pytest

from kktbridge.devices.atol import transport_v2 as v2
from kktbridge.devices.atol import transport_v3 as v3
from kktbridge.devices.atol.commands import (
    CommandRequest,
    DeviceState,
    DocumentInfo,
    ItemLine,
    Mode,
    PaymentReply,
    RegistrationInfo,
    Reply,
    ShiftState,
    StateCode,
    StateCodeFlags,
    StateFlags,
    parse_request,
)
from kktbridge.fiscal import PaymentKind, ReceiptType


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("packet_id, task_id, body, frame", [
    (2, 1, CommandRequest.device_state(), "FE 06 00 02 C1 01 01 00 00 3F ED"),
    (4, 2, CommandRequest.enter_mode(Mode.REGISTRATION, 30), "FE 0B 00 04 C1 01 02 00 00 56 01 00 00 00 30 23"),
    (6, 4, CommandRequest.open_shift(), "FE 07 00 06 C1 01 04 00 00 9A 00 DC"),
    (5, 3, CommandRequest.open_receipt(ReceiptType.SALE), "FE 08 00 05 C1 01 03 00 00 92 00 01 60"),
    (7, 5, CommandRequest.close_receipt(PaymentKind.CASH, 10000),
     "FE 0D 00 07 C1 01 05 00 00 4A 00 01 00 00 01 00 00 53"),
    (8, 6, CommandRequest.z_report(), "FE 06 00 08 C1 01 06 00 00 5A 0D"),
])
def test_published_v3_frames(packet_id, task_id, body, frame):
    assert v3.encode_frame(packet_id, v3.Add(task_id, body).to_bytes()) == hexbytes(frame)


@pytest.mark.parametrize("body, frame", [
    (CommandRequest.device_state(), "02 00 00 3F 03 3C"),
    (CommandRequest.open_shift(), "02 00 00 9A 00 03 99"),
    (CommandRequest.close_receipt(PaymentKind.CASH, 10000), "02 00 00 4A 00 01 00 00 01 00 00 03 49"),
])
def test_published_v2_frames(body, frame):
    assert v2.encode_frame(body) == hexbytes(frame)


def test_request_builders():
    assert CommandRequest.open_receipt(ReceiptType.SALE_RETURN) == hexbytes("00 00 92 00 02")
    assert CommandRequest.open_receipt(ReceiptType.PURCHASE) == hexbytes("00 00 92 00 04")
    assert CommandRequest.open_receipt(ReceiptType.PURCHASE_RETURN, electronically=True) == hexbytes("00 00 92 02 05")
    assert CommandRequest.payment(PaymentKind.ELECTRONIC, 1234) == hexbytes("00 00 99 00 02 00 00 00 12 34")
    assert CommandRequest.cash(True, 11111) == hexbytes("00 00 49 00 00 00 01 11 11")
    assert CommandRequest.cash(False, 123) == hexbytes("00 00 4F 00 00 00 00 01 23")
    assert CommandRequest.report(1) == hexbytes("00 00 67 01")
    assert CommandRequest.leave_mode(password=1234) == hexbytes("12 34 48")
    request = parse_request(CommandRequest.enter_mode(Mode.REPORT_Z, 30, password=12))
    assert (request.code, request.params, request.password) == (0x56, hexbytes("03 00 00 00 30"), 12)
    with pytest.raises(ValueError):
        parse_request(b"\x00\x00")


def test_item_line_layout_follows_atol4j():
    line = ItemLine(name="Молоко", price=8990, quantity_milli=1500, tax=6)
    raw = line.encode()
    assert len(raw) == 103
    assert raw[0] == 0x02  # flags: not test, bit 1 set as atol4j sends it
    assert raw[1:7] == bytes((0x8C, 0xAE, 0xAB, 0xAE, 0xAA, 0xAE))  # "Молоко" in the external code page
    assert raw[7:65] == bytes(58)
    assert raw[65:71] == hexbytes("00 00 00 00 89 90")
    assert raw[71:76] == hexbytes("00 00 00 15 00")
    assert raw[76] == 1 and raw[77] == 1 and raw[78:84] == bytes(6)
    assert raw[84] == 6 and raw[85:] == bytes(18)
    assert ItemLine.decode(raw) == line


def test_device_state_round_trip_and_offsets():
    state = DeviceState(clock=datetime(2026, 11, 23, 19, 4, 5), flags=StateFlags.FISCALIZED | StateFlags.SHIFT_OPEN |
                        StateFlags.PAPER, serial=12345678, model=63, mode=1, submode=0, receipt_number=7,
                        shift_number=12, receipt_state=1, receipt_sum=1100)
    raw = state.encode()
    assert len(raw) == 30
    assert raw[3:9] == hexbytes("26 11 23 19 04 05")  # BCD date and time as atol4j reads them
    assert raw[9] == 0b1011 and raw[10:14] == hexbytes("12 34 56 78") and raw[14] == 63
    assert raw[18:20] == hexbytes("00 07") and raw[20:22] == hexbytes("00 12") and raw[23:28] == hexbytes("00 00 00 11 00")
    assert DeviceState.decode(raw) == state


def test_shift_state_bytes_swapped():
    raw = ShiftState(1, 1234, 56).encode()
    assert raw == hexbytes("55 00 01 34 12 56 00")
    assert ShiftState.decode(raw) == ShiftState(1, 1234, 56)


def test_other_replies():
    assert Reply(103).encode() == hexbytes("55 67 00")
    assert Reply.decode(hexbytes("55 00 00 AA")) == Reply(0, 0, b"\xAA")
    assert PaymentReply.decode(PaymentReply(100, 250).encode()) == PaymentReply(100, 250)
    assert PaymentReply(100, 250).encode() == hexbytes("55 00 00 00 00 00 01 00 00 00 00 02 50")
    code = StateCode(2, 0, StateCodeFlags.NO_PAPER)
    assert code.encode() == hexbytes("55 02 01") and StateCode.decode(code.encode()) == code
    info = DocumentInfo(3, 123, 2918241905, datetime(2026, 11, 23, 19, 4, 5), 5, 7, 1, 1100)
    assert len(info.encode()) == 27 and DocumentInfo.decode(info.encode()) == info
    registration = RegistrationInfo("0000000001012345", "7707083893", 0b100011)
    assert RegistrationInfo.decode(registration.encode()) == registration
