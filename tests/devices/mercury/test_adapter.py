"""The Mercury adapter against the Mercury service emulator over real HTTP (and as a real process).

After every operation the emulator's journal is read back: each fiscal document exactly once, none lost.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from kktbridge.devices.errors import DeviceError, LinkError, OutcomeUnknown
from kktbridge.devices.mercury import MercuryRegister
from kktbridge.devices.mercury.protocol import error_code
from kktbridge.emulators.control import send_control
from kktbridge.emulators.fncore import read_journal
from kktbridge.emulators.mercury.server import MercuryEmulator
from kktbridge.fiscal import (
    AgentInfo,
    AgentType,
    BridgeError,
    Buyer,
    CashOperation,
    CashOperationKind,
    DocumentKind,
    Expected,
    IndustryRequisite,
    Item,
    MarkingCode,
    Measure,
    PaymentKind,
    PaymentObject,
    Payments,
    PlannedStatus,
    Quantity,
    Receipt,
    ReceiptQr,
    ReceiptType,
    Supplier,
    TaxationSystem,
    ValidationFailed,
    VatRate,
)

from tests.support import CASHIER, Journal, example_receipt_reaches_the_register_whole, receipt

MARK = b"0104600439931256215ABCdef\x1d91EE06\x1d92bXlSZWxhc3Q="


class Bench(Journal):
    """An emulator and an adapter connected to it."""

    def __init__(self, emulator: MercuryEmulator, register: MercuryRegister, journal: Path) -> None:
        super().__init__(journal)
        self.emulator = emulator
        self.register = register


async def start(tmp_path: Path, **options) -> Bench:
    register_options = {key: options.pop(key) for key in ("timeout", "serial_number", "model_asked")
                        if key in options}
    emulator = MercuryEmulator(state_path=tmp_path / "fn.json", journal_path=tmp_path / "journal.jsonl",
                               paper_path=tmp_path / "paper.txt", fsync=False, **options)
    await emulator.serve_http("127.0.0.1", 0)
    model = register_options.pop("model_asked", emulator.model)
    register = MercuryRegister("COM2", url=emulator.url, model=model, **register_options)
    return Bench(emulator, register, tmp_path / "journal.jsonl")


@pytest.fixture
async def bench(tmp_path):
    bench = await start(tmp_path)
    await bench.register.connect()
    yield bench
    await bench.register.close()
    await bench.emulator.close()


async def test_shift_sale_return_purchase_reports(bench):
    reg = bench.register
    opened = await reg.open_shift(CASHIER)
    assert opened.kind is DocumentKind.OPEN_SHIFT and opened.fd_number == 1 and opened.shift_number == 1
    assert opened.fn_number == "9999078900012345" and opened.reg_number == "0000000001012345"
    assert bench.documents("open_shift")[0]["cashier"] == {"name": CASHIER.name, "inn": CASHIER.inn}

    sale = await reg.fiscalize(receipt(12200, 500, cash=20000))
    assert (sale.fd_number, sale.receipt_number, sale.total, sale.receipt_type) == (2, 1, 12700, ReceiptType.SALE)
    qr = ReceiptQr.parse(sale.qr)
    assert qr.total == 12700 and qr.fn_number == sale.fn_number and qr.fiscal_sign == sale.fiscal_sign
    journal_sale = bench.documents("receipt")[-1]
    assert journal_sale["fd"] == 2 and journal_sale["total"] == 12700 and journal_sale["change"] == 7300
    assert journal_sale["payments"] == {"cash": 20000} and journal_sale["fp"] == sale.fiscal_sign
    assert journal_sale["taxation"] == "OSN" and journal_sale["cashier"] == {"name": CASHIER.name,
                                                                             "inn": CASHIER.inn}
    assert [i["name"] for i in journal_sale["items"]] == ["Товар 1", "Товар 2"]
    assert journal_sale["vat"] == {"11": VatRate.VAT22.amount_of(12700)}

    back = await reg.fiscalize(receipt(500, type=ReceiptType.SALE_RETURN))
    assert back.receipt_type is ReceiptType.SALE_RETURN and back.fd_number == 3
    bought = await reg.fiscalize(receipt(300, type=ReceiptType.PURCHASE))
    assert bought.fd_number == 4 and bench.documents("receipt")[-1]["type"] == 3
    bought_back = await reg.fiscalize(receipt(300, type=ReceiptType.PURCHASE_RETURN))
    assert bought_back.receipt_type is ReceiptType.PURCHASE_RETURN and bench.documents("receipt")[-1]["type"] == 4
    card = await reg.fiscalize(receipt(1000, electronic=1000))
    assert bench.documents("receipt")[-1]["payments"] == {"electronic": 1000}
    assert bench.emulator.core.cash == 12700 - 500 - 300 + 300

    await reg.x_report(CASHIER)
    assert bench.lines("x_report")[-1]["receipts"] == 5
    status = await reg.status()
    assert status.shift_open and status.last_fd_number == card.fd_number and not status.receipt_open
    assert status.fn_number == "9999078900012345" and status.inn == "7707083893" and status.paper
    assert status.model == "Меркурий-185Ф" and status.serial == "00106100000001"
    assert status.shift_opened_at is not None and not status.shift_expired

    closed = await reg.close_shift(CASHIER)
    assert closed.kind is DocumentKind.CLOSE_SHIFT and closed.fd_number == 7
    assert bench.documents("close_shift")[-1]["receipts"] == 5
    assert [d["fd"] for d in bench.documents()] == [1, 2, 3, 4, 5, 6, 7]
    assert not (await reg.status()).shift_open
    assert await reg.last_document() == closed
    assert len(bench.emulator.service.sessions) == 1  # one service session, reused throughout


async def test_receipt_opens_the_shift_itself_and_costs_few_requests(bench):
    before = bench.emulator.requests
    result = await bench.register.fiscalize(receipt(1000, 2000, 3000))
    assert [d["doc"] for d in bench.documents()] == ["open_shift", "receipt"]
    assert result.fd_number == 2 and result.receipt_number == 1
    # GetStatus, OpenShift, OpenCheck, 3 × AddGoods, CloseCheck
    assert bench.emulator.requests - before == 7
    before = bench.emulator.requests
    await bench.register.fiscalize(receipt(1000))
    assert bench.emulator.requests - before == 4  # GetStatus, OpenCheck, AddGoods, CloseCheck


async def test_checkpoint_comes_right_before_close_check(bench):
    seen = []

    async def checkpoint(last_fd: int) -> None:
        core = bench.emulator.core
        seen.append((last_fd, core.receipt is not None and len(core.receipt.items), core.last_fd_number))

    await bench.register.open_shift(checkpoint=checkpoint)
    result = await bench.register.fiscalize(receipt(100, 200), checkpoint=checkpoint)
    await bench.register.close_shift(checkpoint=checkpoint)
    assert seen == [(0, False, 0), (1, 2, 1), (2, False, 2)]
    assert result.fd_number == 2


async def test_rich_receipt_reaches_the_register_whole(bench):
    await example_receipt_reaches_the_register_whole(bench)


async def test_marked_item_with_mc_info(bench):
    shoes = Item(name="Туфли женские", price=450000, quantity=Quantity.parse("1"), vat=VatRate.VAT22,
                 payment_object=PaymentObject.COMMODITY_MARKED,
                 marking=MarkingCode(MARK, processing_mode=0, planned_status=PlannedStatus.PIECE_SOLD))
    cheese = Item(name="Сыр", price=120000, quantity=Quantity.parse("0.5"), vat=VatRate.VAT10,
                  payment_object=PaymentObject.COMMODITY_MARKED, measure=Measure.KILOGRAM,
                  marking=MarkingCode(MARK, planned_status=PlannedStatus.MEASURED_SOLD, fraction="1/2"))
    sale = Receipt(ReceiptType.SALE, (shoes, cheese), Payments(electronic=510000), TaxationSystem.OSN, CASHIER)
    result = await bench.register.fiscalize(sale)
    items = bench.documents("receipt")[-1]["items"]
    assert result.total == 510000
    assert items[0]["marking"] == {"code": base64.b64encode(MARK).decode(), "type": None, "mode": 0, "status": 1}
    assert items[0]["object"] == 33 and items[1]["measure"] == 11 and items[1]["quantity"] == "0.5"
    assert items[1]["marking"]["status"] == 2


async def test_cash_in_out_and_not_enough_cash(bench):
    reg = bench.register
    await reg.open_shift()
    await reg.cash_operation(CashOperation(CashOperationKind.CASH_IN, 50000, CASHIER))
    await reg.cash_operation(CashOperation(CashOperationKind.CASH_OUT, 20000))
    assert [(r["doc"], r["amount"]) for r in bench.lines("cash_in") + bench.lines("cash_out")] == [
        ("cash_in", 50000), ("cash_out", 20000)]
    assert bench.lines("cash_in")[0]["cashier"] == {"name": CASHIER.name, "inn": CASHIER.inn}
    with pytest.raises(DeviceError) as info:
        await reg.cash_operation(CashOperation(CashOperationKind.CASH_OUT, 30001))
    assert info.value.code == "not_enough_cash" and info.value.device_code == error_code("not_enough_cash")
    assert not info.value.retryable and "наличных" in info.value.text()
    assert bench.emulator.core.cash == 30000 and len(bench.documents()) == 1
    assert "ВНЕСЕНИЕ" in bench.emulator.paper.text() and "ВЫПЛАТА" in bench.emulator.paper.text()


async def test_return_without_enough_cash_leaves_nothing(bench):
    reg = bench.register
    await reg.open_shift()
    with pytest.raises(DeviceError) as info:
        await reg.fiscalize(receipt(5000, type=ReceiptType.SALE_RETURN))
    assert info.value.code == "not_enough_cash"
    assert bench.documents("receipt") == [] and not (await reg.status()).receipt_open
    assert (await reg.fiscalize(receipt(5000, electronic=5000, type=ReceiptType.SALE_RETURN))).total == 5000


async def test_drawer_and_text(bench):
    reg = bench.register
    await reg.open_drawer()
    await reg.print_text(["Слип банка", "", "ОДОБРЕНО"])
    assert bench.emulator.service.drawer_opened == 1
    assert "Слип банка\n\nОДОБРЕНО" in bench.emulator.paper.text()
    bench.emulator.faults.no_paper = True
    with pytest.raises(DeviceError) as info:
        await reg.print_text(["ещё"])
    assert info.value.code == "no_paper"
    await reg.open_drawer()  # the drawer needs no paper
    assert bench.emulator.service.drawer_opened == 2


async def test_cancel_and_last_document(bench):
    reg = bench.register
    assert await reg.last_document() is None
    assert not await reg.cancel_receipt()
    opened = await reg.open_shift()
    assert await reg.last_document() == opened
    bench.emulator.core.begin_receipt(ReceiptType.SALE)  # a receipt left open by someone else
    assert (await reg.status()).receipt_open
    assert await reg.cancel_receipt()
    assert not (await reg.status()).receipt_open


async def test_a_receipt_left_open_is_cancelled_first(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.core.begin_receipt(ReceiptType.SALE)
    bench.emulator.core.add_item(Item("Чужой", 100, Quantity.parse("1"), VatRate.NONE))
    result = await reg.fiscalize(receipt(1000))
    assert [i["name"] for i in bench.documents("receipt")[-1]["items"]] == ["Товар 1"]
    assert result.total == 1000


async def test_paper_out_mid_receipt_leaves_nothing(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.faults.no_paper = True
    with pytest.raises(DeviceError) as info:
        await reg.fiscalize(receipt(1000, 2000))
    assert info.value.code == "no_paper" and info.value.device_code == error_code("no_paper")
    assert info.value.retryable and "Нет бумаги" in info.value.text()
    assert bench.documents("receipt") == [] and not (await reg.status()).receipt_open
    assert not (await reg.status()).paper
    bench.emulator.faults.no_paper = False
    result = await reg.fiscalize(receipt(1000, 2000))
    assert [d["fd"] for d in bench.documents("receipt")] == [result.fd_number]


async def test_paper_out_while_printing_a_fiscalized_receipt_returns_it(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.faults.paper_out_at_close = True
    result = await reg.fiscalize(receipt(1000))
    assert result.kind is DocumentKind.RECEIPT and result.total == 1000
    assert [d["fd"] for d in bench.documents("receipt")] == [result.fd_number]
    assert not (await reg.status()).paper


async def test_cover_open(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.faults.cover_open = True
    with pytest.raises(DeviceError) as info:
        await reg.fiscalize(receipt(1000))
    assert info.value.code == "cover_open" and info.value.device_code == error_code("cover_open")
    assert bench.documents("receipt") == [] and not (await reg.status()).receipt_open


async def test_electronic_receipt_needs_no_paper(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.faults.no_paper = True
    sale = Receipt(ReceiptType.SALE, receipt(1000).items, Payments(electronic=1000), TaxationSystem.OSN,
                   CASHIER, Buyer(contact="buyer@example.com"), electronically=True)
    result = await reg.fiscalize(sale)
    doc = bench.documents("receipt")[-1]
    assert doc["fd"] == result.fd_number and doc["electronically"] and doc["buyer"] == {"contact": "buyer@example.com"}


async def test_shift_over_24_hours_is_refused_clearly(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.core.advance_clock(timedelta(hours=24, minutes=1).total_seconds())
    assert (await reg.status()).shift_expired
    with pytest.raises(DeviceError) as info:
        await reg.fiscalize(receipt(1000))
    assert info.value.code == "shift_expired" and "24" in info.value.ru and "24" in info.value.en
    assert bench.documents("receipt") == [] and not (await reg.status()).receipt_open
    with pytest.raises(DeviceError) as cash:
        await reg.cash_operation(CashOperation(CashOperationKind.CASH_IN, 100))
    assert cash.value.code == "shift_expired"
    await reg.close_shift()
    result = await reg.fiscalize(receipt(1000))
    assert result.shift_number == 2


async def test_service_restart_between_commands_renews_the_session(bench):
    reg = bench.register
    await reg.open_shift()
    old = reg._key
    bench.emulator.restart_service()
    result = await reg.fiscalize(receipt(1000))
    assert reg._key != old and list(bench.emulator.service.sessions) == [reg._key]
    assert [d["fd"] for d in bench.documents("receipt")] == [result.fd_number]


@pytest.mark.parametrize("command", ["OpenCheck", "AddGoods", "CloseCheck", "GetStatus", "OpenShift"])
async def test_service_restart_mid_receipt_is_transparent(bench, command):
    reg = bench.register
    if command != "OpenShift":
        await reg.open_shift()
    bench.emulator.service.restart_at = command
    result = await reg.fiscalize(receipt(1000, 2000))
    assert bench.emulator.service.restart_at is None  # it did fire
    assert [d["fd"] for d in bench.documents("receipt")] == [result.fd_number]
    assert [i["name"] for i in bench.documents("receipt")[0]["items"]] == ["Товар 1", "Товар 2"]
    assert len(bench.emulator.service.sessions) == 1


async def test_lost_answer_to_close_check_is_found_in_the_fn_by_content(bench):
    """Power loss right after the receipt is fiscalized: the answer never comes, the service restarts (every
    session gone). The adapter says the outcome is unknown; the sales journal gives the receipt back with its
    payments and lines, and the shared rule recognises it."""
    reg = bench.register
    before = (await reg.open_shift()).fd_number
    bench.emulator.faults.power_loss_at = "after:CloseCheck"
    sent = receipt(1000)
    with pytest.raises(OutcomeUnknown):
        await reg.fiscalize(sent)
    assert bench.emulator.restarts == 1
    (made,) = await reg.documents_since(before)
    (printed,) = bench.documents("receipt")
    assert made.fd_number == printed["fd"] == before + 1 and made.result.fiscal_sign == printed["fp"]
    assert made.payments == {PaymentKind.CASH: 1000} and len(made.lines) == 1
    assert Expected.of_receipt(sent).matches(made)
    assert not Expected.of_receipt(receipt(2000)).matches(made)
    assert await reg.documents_since(before + 1) == []


async def test_lost_request_to_close_check_raises_outcome_unknown_and_loses_only_the_open_receipt(bench):
    reg = bench.register
    before = (await reg.open_shift()).fd_number
    bench.emulator.faults.power_loss_at = "before:CloseCheck"
    with pytest.raises(OutcomeUnknown):
        await reg.fiscalize(receipt(1000))
    assert (await reg.last_document()).fd_number == before
    assert not (await reg.status()).receipt_open
    result = await reg.fiscalize(receipt(1000))
    assert [d["fd"] for d in bench.documents("receipt")] == [result.fd_number]


async def test_power_loss_before_a_line_cancels_the_receipt(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.faults.power_loss_at = "after:AddGoods"
    with pytest.raises(OutcomeUnknown):
        await reg.fiscalize(receipt(1000, 2000))
    assert not (await reg.status()).receipt_open and bench.documents("receipt") == []


async def test_the_status_names_the_document_printing(bench):
    bench.emulator.faults.print_latency = 0.3
    opening = asyncio.create_task(bench.register.open_shift())
    while bench.emulator.status()["printing"] != "OpenShift":  # what the control port shows meanwhile
        assert not opening.done()
        await asyncio.sleep(0.01)
    await opening
    assert bench.emulator.status()["printing"] is None


async def test_slow_printing_past_the_timeout_is_reconciled(tmp_path):
    bench = await start(tmp_path, timeout=0.25)
    bench.emulator.faults.print_latency = 0.6
    try:
        with pytest.raises(OutcomeUnknown):  # OpenShift and CloseCheck both time out
            await bench.register.fiscalize(receipt(1000))
        documents = await bench.register.documents_since(0)  # the service serves it once it has printed
        assert [d.result.kind for d in documents] == [DocumentKind.OPEN_SHIFT, DocumentKind.RECEIPT]
        assert Expected.of_receipt(receipt(1000)).matches(documents[1])
        assert [d["doc"] for d in bench.documents()] == ["open_shift", "receipt"]
    finally:
        await bench.register.close()
        await bench.emulator.close()


async def test_quantity_the_service_cannot_carry_is_refused_before_the_register_is_touched(bench):
    before = bench.emulator.requests
    bad = Receipt(ReceiptType.SALE, (Item("Гвозди", 100, Quantity.parse("1.00001"), VatRate.NONE),),
                  Payments(cash=100))
    with pytest.raises(ValidationFailed) as info:
        await bench.register.fiscalize(bad)
    assert info.value.fields[0].path == "items[0].quantity" and info.value.fields[0].code == "quantity_precision"
    assert bench.emulator.requests == before


async def test_no_service_is_a_link_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    register = MercuryRegister("COM2", url=f"http://127.0.0.1:{port}/api.json", timeout=2)
    with pytest.raises(LinkError) as info:
        await register.connect()
    assert info.value.code == "link" and info.value.retryable
    await register.close()


async def test_wrong_path_is_a_link_error(bench):
    register = MercuryRegister("COM2", url=bench.emulator.url.replace("api.json", "nothing"))
    with pytest.raises(LinkError) as info:
        await register.connect()
    assert info.value.device_code == 404
    await register.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(bench.emulator.url.replace("api.json", "")) as response:
            assert "Mercury" in await response.text()


async def test_wrong_serial_number_or_model(tmp_path):
    bench = await start(tmp_path, serial_number="00000000000000")
    with pytest.raises(LinkError) as info:
        await bench.register.connect()
    assert info.value.device_code == error_code("port_unavailable")
    await bench.register.close()
    other = MercuryRegister("COM2", url=bench.emulator.url, model="119F")
    with pytest.raises(LinkError):
        await other.connect()
    await other.close()
    await bench.emulator.close()


def test_options_and_config_errors():
    register = MercuryRegister.from_options({"port_name": "COM3", "baudrate": "57600", "model": "119F",
                                             "serial_number": 106100000001, "timeout": 5,
                                             "url": "http://10.0.0.2:50010/api.json"})
    assert (register.port_name, register.baudrate, register.model) == ("COM3", 57600, "119F")
    assert (register.serial_number, register.timeout, register.url) == ("106100000001", 5.0,
                                                                       "http://10.0.0.2:50010/api.json")
    assert MercuryRegister.from_options({"port_name": "USB"}).url == "http://127.0.0.1:50010/api.json"
    with pytest.raises(BridgeError) as info:
        MercuryRegister.from_options({})
    assert info.value.code == "config"
    with pytest.raises(BridgeError):
        MercuryRegister("COM1", model="180F")


# --- the emulator as a process -------------------------------------------------------------------------------

# Until `kktbridge emulate mercury` is wired into kktbridge/cli.py, the emulator's own cli module is run directly;
# after wiring, `emulator_process("mercury", ...)` from conftest does the same.
_RUN = ("import argparse, sys; from kktbridge.emulators.mercury.cli import add_arguments, run; "
        "parser = argparse.ArgumentParser(); add_arguments(parser); sys.exit(run(parser.parse_args()))")


@pytest.fixture
def mercury_process(emulator_process):
    """`kktbridge emulate mercury ...` as a child process (the shared fixture of tests/conftest.py)."""
    return lambda *args: emulator_process("mercury", *args)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_power_loss_after_close_check_then_restart(tmp_path, mercury_process):
    port = free_port()
    files = ["--state", str(tmp_path / "fn.json"), "--journal", str(tmp_path / "j.jsonl"),
             "--http", f"127.0.0.1:{port}"]
    first = mercury_process(*files, "--fault", 'power_loss_at="after:CloseCheck"')
    assert first.info == {"kind": "mercury", "url": f"http://127.0.0.1:{port}/api.json", "control": None,
                          "journal": str(tmp_path / "j.jsonl"), "fn_number": first.info["fn_number"]}
    register = MercuryRegister("COM2", url=first.info["url"], timeout=5)
    await register.connect()
    before = (await register.open_shift()).fd_number
    with pytest.raises(OutcomeUnknown):
        await register.fiscalize(receipt(1000))
    assert first.wait_dead() == 3
    assert mercury_process(*files).info["fn_number"] == first.info["fn_number"]  # the same --state, the same FN
    await register.connect()
    last = await register.last_document()
    assert last.fd_number == before + 1 and last.kind is DocumentKind.RECEIPT and last.total == 1000
    assert last.receipt_type is ReceiptType.SALE
    assert [r["fd"] for r in read_journal(tmp_path / "j.jsonl") if r["doc"] == "receipt"] == [before + 1]
    assert (await register.fiscalize(receipt(2000))).fd_number == before + 2
    await register.close()


async def test_power_loss_before_close_check_loses_only_the_open_receipt(tmp_path, mercury_process):
    port = free_port()
    files = ["--state", str(tmp_path / "fn.json"), "--journal", str(tmp_path / "j.jsonl"),
             "--http", f"127.0.0.1:{port}"]
    mercury_process(*files, "--fault", 'power_loss_at="before:CloseCheck"')
    register = MercuryRegister("COM2", url=f"http://127.0.0.1:{port}/api.json", timeout=5)
    before = (await register.open_shift()).fd_number  # connects by itself
    with pytest.raises(OutcomeUnknown):
        await register.fiscalize(receipt(1000))
    mercury_process(*files)
    assert (await register.last_document()).fd_number == before
    status = await register.status()
    assert not status.receipt_open and status.shift_open
    result = await register.fiscalize(receipt(1000))
    assert [r["fd"] for r in read_journal(tmp_path / "j.jsonl") if r["doc"] == "receipt"] == [result.fd_number]
    await register.close()


async def test_cli_control_port_restarts_the_service_and_flips_faults(tmp_path, mercury_process):
    process = mercury_process("--http", "127.0.0.1:0", "--control", "127.0.0.1:0", "--journal",
                              str(tmp_path / "j.jsonl"), "--model", "119F", "--no-fsync")
    assert process.info["url"].startswith("http://127.0.0.1:") and process.info["url"].endswith("/api.json")
    host, _, port = process.info["control"].rpartition(":")
    register = MercuryRegister("USB", url=process.info["url"], model="119F")
    await register.connect()
    assert (await register.status()).model == "Меркурий-119Ф"
    answer = await send_control(host, int(port), {"service_restart": True})
    assert answer["ok"] and answer["sessions"] == 0
    await register.open_shift()  # a new session, transparently
    await send_control(host, int(port), {"faults": {"no_paper": True}})
    with pytest.raises(DeviceError) as info:
        await register.fiscalize(receipt(1000))
    assert info.value.code == "no_paper"
    answer = await send_control(host, int(port), {"faults": {"no_paper": False}, "advance_clock": 90000})
    assert answer["faults"]["no_paper"] is False and answer["sessions"] == 1
    with pytest.raises(DeviceError) as expired:
        await register.fiscalize(receipt(1000))
    assert expired.value.code == "shift_expired"
    await register.close()


# --- the same receipt on ATOL and on Mercury -----------------------------------------------------------------


def rich_receipt() -> Receipt:
    items = (
        Item("Молоко 3,2%", 8990, Quantity.parse("2"), VatRate.VAT10),
        Item("Сыр весовой", 65000, Quantity.parse("0.355"), VatRate.VAT10, measure=Measure.KILOGRAM),
        Item("Доставка", 30000, Quantity.parse("1"), VatRate.VAT22, payment_object=PaymentObject.SERVICE),
        Item("Туфли", 250000, Quantity.parse("1"), VatRate.VAT22, payment_object=PaymentObject.COMMODITY_MARKED,
             marking=MarkingCode(MARK, processing_mode=0, planned_status=PlannedStatus.PIECE_SOLD)),
        Item("Билет", 50000, Quantity.parse("1"), VatRate.NONE, payment_object=PaymentObject.SERVICE,
             agent=AgentInfo(AgentType.PAYING_AGENT, paying_phones=("+79001234567",)),
             supplier=Supplier(name="ООО Театр", inn="7707083893", phones=("+74950000000",))),
        Item("Лекарство", 33333, Quantity.parse("3"), VatRate.VAT10_110, additional_info="серия 42",
             industry=(IndustryRequisite("020", "01.09.2023", "123", "rx=1"),)),
        Item("Вода", 4999, Quantity.parse("1.5"), VatRate.VAT22_122, measure=Measure.LITER),
    )
    total = sum(item.amount for item in items)
    return Receipt(ReceiptType.SALE, items, Payments(cash=total - 200000 + 10000, electronic=200000),
                   TaxationSystem.OSN, CASHIER, Buyer(contact="buyer@example.com"))


async def test_the_same_receipt_on_atol_and_mercury_gives_the_same_fiscal_data(tmp_path):
    from kktbridge.devices.atol.adapter import AtolRegister
    from kktbridge.emulators.atol.server import AtolEmulator

    sale = rich_receipt()
    (tmp_path / "atol").mkdir()
    (tmp_path / "mercury").mkdir()
    atol = AtolEmulator(journal_path=tmp_path / "atol" / "j.jsonl", fsync=False)
    host, port = await atol.serve_tcp("127.0.0.1", 0)
    atol_register = AtolRegister.tcp(host, port)
    await atol_register.connect()
    mercury = await start(tmp_path / "mercury")
    try:
        on_atol = await atol_register.fiscalize(sale)
        on_mercury = await mercury.register.fiscalize(sale)
    finally:
        await atol_register.close()
        await atol.close()
        await mercury.register.close()
        await mercury.emulator.close()
    atol_doc = [r for r in read_journal(tmp_path / "atol" / "j.jsonl") if r["doc"] == "receipt"][0]
    mercury_doc = mercury.documents("receipt")[0]
    assert atol_doc["total"] == mercury_doc["total"] == sale.total == on_atol.total == on_mercury.total
    assert atol_doc["vat"] == mercury_doc["vat"] == {str(int(k)): v for k, v in sale.vat_totals().items()}
    assert atol_doc["items"] == mercury_doc["items"] and len(mercury_doc["items"]) == 7
    for key in ("type", "taxation", "payments", "change", "cashier", "buyer", "receipt", "shift"):
        assert atol_doc[key] == mercury_doc[key], key
    qr_atol, qr_mercury = ReceiptQr.parse(on_atol.qr), ReceiptQr.parse(on_mercury.qr)
    assert (qr_atol.total, qr_atol.receipt_type) == (qr_mercury.total, qr_mercury.receipt_type) == (
        sale.total, ReceiptType.SALE)
    assert on_atol.receipt_number == on_mercury.receipt_number == 1
