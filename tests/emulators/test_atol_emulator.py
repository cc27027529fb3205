"""The ATOL emulator at the byte level: modes and passwords, and the v3 task buffer seen from a raw socket."""

import asyncio

import pytest

from kktbridge.devices.atol import transport_v3 as v3
from kktbridge.devices.atol.commands import UNVERIFIED, CommandRequest, DocumentInfo, ItemLine, Mode, Reply
from kktbridge.emulators.atol.device import AtolDevice
from kktbridge.emulators.atol.server import AtolEmulator
from kktbridge.emulators.fncore import FiscalCore
from kktbridge.fiscal import PaymentKind, ReceiptType


def error_of(reply: bytes) -> int:
    return Reply.decode(reply).error


def test_modes_and_passwords():
    device = AtolDevice(FiscalCore())
    assert error_of(device.handle(CommandRequest.open_shift())) == 102  # not in registration mode
    assert error_of(device.handle(CommandRequest.enter_mode(Mode.REGISTRATION, 31))) == 140
    assert error_of(device.handle(CommandRequest.enter_mode(Mode.REGISTRATION, 30))) == 0
    assert error_of(device.handle(CommandRequest.z_report())) == 102  # Z belongs to mode 3
    assert error_of(device.handle(CommandRequest.open_shift())) == 0
    assert error_of(device.handle(CommandRequest.open_shift())) == 156
    assert error_of(device.handle(CommandRequest.open_receipt(ReceiptType.SALE))) == 0
    assert error_of(device.handle(CommandRequest.leave_mode())) == 155
    assert error_of(device.handle(CommandRequest.close_receipt(PaymentKind.CASH, 0))) == 244  # no items
    assert error_of(device.handle(CommandRequest.cancel_receipt())) == 0
    assert error_of(device.handle(CommandRequest.cancel_receipt())) == 154
    assert error_of(device.handle(CommandRequest.leave_mode())) == 0
    assert error_of(device.handle(bytes.fromhex("0000EF"))) == 242
    assert error_of(device.handle(CommandRequest.device_state(password=1))) == 140
    assert device.handle(CommandRequest.device_type(password=1)) == bytes((140,))


def test_shift_counters_by_0x91_and_an_archive_that_cannot_be_read():
    """0x91 (UNVERIFIED["91_*"]): the shift's receipts of a type and its payments by type and kind, as BCD; with
    `documents_unreadable` the FN answers for its last document only, never for one asked by number."""
    device = AtolDevice(FiscalCore())
    for command in (CommandRequest.enter_mode(Mode.REGISTRATION, 30), CommandRequest.open_shift(),
                    CommandRequest.open_receipt(ReceiptType.SALE),
                    CommandRequest.register_item(ItemLine("Чай", 1100, 1000, 6)),
                    CommandRequest.payment(PaymentKind.ELECTRONIC, 100),
                    CommandRequest.close_receipt(PaymentKind.CASH, 1000)):
        assert error_of(device.handle(command)) == 0
    assert CommandRequest.read_register(3, 1, 1) == bytes.fromhex("0000 91 03 01 01")
    assert device.handle(CommandRequest.read_register(3, 1, 1)) == bytes.fromhex("5500 00000000001000")  # cash
    assert device.handle(CommandRequest.read_register(3, 1, 2)) == bytes.fromhex("5500 00000000000100")
    assert device.handle(CommandRequest.read_register(3, 2, 1)) == bytes.fromhex("5500 00000000000000")
    assert device.handle(CommandRequest.read_register(6, 1, 0)) == bytes.fromhex("5500 00000000000001")
    assert error_of(device.handle(CommandRequest.read_register(99, 1, 0))) == 231
    last = device.core.last_fd_number
    assert error_of(device.handle(CommandRequest.document(last))) == 0
    device.faults.documents_unreadable = True
    assert error_of(device.handle(CommandRequest.document(last))) == UNVERIFIED["A4_NO_DOCUMENT"]
    assert error_of(device.handle(CommandRequest.document_data(last))) == UNVERIFIED["A4_NO_DOCUMENT"]
    assert DocumentInfo.decode(device.handle(CommandRequest.document(0))).fd_number == last  # the last one


class RawClient:
    """A host that speaks v3 frames by hand, to see exactly what the emulator answers."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.decoder = v3.FrameDecoder()

    async def send(self, packet_id: int, data: bytes) -> None:
        self.writer.write(v3.encode_frame(packet_id, data))
        await self.writer.drain()

    async def frame(self) -> v3.Frame:
        while True:
            for event in self.decoder.feed(await asyncio.wait_for(self.reader.read(4096), 5)):
                return event

    async def ask(self, packet_id: int, request) -> v3.Reply:
        await self.send(packet_id, request.to_bytes())
        frame = await self.frame()
        assert frame.packet_id == packet_id
        return v3.parse_reply(frame.data)


@pytest.fixture
async def raw():
    emulator = AtolEmulator()
    host, port = await emulator.serve_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    yield emulator, RawClient(reader, writer)
    writer.close()
    await emulator.close()


async def test_task_buffer(raw):
    emulator, client = raw
    reply = await client.ask(1, v3.Add(5, CommandRequest.device_state()))
    assert reply.status is v3.TaskStatus.RESULT and len(reply.payload) == 30
    assert (await client.ask(2, v3.Add(5, CommandRequest.device_state()))).status is v3.TaskStatus.ALREADY_EXISTS
    assert (await client.ask(3, v3.Req(5))).payload == reply.payload  # the result stays until acknowledged
    assert (await client.ask(4, v3.Ack(5))).status is v3.TaskStatus.RESULT
    assert (await client.ask(5, v3.Req(5))).status is v3.TaskStatus.NOT_FOUND
    failed = await client.ask(6, v3.Add(6, CommandRequest.open_shift()))
    assert failed.status is v3.TaskStatus.ERROR and Reply.decode(failed.payload).error == 102
    await client.ask(7, v3.Abort())
    assert (await client.ask(8, v3.Req(6))).status is v3.TaskStatus.NOT_FOUND


async def test_slow_printing_reports_progress(raw):
    emulator, client = raw
    for packet_id, task_id, body in [(1, 1, CommandRequest.enter_mode(Mode.REGISTRATION))]:
        assert (await client.ask(packet_id, v3.Add(task_id, body))).status is v3.TaskStatus.RESULT
    emulator.faults.print_latency = 0.3
    assert (await client.ask(2, v3.Add(2, CommandRequest.open_shift()))).status is v3.TaskStatus.PENDING
    assert (await client.ask(3, v3.Req(2))).status is v3.TaskStatus.IN_PROGRESS
    assert emulator.status()["printing"] == "9a"  # what the control port shows: the shift opening prints
    await asyncio.sleep(0.5)
    done = await client.ask(4, v3.Req(2))
    assert done.status is v3.TaskStatus.RESULT and emulator.core.shift_open and emulator.status()["printing"] is None


async def test_retransmission(raw):
    emulator, client = raw
    first = await client.ask(9, v3.Add(1, CommandRequest.device_state()))
    await client.send(9, b"")  # "say that again"
    again = await client.frame()
    assert again.packet_id == 9 and v3.parse_reply(again.data) == first
    corrupt = bytearray(v3.encode_frame(10, v3.Req(1).to_bytes()))
    corrupt[-1] ^= 0x55
    client.writer.write(bytes(corrupt))
    answer = await client.frame()
    assert answer.packet_id == 10 and answer.is_retransmit_request  # the register asks us to resend
