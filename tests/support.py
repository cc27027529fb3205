"""Helpers shared by the device test suites: a receipt builder and a view of an emulator's journal."""

from __future__ import annotations

from pathlib import Path

from kktbridge.emulators.fncore import read_journal
from kktbridge.fiscal import Cashier, Item, Payments, Quantity, Receipt, ReceiptType, TaxationSystem, VatRate

__all__ = ["CASHIER", "Journal", "example_receipt_reaches_the_register_whole", "receipt"]

CASHIER = Cashier("Пупкин Иван Трофимович", "500100732259")


def receipt(*prices: int, type: ReceiptType = ReceiptType.SALE, cash: int | None = None, electronic: int = 0,
            items: int = 0) -> Receipt:
    """A receipt of one-piece lines at these prices (kopecks, 22 % VAT), paid in cash unless told otherwise."""
    lines = [Item(name=f"Товар {i + 1}", price=p, quantity=Quantity.parse("1"), vat=VatRate.VAT22)
             for i, p in enumerate(prices or [1000] * max(items, 1))]
    total = sum(line.amount for line in lines)
    return Receipt(type=type, items=tuple(lines), taxation=TaxationSystem.OSN, cashier=CASHIER,
                   payments=Payments(cash=total - electronic if cash is None else cash, electronic=electronic))


class Journal:
    """An emulator's journal file, read afresh at every call."""

    def __init__(self, path: Path) -> None:
        self.journal_path = path

    def documents(self, doc: str | None = None) -> list[dict]:
        """The fiscal documents (those with an FD number), of one type if given."""
        records = [r for r in read_journal(self.journal_path) if r.get("fd") is not None]
        return [r for r in records if doc is None or r["doc"] == doc]

    def lines(self, doc: str) -> list[dict]:
        """Every record of one type, fiscal or not (x_report, cash_in, ...)."""
        return [r for r in read_journal(self.journal_path) if r["doc"] == doc]


async def example_receipt_reaches_the_register_whole(bench) -> None:
    """The receipt of the API 1.2 example through a register adapter (`bench.register`) to its emulator
    (`bench.emulator`, journal read by `bench.documents`): every field the journal keeps arrives, and the QR is printed."""
    from kktbridge.bitapi import decode_request
    from kktbridge.examples import example_packet

    packet = decode_request({}, example_packet().encode())
    result = await bench.register.fiscalize(packet.commands[1].receipt)
    doc = bench.documents("receipt")[-1]
    assert result.total == 1100 and doc["taxation"] == "PATENT" and doc["buyer"] == {"contact": "kkmspb2008@yandex.ru"}
    assert doc["items"][0] == {"name": "товар 123", "price": 1100, "quantity": "1", "amount": 1100, "vat": 6,
                               "method": 2, "object": 3, "measure": 10, "additional": "что-то дополнительное"}
    assert "[QR] " + result.qr in bench.emulator.paper.text()
