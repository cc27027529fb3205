"""The Arcus2 bank terminal as a `PaymentTerminal`, through arccom's C API.

`ITPosRun` blocks while the cardholder reads the screen and types the PIN, so every call into the library runs in
this terminal's own worker thread: the event loop, the driver and the other devices keep working. `abort()` calls
`Stop` from the loop's thread, which the C API allows. Operation codes differ between installations (ops.ini); the
defaults are in OPERATIONS and the driver's config may replace any of them.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from ..base import CardOperation, CardResult, PaymentTerminal
from ..errors import device_error
from .library import ENCODING, ArccomLibrary, Handle

__all__ = ["APPROVED", "OPERATIONS", "ArcusTerminal"]

log = logging.getLogger("kktbridge.arcus")

# Defaults from the sources of spec/devices.md §3.1 (only purchase = 1 is universal; refund is most often 3 and
# void 4; settlement 11 as ArcusHandlers and OpenPapyrus; 8 short and 6 full report; 113 "last cheque").
OPERATIONS: dict[str, int] = {"purchase": 1, "refund": 3, "cancel": 4, "settlement": 11, "short_report": 8,
                              "full_report": 6, "last_operation": 113}
APPROVED = {"00", "000"}
_TEXTS = {"00": "Одобрено", "05": "Отказ эмитента", "12": "Неверная операция", "13": "Неверная сумма",
          "17": "Операция отменена", "25": "Исходная операция не найдена", "51": "Недостаточно средств",
          "999": "Пин-пад не отвечает"}
_KINDS = {"purchase": CardOperation.PAYMENT, "refund": CardOperation.REFUND, "cancel": CardOperation.CANCEL}


class ArcusTerminal(PaymentTerminal):
    kind = "arcus"

    def __init__(self, library: Path | str, *, operations: dict[str, int] | None = None,
                 slip_file: Path | str | None = None, settings: dict[str, Any] | None = None) -> None:
        self.library_path = Path(library)
        self.operations = {**OPERATIONS, **(operations or {})}
        self.slip_file = Path(slip_file) if slip_file else None
        self.settings = dict(settings or {})  # extra ITPosSet keys at creation (the emulator's emu_* switches)
        self._library: ArccomLibrary | None = None
        self._handle: Handle | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arcus")
        self._running = False

    # --- link ------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._handle is not None:
            return
        self._library = await self._call(ArccomLibrary, self.library_path)
        handle = await self._call(self._library.create)
        for key, value in self.settings.items():
            if await self._call(handle.set, key, str(value)) != 0:
                raise device_error("bad_value", device_text=f"ITPosSet {key} refused")
        self._handle = handle

    async def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            if self._running:
                handle.stop()
            await self._call(handle.delete)

    async def abort(self) -> None:
        if self._handle is not None and self._running:
            log.info("Arcus: Stop requested")
            self._handle.stop()

    async def _call(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    # --- operations ------------------------------------------------------------------------------------

    async def pay(self, amount: int) -> CardResult:
        return await self._operate("purchase", CardOperation.PAYMENT, amount=amount)

    async def refund(self, amount: int, rrn: str) -> CardResult:
        return await self._operate("refund", CardOperation.REFUND, amount=amount, rrn=rrn)

    async def cancel(self, amount: int | None = None, rrn: str | None = None) -> CardResult:
        return await self._operate("cancel", CardOperation.CANCEL, amount=amount, rrn=rrn)

    async def settlement(self) -> CardResult:
        return await self._operate("settlement", CardOperation.SETTLEMENT)

    async def report(self, full: bool = False) -> CardResult:
        if full:
            return await self._operate("full_report", CardOperation.FULL_REPORT)
        return await self._operate("short_report", CardOperation.SHORT_REPORT)

    async def last_operation(self) -> CardResult:
        return await self._operate("last_operation", CardOperation.LAST_OPERATION)

    async def _operate(self, name: str, operation: CardOperation, *, amount: int | None = None,
                       rrn: str | None = None) -> CardResult:
        await self.connect()
        handle = self._handle
        assert handle is not None
        opcode = self.operations[name]
        inputs = {"currency": "643"}
        if amount is not None:
            inputs["amount"] = str(amount)
        if rrn:
            inputs["rrn"] = rrn
        self._running = True
        try:
            code, outputs = await self._call(_exchange, handle, opcode, inputs)
        finally:
            self._running = False
        if code != 0:
            raise device_error("bad_value" if code == -6 else "device_error", device_code=code,
                               device_text=outputs.get("text_message") or f"ITPosRun({opcode}) = {code}")
        return self._result(operation, outputs)

    def _result(self, operation: CardOperation, out: dict[str, str]) -> CardResult:
        code = (out.get("response_code") or "").strip()
        slip = out.get("slip") or ""
        if not slip and self.slip_file is not None and self.slip_file.exists():
            slip = self.slip_file.read_bytes().decode(ENCODING, errors="replace")
        if operation is CardOperation.LAST_OPERATION and out.get("emu_operation") in _KINDS:
            operation = _KINDS[out["emu_operation"]]  # the emulator says what the last operation was
        amount = out.get("result_amount") or out.get("amount")
        return CardResult(
            operation=operation,
            approved=code in APPROVED,
            response_code=code or "?",
            text=(out.get("text_message") or out.get("received_text_message") or _TEXTS.get(code, f"код {code}")).strip(),
            amount=int(amount) if amount and amount.isdigit() else None,
            rrn=out.get("rrn") or None,
            auth_code=out.get("auth_code") or None,
            card_mask=out.get("pan") or None,
            card_type=out.get("card_type") or None,
            terminal_id=out.get("terminal_id") or None,
            datetime=_when(out),
            slip=slip.replace("\r\n", "\n").strip("\n"),
            extra={key: value for key, value in out.items() if key.startswith("emu_")},
        )


_OUTPUT_KEYS = ("response_code", "text_message", "received_text_message", "rrn", "auth_code", "pan",
                "result_amount", "amount", "card_type", "application_label", "terminal_id", "cardholder_name",
                "date", "time", "slip", "transaction_id",
                # the emulator's own extras (absent from the real library): what kind the last operation was, and
                # the totals of reports
                "emu_datetime", "emu_operation", "emu_batch", "emu_purchase_count", "emu_purchase_total",
                "emu_refund_count", "emu_refund_total", "emu_cancel_count", "emu_cancel_total", "emu_net_total")


def _exchange(handle: Handle, opcode: int, inputs: dict[str, str]) -> tuple[int, dict[str, str]]:
    """One blocking exchange, in the worker thread: clear, set the inputs, run, read the outputs."""
    handle.clear()
    for key, value in inputs.items():
        handle.set(key, value)
    code = handle.run(opcode)
    outputs = {key: value for key in _OUTPUT_KEYS if (value := handle.get(key)) is not None}
    return code, outputs


def _when(out: dict[str, str]) -> datetime | None:
    stamp = out.get("emu_datetime")
    try:
        if stamp:
            return datetime.strptime(stamp, "%Y%m%d%H%M%S")
        if out.get("date") and out.get("time"):
            return datetime.strptime(out["date"] + out["time"], "%y%m%d%H%M%S")
    except ValueError:
        return None
    return None
