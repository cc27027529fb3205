"""The paper an emulated register prints: fiscal documents rendered as text lines, kept in memory and
optionally appended to a file, so a person (or a test) can read the receipt with its QR string.

Printing is the only thing here; whether a document may be printed (paper, cover) is the emulator's business.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from ..fiscal import ReceiptType, format_rubles
from ..fiscal.codes import VatRate
from .fncore import Registration, result_of

__all__ = ["PaperTape", "render_document"]

WIDTH = 42
_TITLES = {
    "open_shift": "ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ",
    "close_shift": "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ",
    "x_report": "ОТЧЁТ БЕЗ ГАШЕНИЯ (X)",
    "cash_in": "ВНЕСЕНИЕ",
    "cash_out": "ВЫПЛАТА",
}


class PaperTape:
    def __init__(self, path: Path | str | None = None, keep: int = 2000) -> None:
        self.path = Path(path) if path else None
        self.lines: deque[str] = deque(maxlen=keep)

    def print_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")

    def text(self) -> str:
        return "\n".join(self.lines)


def _pair(left: str, right: str) -> str:
    space = max(1, WIDTH - len(left) - len(right))
    return f"{left}{' ' * space}{right}"


def render_document(record: dict[str, Any], registration: Registration) -> list[str]:
    """A journal record as the lines a register prints."""
    lines = [registration.organization.center(WIDTH), registration.address.center(WIDTH)[:WIDTH]]
    doc = record["doc"]
    if doc == "receipt":
        kind = ReceiptType(record["type"]).ru.upper()
        lines += [f"КАССОВЫЙ ЧЕК / {kind}".center(WIDTH), _pair("ЧЕК", str(record["receipt"])),
                  _pair("СМЕНА", str(record["shift"]))]
        for item in record["items"]:
            lines.append(item["name"][:WIDTH])
            lines.append(_pair(f"  {item['quantity']} x {format_rubles(item['price'])}",
                               f"={format_rubles(item['amount'])}"))
            if item.get("vat"):
                lines.append(f"  {VatRate(item['vat']).label}")
        lines.append(_pair("ИТОГ", f"={format_rubles(record['total'])}"))
        for kind_name, amount in record.get("payments", {}).items():
            label = {"cash": "НАЛИЧНЫМИ", "electronic": "БЕЗНАЛИЧНЫМИ", "prepayment": "ПРЕДОПЛАТА",
                     "credit": "ПОСТОПЛАТА", "other": "ВСТРЕЧНОЕ ПРЕДОСТАВЛЕНИЕ"}.get(kind_name, kind_name)
            lines.append(_pair(label, f"={format_rubles(amount)}"))
        if record.get("change"):
            lines.append(_pair("СДАЧА", f"={format_rubles(record['change'])}"))
        for code, amount in record.get("vat", {}).items():
            if VatRate(int(code)).fraction is not None:
                lines.append(_pair(f"СУММА {VatRate(int(code)).label}", f"={format_rubles(amount)}"))
    elif doc in _TITLES:
        lines += [_TITLES[doc].center(WIDTH), _pair("СМЕНА", str(record.get("shift", "")))]
        if "amount" in record:
            lines.append(_pair("СУММА", f"={format_rubles(record['amount'])}"))
        if "receipts" in record:
            lines.append(_pair("ЧЕКОВ ЗА СМЕНУ", str(record["receipts"])))
        if "cash" in record:
            lines.append(_pair("НАЛИЧНЫХ В КАССЕ", f"={format_rubles(record['cash'])}"))
    if (cashier := record.get("cashier")) and cashier.get("name"):
        lines.append(_pair("КАССИР", cashier["name"])[:WIDTH])
    lines.append(_pair("ДАТА", record["datetime"].replace("T", " ")))
    if record.get("fd") is not None:
        lines += [_pair("РН ККТ", registration.reg_number), _pair("ФН", registration.fn_number),
                  _pair("ФД", str(record["fd"])), _pair("ФП", record["fp"])]
        qr = result_of(record).qr
        if qr:
            lines.append(f"[QR] {qr}")
    lines.append("-" * WIDTH)
    return lines
