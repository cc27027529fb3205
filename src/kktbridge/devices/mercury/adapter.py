"""The Mercury register as a `FiscalRegister`: fiscal operations as calls to Incotex's JSON service over HTTP.

This file decides what to ask and when; protocol.py says how requests and replies look. One aiohttp session per
adapter keeps the connection to the service alive. One service session (OpenSession) is reused; when the service
answers that it does not know the key (it restarted, or dropped the session), a new one is opened and the refused
command sent once more: that refusal means the command never reached the register. A command whose answer was
lost is never repeated blindly: a query is asked again; a document-making command raises OutcomeUnknown and the
caller reads the documents since its checkpoint back (`documents_since`, the service's sales journal) to find
what was made by its content. The adapter never decides by position what a document is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from ...fiscal import (BridgeError, CashOperation, Cashier, DocumentKind, Expected, FiscalResult, FnDocument,
                       Receipt)
from ..base import Checkpoint, FiscalRegister, RegisterStatus
from ..errors import PRINTER_FAULTS, DeviceError, OutcomeUnknown, device_error, document_despite_fault
from . import protocol
from .protocol import DEFAULT_URL, MODELS, CommonInfo, LastDocument, RegistrationData, Status

__all__ = ["MercuryRegister"]

log = logging.getLogger("kktbridge.mercury")

_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
_NAMES = {"185F": "Меркурий-185Ф", "119F": "Меркурий-119Ф"}
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ClientConnectorError)  # aiohttp >= 3.10


class MercuryRegister(FiscalRegister):
    kind = "mercury"

    def __init__(self, port_name: str, *, url: str = DEFAULT_URL, baudrate: int | None = None,
                 model: str = "185F", serial_number: str | None = None, timeout: float = 15.0,
                 connect_timeout: float = 3.0, sales_attempts: int = 20) -> None:
        if model not in MODELS:
            raise BridgeError("config", f"модель Меркурия «{model}» не поддерживается (185F, 119F)",
                              f"Mercury model '{model}' is not supported (185F, 119F)")
        if not port_name:
            raise BridgeError("config", "не указан порт ККТ Меркурий (port_name)",
                              "the Mercury register's port is not set (port_name)")
        self.url = url
        self.port_name = port_name
        self.baudrate = baudrate
        self.model = model
        self.serial_number = serial_number
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.sales_attempts = max(1, sales_attempts)  # GetSales polls while the service reads the journal
        self._http: aiohttp.ClientSession | None = None
        self._key: str | None = None
        self._common: CommonInfo | None = None
        self._registration: RegistrationData | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "MercuryRegister":
        """From a [[devices]] table: url, port_name, baudrate, model, serial_number, timeout."""
        baudrate = options.get("baudrate")
        return cls(str(options.get("port_name") or ""), url=str(options.get("url") or DEFAULT_URL),
                   baudrate=int(baudrate) if baudrate is not None else None, model=str(options.get("model", "185F")),
                   serial_number=str(options["serial_number"]) if options.get("serial_number") else None,
                   timeout=float(options.get("timeout", 15.0)))

    # --- link ------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open (or renew) the service session and read who the register is."""
        if self._key is not None:
            await self._close_session()
        self._common = self._registration = None
        await self._open_session()
        await self._identity()

    async def close(self) -> None:
        if self._key is not None:
            await self._close_session()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout)
            self._http = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=2))
        return self._http

    async def _post(self, request: dict[str, Any]) -> dict[str, Any]:
        """One HTTP exchange. Not sent → LinkError; sent and no answer → OutcomeUnknown."""
        data = json.dumps(request, ensure_ascii=False).encode("utf-8")
        what = request.get("command")
        try:
            async with self._client().post(self.url, data=data, headers=_HEADERS) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientConnectorError, _CONNECT_TIMEOUT) as exc:
            raise device_error("link", device_text=f"{self.url}: {str(exc) or type(exc).__name__}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise device_error("outcome_unknown", device_text=(
                f"{what}: {self.url}: {str(exc) or type(exc).__name__}")) from None
        if 400 <= status < 500:
            raise device_error("link", device_code=status, device_text=f"HTTP {status} from {self.url}: is it the "
                               "Mercury service (api.json)?")
        try:
            reply = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            reply = None
        if status != 200 or not isinstance(reply, dict):
            raise device_error("outcome_unknown", device_code=status,
                               device_text=f"{what}: HTTP {status}, not a JSON reply: {raw[:200]!r}")
        return reply

    # --- service session -------------------------------------------------------------------------------

    async def _open_session(self) -> None:
        body = protocol.open_session(self.port_name, self.model, self.baudrate, self.serial_number)
        try:
            reply = await self._post(protocol.keyed(body, None))
        except OutcomeUnknown:  # a second session harms nothing
            reply = await self._post(protocol.keyed(body, None))
        self._key = protocol.parse_session(protocol.check_reply(reply))
        log.debug("Mercury: session opened on %s (%s)", self.port_name, self.model)

    async def _close_session(self) -> None:
        key, self._key = self._key, None
        try:
            await self._post(protocol.keyed(protocol.simple("CloseSession"), key))
        except DeviceError as exc:
            log.debug("Mercury: CloseSession failed: %s", exc.text())

    async def _call(self, body: dict[str, Any], *, repeatable: bool = False) -> dict[str, Any]:
        """One command in the service session; a forgotten session is renewed and the command sent once more."""
        if self._key is None:
            await self._open_session()
        reply = await self._send(body, repeatable)
        if protocol.is_session_error(reply):
            log.info("Mercury: the service does not know our session (restarted?); opening a new one")
            self._key = None
            await self._open_session()
            reply = await self._send(body, repeatable)
        return protocol.check_reply(reply)

    async def _send(self, body: dict[str, Any], repeatable: bool) -> dict[str, Any]:
        request = protocol.keyed(body, self._key)
        try:
            return await self._post(request)
        except OutcomeUnknown:
            if not repeatable:
                raise
            log.info("Mercury: no answer to %s; asking again (a query changes nothing)", body["command"])
            return await self._post(request)

    # --- queries ---------------------------------------------------------------------------------------

    async def _identity(self) -> tuple[CommonInfo, RegistrationData]:
        """Model, serial, FN number, registration number and INN: read once per connection."""
        if self._common is None:
            self._common = protocol.parse_common_info(await self._call(protocol.simple("GetCommonInfo"),
                                                                       repeatable=True))
        if self._registration is None:
            self._registration = protocol.parse_registration(
                await self._call(protocol.simple("GetRegistrationInfo"), repeatable=True))
        return self._common, self._registration

    async def _status(self) -> Status:
        return protocol.parse_status(await self._call(protocol.simple("GetStatus"), repeatable=True))

    async def status(self) -> RegisterStatus:
        common, registration = await self._identity()
        state = await self._status()
        return RegisterStatus(
            model=common.model or _NAMES[self.model], serial=common.serial,
            fn_number=state.fn_number or common.fn_number, reg_number=registration.reg_number,
            inn=registration.inn, datetime=state.datetime, shift_open=state.shift_open,
            shift_number=state.shift_number, shift_expired=state.shift_open and state.shift_expired,
            receipt_open=state.receipt_open, paper=state.paper, last_fd_number=state.last_fd_number,
            unsent_documents=state.unsent, shift_opened_at=state.shift_opened_at, cash=state.cash,
            taxations=registration.taxations,
        )

    async def last_document(self) -> FiscalResult | None:
        await self._identity()
        last = (await self._status()).last
        return self._result(last) if last is not None else None

    def _result(self, last: LastDocument) -> FiscalResult:
        common, registration = self._common, self._registration
        assert common is not None and registration is not None
        return last.to_result(common.fn_number, registration.reg_number)

    def _document(self, reply: dict[str, Any], kind: DocumentKind, receipt: Receipt | None = None) -> FiscalResult:
        common, registration = self._common, self._registration
        assert common is not None and registration is not None
        return protocol.parse_document(reply, kind, common.fn_number, registration.reg_number,
                                       total=receipt.total if receipt else None,
                                       receipt_type=receipt.type if receipt else None)

    # --- documents -------------------------------------------------------------------------------------

    async def open_shift(self, cashier: Cashier | None = None, *, checkpoint: Checkpoint | None = None) -> FiscalResult:
        await self._identity()
        before = (await self._status()).last_fd_number
        return await self._make(protocol.open_shift(cashier), DocumentKind.OPEN_SHIFT, before, checkpoint)

    async def close_shift(self, cashier: Cashier | None = None, *,
                          checkpoint: Checkpoint | None = None) -> FiscalResult:
        await self._identity()
        state = await self._status()
        if state.receipt_open:
            log.warning("Mercury: a receipt was left open before the Z report; cancelling it")
            await self._call(protocol.simple("ResetCheck"))
        return await self._make(protocol.close_shift(cashier), DocumentKind.CLOSE_SHIFT, state.last_fd_number,
                                checkpoint)

    async def _make(self, body: dict[str, Any], kind: DocumentKind, before: int, checkpoint: Checkpoint | None,
                    receipt: Receipt | None = None) -> FiscalResult:
        """The document-making command: checkpoint, send. A printer fault after the document was made (the paper
        ran out while it printed) still returns it; a lost answer raises OutcomeUnknown for the caller to resolve."""
        if checkpoint is not None:
            await checkpoint(before)
        try:
            reply = await self._call(body)
        except OutcomeUnknown:
            raise
        except DeviceError as exc:
            if exc.code not in PRINTER_FAULTS:
                raise
            state = await self._status()
            made = self._result(state.last) if state.last is not None and state.last.fd_number > before else None
            return document_despite_fault(exc, made, Expected.of_receipt(receipt) if receipt else Expected(kind))
        return self._document(reply, kind, receipt)

    async def documents_since(self, fd_number: int) -> list[FnDocument]:
        """From the sales journal (ReadSales, then GetSales, asked again while the service says it is busy)."""
        common, registration = await self._identity()
        if (await self._status()).last_fd_number <= fd_number:
            return []
        await self._call(protocol.simple("ReadSales"))
        for attempt in range(self.sales_attempts):
            try:
                reply = await self._call(protocol.simple("GetSales"), repeatable=True)
                break
            except DeviceError as exc:
                if exc.code != "busy" or attempt + 1 == self.sales_attempts:
                    raise
                await asyncio.sleep(0.2)
        documents = protocol.parse_sales(reply, common.fn_number, registration.reg_number)
        return [document for document in documents if document.fd_number > fd_number]

    async def drawer_cash(self) -> int:
        cash = (await self._status()).cash
        if cash is None:
            raise device_error("not_supported", device_text="GetStatus: shiftInfo.cash is missing")
        return cash

    # --- receipts --------------------------------------------------------------------------------------

    async def fiscalize(self, receipt: Receipt, *, checkpoint: Checkpoint | None = None) -> FiscalResult:
        """OpenCheck, AddGoods per line, then CloseCheck with the payments; a failure before the close resets the
        receipt (nothing was fiscalized yet), an unknown outcome of the close is looked up in the FN."""
        requests = protocol.receipt_requests(receipt)
        await self._identity()
        before = await self._ready_for_receipt(receipt)
        try:
            await self._call(requests.open)
            for body in requests.goods:
                await self._call(body)
        except DeviceError:
            await self._reset_quietly()
            raise
        try:
            return await self._make(requests.close, DocumentKind.RECEIPT, before, checkpoint, receipt)
        except OutcomeUnknown:
            raise
        except DeviceError:
            await self._reset_quietly()
            raise

    def validate(self, receipt: Receipt) -> None:
        protocol.receipt_requests(receipt)

    async def _ready_for_receipt(self, receipt: Receipt) -> int:
        """Cancel a receipt left open, refuse an expired shift, open a closed one; the last FD number."""
        state = await self._status()
        if state.receipt_open:
            log.warning("Mercury: a receipt was left open (not fiscalized); cancelling it")
            await self._call(protocol.simple("ResetCheck"))
        if state.shift_open and state.shift_expired:
            raise device_error("shift_expired", device_text="GetStatus: shiftInfo.is24Expired")
        if not state.shift_open:
            try:
                opened = await self._make(protocol.open_shift(receipt.cashier), DocumentKind.OPEN_SHIFT,
                                          state.last_fd_number, None)
                return opened.fd_number
            except OutcomeUnknown:  # whether the shift opened is a fact the register tells: ask it
                state = await self._status()
                if not state.shift_open:
                    raise
                log.warning("Mercury: the shift opened although its answer was lost")
        return state.last_fd_number

    async def _reset_quietly(self) -> None:
        try:
            await self._call(protocol.simple("ResetCheck"))
        except DeviceError as exc:
            if exc.code != "receipt_closed":
                log.warning("Mercury: could not cancel the failed receipt: %s", exc.text())

    async def cancel_receipt(self) -> bool:
        if not (await self._status()).receipt_open:
            return False
        await self._call(protocol.simple("ResetCheck"))
        return True

    # --- other -----------------------------------------------------------------------------------------

    async def x_report(self, cashier: Cashier | None = None) -> None:
        """PrintReport 1; the service takes no cashier for it."""
        await self._call(protocol.print_report(protocol.REPORT_X))

    async def cash_operation(self, operation: CashOperation, *, checkpoint: Checkpoint | None = None) -> None:
        if checkpoint is not None:
            await checkpoint(await self.drawer_cash())
        await self._call(protocol.cash_operation(operation))

    async def open_drawer(self) -> None:
        await self._call(protocol.simple("OpenBox"))

    async def print_text(self, lines: list[str]) -> None:
        for line in lines:
            await self._call(protocol.print_text(line))
