"""The ATOL adapter against the ATOL emulator, over TCP and real pseudo-terminals (v3 and v2).

After every operation the emulator's journal is read back: each fiscal document exactly once, none lost.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from kktbridge.devices.atol.adapter import AtolRegister
from kktbridge.devices.errors import DeviceError, OutcomeUnknown
from kktbridge.emulators.atol.server import AtolEmulator
from kktbridge.emulators.fncore import read_journal
from kktbridge.fiscal import CashOperation, CashOperationKind, DocumentKind, ReceiptQr, ReceiptType, VatRate

from tests.support import CASHIER, Journal, example_receipt_reaches_the_register_whole, receipt


class Bench(Journal):
    """An emulator and an adapter connected to it."""

    def __init__(self, emulator: AtolEmulator, register: AtolRegister, journal: Path) -> None:
        super().__init__(journal)
        self.emulator = emulator
        self.register = register


@pytest.fixture(params=["tcp", "pty-v3", "pty-v2"])
async def bench(request, tmp_path):
    if request.param.startswith("pty"):
        request.getfixturevalue("posix_only")
    emulator = AtolEmulator(state_path=tmp_path / "fn.json", journal_path=tmp_path / "journal.jsonl",
                            paper_path=tmp_path / "paper.txt", fsync=False)
    if request.param == "tcp":
        host, port = await emulator.serve_tcp("127.0.0.1", 0)
        register = AtolRegister.tcp(host, port)
    else:
        protocol = request.param.split("-")[1]
        register = AtolRegister.serial(emulator.open_pty(protocol), 115200, protocol=protocol)
    await register.connect()
    yield Bench(emulator, register, tmp_path / "journal.jsonl")
    await register.close()
    await emulator.close()


async def test_shift_sale_return_purchase_reports(bench):
    reg = bench.register
    opened = await reg.open_shift(CASHIER)
    assert opened.kind is DocumentKind.OPEN_SHIFT and opened.fd_number == 1 and opened.shift_number == 1
    assert bench.documents("open_shift")[0]["cashier"] == {"name": CASHIER.name, "inn": CASHIER.inn}

    sale = await reg.fiscalize(receipt(12200, 500, cash=20000))
    assert (sale.fd_number, sale.receipt_number, sale.total, sale.receipt_type) == (2, 1, 12700, ReceiptType.SALE)
    qr = ReceiptQr.parse(sale.qr)
    assert qr.total == 12700 and qr.fn_number == sale.fn_number and qr.fiscal_sign == sale.fiscal_sign
    journal_sale = bench.documents("receipt")[-1]
    assert journal_sale["fd"] == 2 and journal_sale["total"] == 12700 and journal_sale["change"] == 7300
    assert journal_sale["payments"] == {"cash": 20000} and journal_sale["fp"] == sale.fiscal_sign
    assert [i["name"] for i in journal_sale["items"]] == ["Товар 1", "Товар 2"]
    assert journal_sale["vat"] == {"11": VatRate.VAT22.amount_of(12700)}

    back = await reg.fiscalize(receipt(500, type=ReceiptType.SALE_RETURN))
    assert back.receipt_type is ReceiptType.SALE_RETURN and back.fd_number == 3
    bought = await reg.fiscalize(receipt(300, type=ReceiptType.PURCHASE))
    assert bought.fd_number == 4 and bench.documents("receipt")[-1]["type"] == 3
    card = await reg.fiscalize(receipt(1000, electronic=1000))
    assert bench.documents("receipt")[-1]["payments"] == {"electronic": 1000}

    await reg.x_report(CASHIER)
    assert bench.lines("x_report")[-1]["receipts"] == 4
    status = await reg.status()
    assert status.shift_open and status.last_fd_number == card.fd_number and not status.receipt_open
    assert status.fn_number == "9999078900012345" and status.inn == "7707083893" and status.paper
    assert status.fn_valid_until == date(2028, 6, 30) and status.to_dict()["fnValidUntil"] == "2028-06-30"

    closed = await reg.close_shift(CASHIER)
    assert closed.kind is DocumentKind.CLOSE_SHIFT and closed.fd_number == 6
    assert bench.documents("close_shift")[-1]["receipts"] == 4
    assert [d["fd"] for d in bench.documents()] == [1, 2, 3, 4, 5, 6]
    assert not (await reg.status()).shift_open
    assert await reg.last_document() == closed


async def test_receipt_opens_the_shift_itself(bench):
    result = await bench.register.fiscalize(receipt(1000))
    assert [d["doc"] for d in bench.documents()] == ["open_shift", "receipt"]
    assert result.fd_number == 2 and result.receipt_number == 1


async def test_rich_receipt_reaches_the_register_whole(bench):
    await example_receipt_reaches_the_register_whole(bench)


async def test_cash_in_out(bench):
    reg = bench.register
    await reg.open_shift()
    await reg.cash_operation(CashOperation(CashOperationKind.CASH_IN, 50000, CASHIER))
    await reg.cash_operation(CashOperation(CashOperationKind.CASH_OUT, 20000))
    assert [(r["doc"], r["amount"]) for r in bench.lines("cash_in") + bench.lines("cash_out")] == [
        ("cash_in", 50000), ("cash_out", 20000)]
    with pytest.raises(DeviceError) as info:
        await reg.cash_operation(CashOperation(CashOperationKind.CASH_OUT, 30001))
    assert info.value.code == "not_enough_cash" and info.value.device_code == 152
    assert bench.emulator.core.cash == 30000 and len(bench.documents()) == 1


async def test_paper_out_mid_receipt_leaves_nothing(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.faults.no_paper = True
    with pytest.raises(DeviceError) as info:
        await reg.fiscalize(receipt(1000, 2000))
    assert info.value.code == "no_paper" and info.value.device_code == 103 and info.value.retryable
    assert "Нет бумаги" in info.value.text()
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


async def test_cover_open(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.faults.cover_open = True
    with pytest.raises(DeviceError) as info:
        await reg.fiscalize(receipt(1000))
    assert info.value.code == "printer_error" and (await reg.status()).cover_open
    assert bench.documents("receipt") == []


async def test_shift_over_24_hours_is_refused_clearly(bench):
    reg = bench.register
    await reg.open_shift()
    bench.emulator.core.advance_clock(timedelta(hours=24, minutes=1).total_seconds())
    assert (await reg.status()).shift_expired
    with pytest.raises(DeviceError) as info:
        await reg.fiscalize(receipt(1000))
    assert info.value.code == "shift_expired" and "24" in info.value.ru and "24" in info.value.en
    assert bench.documents("receipt") == []
    await reg.close_shift()
    result = await reg.fiscalize(receipt(1000))
    assert result.shift_number == 2


async def test_wrong_password(tmp_path):
    emulator = AtolEmulator(password=1234)
    host, port = await emulator.serve_tcp("127.0.0.1", 0)
    register = AtolRegister.tcp(host, port)
    with pytest.raises(DeviceError) as info:
        await register.connect()
    assert info.value.code == "wrong_password" and info.value.device_code == 140
    good = AtolRegister.tcp(host, port, password=1234)
    await good.connect()
    assert (await good.open_shift()).fd_number == 1
    await register.close()
    await good.close()
    await emulator.close()


async def test_wrong_mode_password(tmp_path):
    emulator = AtolEmulator()
    host, port = await emulator.serve_tcp("127.0.0.1", 0)
    register = AtolRegister.tcp(host, port, mode_password=31)
    await register.connect()
    with pytest.raises(DeviceError) as info:
        await register.open_shift()
    assert info.value.code == "wrong_password"
    await register.close()
    await emulator.close()


@pytest.mark.parametrize("share", [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
async def test_link_drop_mid_receipt_neither_loses_nor_doubles(tmp_path, share):
    emulator = AtolEmulator(journal_path=tmp_path / "j.jsonl", fsync=False)
    host, port = await emulator.serve_tcp("127.0.0.1", 0)
    register = AtolRegister.tcp(host, port)
    await register.connect()
    await register.open_shift()
    sent = emulator.bytes_sent
    await register.fiscalize(receipt(items=10))
    size = emulator.bytes_sent - sent  # what the register sends for one such receipt
    made = [r["fd"] for r in read_journal(tmp_path / "j.jsonl") if r["doc"] == "receipt"]
    emulator.faults.drop_after_bytes = max(1, int(size * share))
    try:
        result = await register.fiscalize(receipt(items=10))
    except DeviceError as exc:
        assert exc.code in ("link", "outcome_unknown")
    else:
        made.append(result.fd_number)
    assert emulator.faults.drop_after_bytes is None  # the link did drop
    receipts = [r["fd"] for r in read_journal(tmp_path / "j.jsonl") if r["doc"] == "receipt"]
    assert receipts == made
    again = await register.fiscalize(receipt(items=10))  # the register works on after the drop
    receipts = [r["fd"] for r in read_journal(tmp_path / "j.jsonl") if r["doc"] == "receipt"]
    assert receipts == made + [again.fd_number]
    assert not emulator.core.receipt  # nothing left open
    await register.close()
    await emulator.close()


async def test_print_latency_is_polled(tmp_path):
    emulator = AtolEmulator()
    emulator.faults.print_latency = 0.2
    host, port = await emulator.serve_tcp("127.0.0.1", 0)
    register = AtolRegister.tcp(host, port)
    await register.connect()
    result = await register.fiscalize(receipt(1000))
    assert result.fd_number == 2
    await register.close()
    await emulator.close()


async def test_cancel_and_last_document(bench):
    reg = bench.register
    assert await reg.last_document() is None
    assert not await reg.cancel_receipt()
    opened = await reg.open_shift()
    assert await reg.last_document() == opened
    await reg.open_drawer()
    await reg.print_text(["Слип банка", "ОДОБРЕНО"])
    assert "Слип банка" in bench.emulator.paper.text()


async def test_power_loss_after_close_then_restart(tmp_path, emulator_process):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    files = ["--state", str(tmp_path / "fn.json"), "--journal", str(tmp_path / "j.jsonl"), "--tcp", f"127.0.0.1:{port}"]
    first = emulator_process("atol", *files, "--fault", 'power_loss_at="after:4a"')
    register = AtolRegister.tcp("127.0.0.1", port)
    await register.connect()
    before = (await register.open_shift()).fd_number
    with pytest.raises(OutcomeUnknown):
        await register.fiscalize(receipt(1000))
    assert first.wait_dead() == 3
    emulator_process("atol", *files)
    await register.connect()
    last = await register.last_document()
    assert last.fd_number == before + 1 and last.kind is DocumentKind.RECEIPT and last.total == 1000
    assert [r["fd"] for r in read_journal(tmp_path / "j.jsonl") if r["doc"] == "receipt"] == [before + 1]
    await register.close()


async def test_power_loss_before_close_loses_only_the_open_receipt(tmp_path, emulator_process):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    files = ["--state", str(tmp_path / "fn.json"), "--journal", str(tmp_path / "j.jsonl"), "--tcp", f"127.0.0.1:{port}"]
    emulator_process("atol", *files, "--fault", 'power_loss_at="before:4a"')
    register = AtolRegister.tcp("127.0.0.1", port)
    await register.connect()
    before = (await register.open_shift()).fd_number
    with pytest.raises(OutcomeUnknown):
        await register.fiscalize(receipt(1000))
    emulator_process("atol", *files)
    await register.connect()
    assert (await register.last_document()).fd_number == before
    status = await register.status()
    assert not status.receipt_open and status.shift_open
    result = await register.fiscalize(receipt(1000))
    assert [r["fd"] for r in read_journal(tmp_path / "j.jsonl") if r["doc"] == "receipt"] == [result.fd_number]
    await register.close()


async def test_cli_emulator_on_a_pseudo_terminal(tmp_path, emulator_process, posix_only):
    process = emulator_process("atol", "--pty", "--protocol", "v2", "--journal", str(tmp_path / "j.jsonl"))
    register = AtolRegister.serial(process.info["pty"], "auto", protocol="v2")
    await register.connect()
    result = await register.fiscalize(receipt(4200))
    assert [(r["doc"], r["fd"]) for r in read_journal(tmp_path / "j.jsonl")] == [("open_shift", 1), ("receipt", 2)]
    assert result.total == 4200
    await register.close()


async def test_the_checkpoint_gets_the_register_s_last_fd_even_when_it_moved(bench):
    """The adapter starts the caller's journal write early, with the last FD it saw; when the register made a
    document meanwhile (another program, the keyboard), a second write gives the true number before the close."""
    seen: list[int] = []

    async def write(number: int, counters=None) -> None:  # counters: on an empty FN, nothing to probe yet
        seen.append(number)

    first = await bench.register.fiscalize(receipt(1000), checkpoint=write)
    assert seen == [first.fd_number - 1]
    seen.clear()
    second = await bench.register.fiscalize(receipt(1000), checkpoint=write)
    assert seen == [first.fd_number] and second.fd_number == first.fd_number + 1  # the early guess was right
    seen.clear()
    bench.emulator.core.close_shift()  # a document the adapter did not see
    bench.emulator.core.open_shift()
    third = await bench.register.fiscalize(receipt(1000), checkpoint=write)
    assert seen == [second.fd_number, second.fd_number + 2] and third.fd_number == second.fd_number + 3


async def test_documents_are_read_back_with_their_content(bench):
    """0xA4 0x45 n and 0xA4 0x46 n: each document after a number, with payments and lines, and the shared rule
    tells them apart by content (a receipt of 80 lines needs several 0x46 chunks)."""
    from kktbridge.fiscal import Expected, PaymentKind

    reg = bench.register
    shift = await reg.open_shift(CASHIER)
    long = receipt(*([150] * 80), cash=20000)
    made = await reg.fiscalize(long)
    short = await reg.fiscalize(receipt(12000, electronic=12000))
    documents = await reg.documents_since(0)
    assert [d.fd_number for d in documents] == [shift.fd_number, made.fd_number, short.fd_number]
    assert documents[1].result == made and len(documents[1].lines) == 80
    assert documents[1].payments == {PaymentKind.CASH: 20000}
    assert documents[2].payments == {PaymentKind.ELECTRONIC: 12000}
    assert Expected.of_receipt(long).matches(documents[1]) and not Expected.of_receipt(long).matches(documents[2])
    assert not Expected.of_receipt(receipt(*([150] * 79), 300, cash=20000)).matches(documents[1])  # other lines
    assert await reg.documents_since(short.fd_number) == []
    assert (await reg.status()).cash == await reg.drawer_cash() == 12000


async def test_the_status_says_when_the_open_shift_was_opened(bench):
    reg = bench.register
    assert (await reg.status()).shift_opened_at is None
    opened = await reg.open_shift(CASHIER)
    for _ in range(3):
        await reg.fiscalize(receipt(1000))
    await reg.close()
    await reg.connect()  # a new connection knows nothing: the FN tells
    status = await reg.status()
    assert status.shift_open and status.shift_opened_at == opened.datetime


async def test_the_shift_counters_tell_a_receipt_by_type_and_payment_kind(bench):
    """0x91 through a real link: the counters after a receipt differ from those before by exactly that receipt
    (the evidence reconciliation uses where documents cannot be read back)."""
    from kktbridge.fiscal import Expected, PaymentKind, ReceiptType, counted

    await bench.register.fiscalize(receipt(1000))  # opens the shift
    before = await bench.register.counters()
    mine = receipt(1000, 2000, electronic=500)
    made = await bench.register.fiscalize(mine)
    after = await bench.register.counters()
    assert (after.shift_number, after.shift_open) == (made.shift_number, True)
    assert dict(((t, k), v) for t, k, v in after.payments) == {
        (ReceiptType.SALE, PaymentKind.CASH): 1000 + 2500, (ReceiptType.SALE, PaymentKind.ELECTRONIC): 500}
    assert counted(Expected.of_receipt(mine), before, after, []) is True
    assert counted(Expected.of_receipt(receipt(3000)), before, after, []) is None  # same total, paid otherwise
