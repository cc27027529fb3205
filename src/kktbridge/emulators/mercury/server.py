"""An emulated Mercury register behind Incotex's JSON service: `POST /api.json` over HTTP, as Inecrman answers.

MercuryService is the service and its register: sessions, which command needs what, the printer and the fault
switches; a request dict in, a reply dict out. MercuryEmulator serves it over HTTP, one command at a time, each
shielded from the client going away (a register finishes a document whether or not anyone waits for the answer).
Fiscal state is fncore's; how a field looks is devices/mercury/protocol.py's, the adapter's own codec, and the
service's error codes are its UNVERIFIED table. The register buffers a receipt's lines and prints it at CloseCheck,
so paper and cover matter at the commands that print a document, not at AddGoods.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ... import __version__
from ...devices.mercury import protocol
from ...devices.mercury.protocol import error_reply, ok_reply
from ...fiscal import CashOperationKind, Cashier, FiscalResult, PaymentKind, ReceiptType, TaxationSystem
from ..faults import Faults
from ..fncore import FiscalCore, FnCode, FnError, Registration, read_journal
from ..paper import PaperTape, render_document

__all__ = ["MercuryEmulator", "MercuryService", "PowerLoss"]

log = logging.getLogger("kktbridge.emulator.mercury")

FN_ERRORS: dict[FnCode, str] = {  # fncore's refusal → the service's error, by its UNVERIFIED name
    FnCode.SHIFT_CLOSED: "shift_closed",
    FnCode.SHIFT_OPEN: "shift_open",
    FnCode.SHIFT_EXPIRED: "shift_expired",
    FnCode.RECEIPT_OPEN: "receipt_open",
    FnCode.NO_RECEIPT: "receipt_closed",
    FnCode.ITEM_AFTER_PAYMENT: "bad_value",
    FnCode.NO_ITEMS: "no_items",
    FnCode.UNDERPAID: "underpaid",
    FnCode.NON_CASH_ABOVE_TOTAL: "non_cash_above_total",
    FnCode.NOT_ENOUGH_CASH: "not_enough_cash",
    FnCode.BAD_VALUE: "bad_value",
    FnCode.TAXATION: "taxation",
}
NO_SESSION = {"GetDriverInfo", "OpenSession"}
PRINTING = {"OpenShift", "CloseShift", "CloseCheck", "BringMoney", "WithdrawMoney", "PrintReport", "PrintText",
            "PrintDocFromFN"}  # need paper and a closed cover; `print_latency` delays them
MODEL_NAMES = {"185F": "Меркурий-185Ф", "119F": "Меркурий-119Ф"}
_PAY_ORDER = (PaymentKind.ELECTRONIC, PaymentKind.PREPAYMENT, PaymentKind.CREDIT, PaymentKind.OTHER,
              PaymentKind.CASH)  # cash last, so the change comes from it


class PowerLoss(Exception):
    """The `power_loss_at` switch fired: the server must drop the request unanswered and restart."""


def _cashier_dict(cashier: Cashier | None) -> dict[str, str] | None:
    if cashier is None:
        return None
    return {"name": cashier.name, **({"inn": cashier.inn} if cashier.inn else {})}


def _buyer_dict(request: dict[str, Any], contact: str | None = None) -> dict[str, str] | None:
    buyer = protocol.buyer_of(request.get("buyerInfo"), contact)
    if buyer is None:
        return None
    names = ("contact", "name", "inn", "birth_date", "citizenship", "document_code", "document_data", "address")
    return {name: getattr(buyer, name) for name in names if getattr(buyer, name)}


class MercuryService:
    """The Inecrman service and one register behind it, over one FiscalCore. Not thread-safe."""

    def __init__(self, core: FiscalCore, *, faults: Faults | None = None, paper: PaperTape | None = None,
                 model: str = "185F") -> None:
        self.core = core
        self.faults = faults or Faults()
        self.paper = paper or PaperTape()
        self.model = model
        self.sessions: dict[str, dict[str, Any]] = {}
        self.restart_at: str | None = None  # drop every session when this command arrives (one shot)
        self.drawer_opened = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "GetDriverInfo": self._driver_info, "OpenSession": self._open_session,
            "CloseSession": self._close_session, "ClosePorts": lambda request: ok_reply(),
            "GetStatus": self._status, "GetCommonInfo": self._common_info,
            "GetRegistrationInfo": self._registration_info, "GetDateTime": self._date_time,
            "OpenShift": self._open_shift, "CloseShift": self._close_shift, "OpenCheck": self._open_check,
            "AddGoods": self._add_goods, "CloseCheck": self._close_check, "ResetCheck": self._reset_check,
            "BringMoney": lambda request: self._cash(request, CashOperationKind.CASH_IN),
            "WithdrawMoney": lambda request: self._cash(request, CashOperationKind.CASH_OUT),
            "PrintReport": self._report, "OpenBox": self._open_box, "PrintText": self._print_text,
            "PrintDocFromFN": self._print_doc, "ReadSales": self._read_sales, "GetSales": self._get_sales,
        }
        self._sales: dict[str, Any] | None = None  # the journal ReadSales prepared

    # --- the one entry point -------------------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one command; PowerLoss when the `power_loss_at` switch says so."""
        name = request.get("command")
        if not isinstance(name, str):
            return error_reply("bad_request", "no command")
        self._power_loss("before", name)
        if self.restart_at and self.restart_at.lower() == name.lower():
            self.restart_at = None
            self.restart()
        handler = self._handlers.get(name)
        if handler is None:
            return error_reply("unknown_command", name)
        if name not in NO_SESSION and request.get("sessionKey") not in self.sessions:
            return error_reply("session_unknown")
        if self.prints(request) and name != "CloseCheck":
            refusal = self._printer_refusal()
            if refusal is not None:
                return refusal
        try:
            reply = handler(request)
        except FnError as exc:
            return error_reply(FN_ERRORS[exc.code], exc.message)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.info("Mercury emulator: %s refused as malformed: %s", name, exc)
            return error_reply("bad_request", f"{name}: {exc}")
        self._power_loss("after", name)
        return reply

    def prints(self, request: dict[str, Any]) -> bool:
        """Does this request print a document (needs paper, takes `print_latency`)?"""
        name = request.get("command")
        if name == "CloseCheck":
            return self.core.receipt is not None and not self.core.receipt.electronically
        if name in ("OpenShift", "CloseShift"):
            return request.get("printDoc", True) is not False
        return name in PRINTING

    def restart(self) -> None:
        """The service restarts: every session key is forgotten; the register keeps its state."""
        log.info("Mercury emulator: service restart, %d session(s) dropped", len(self.sessions))
        self.sessions.clear()

    # --- helpers ---------------------------------------------------------------------------------------

    def _printer_refusal(self) -> dict[str, Any] | None:
        if self.faults.cover_open:
            return error_reply("cover_open")
        if self.faults.no_paper:
            return error_reply("no_paper")
        return None

    def _power_loss(self, when: str, name: str) -> None:
        if self.faults.power_loss_at and self.faults.power_loss_at.lower() == f"{when}:{name}".lower():
            raise PowerLoss(f"{when} {name}")

    def _print_record(self, record: dict[str, Any] | None) -> None:
        if record is not None:
            self.paper.print_lines(render_document(record, self.core.registration))

    def _print_last(self, request: dict[str, Any]) -> None:
        if request.get("printDoc", True) is not False:
            self._print_record(self.core.last_document())

    def _document_reply(self, result: FiscalResult) -> dict[str, Any]:
        fields: dict[str, Any] = {"shiftNum": result.shift_number, "fiscalDocNum": result.fd_number,
                                  "fiscalSign": result.fiscal_sign,
                                  "dateTime": result.datetime.strftime(protocol.DATETIME_FORMAT)}
        if result.receipt_number is not None:
            fields["checkNum"] = result.receipt_number
        return ok_reply(**fields)

    def _now(self) -> str:
        return self.core.now().strftime(protocol.DATETIME_FORMAT)

    # --- service ---------------------------------------------------------------------------------------

    def _driver_info(self, request: dict[str, Any]) -> dict[str, Any]:
        return ok_reply(driverVer=f"kktbridge-emulator {__version__}")

    def _open_session(self, request: dict[str, Any]) -> dict[str, Any]:
        port = request.get("portName")
        if not isinstance(port, str) or not port:
            return error_reply("bad_request", "portName")
        model = request.get("model", self.model)
        serial = request.get("serialNumber")
        if model not in protocol.MODELS:
            return error_reply("bad_value", f"model {model}")
        if model != self.model or (serial and serial != self.core.registration.serial):
            return error_reply("port_unavailable", f"no {MODEL_NAMES[model]} {serial or ''} answers on {port}")
        key = secrets.token_hex(16)
        self.sessions[key] = {"port": port, "model": model, "baudRate": request.get("baudRate", 115200)}
        return ok_reply(sessionKey=key, protocolVer="1.0")

    def _close_session(self, request: dict[str, Any]) -> dict[str, Any]:
        self.sessions.pop(request.get("sessionKey"), None)  # type: ignore[arg-type]
        return ok_reply()

    def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        receipt = core.receipt
        last = core.last_result()
        fn_info: dict[str, Any] = {"status": 3, "fnNum": core.registration.fn_number, "unsignedDocs": {"qty": 0}}
        if last is not None:
            fn_info["lastDoc"] = protocol.last_doc_fields(last)
        opened = core.shift_opened_at
        return ok_reply(
            dateTime=self._now(), paperPresence=not self.faults.no_paper,
            shiftInfo={"isOpen": core.shift_open, "is24Expired": core.shift_expired, "num": core.shift_number,
                       "lastOpen": opened.strftime(protocol.DATETIME_FORMAT) if opened else None,
                       "cash": core.cash},
            checkInfo={"isOpen": receipt is not None, "num": core.receipts_in_shift,
                       "goodsQty": len(receipt.items) if receipt else 0},
            fnInfo=fn_info,
        )

    def _common_info(self, request: dict[str, Any]) -> dict[str, Any]:
        registration = self.core.registration
        return ok_reply(model=MODEL_NAMES[self.model], kktNum=registration.serial, fnNum=registration.fn_number,
                        ffdFnVer=registration.ffd, ffdKktVer=registration.ffd, ffdTotalVer=registration.ffd,
                        programVer=f"kktbridge {__version__}", dateTime=self._now())

    def _registration_info(self, request: dict[str, Any]) -> dict[str, Any]:
        registration = self.core.registration
        taxations = [TaxationSystem[name].index for name in registration.taxations]
        return ok_reply(isRegistered=True, registrationInfo={
            "owner": {"name": registration.organization, "inn": registration.inn},
            "kkt": {"regNum": registration.reg_number, "address": registration.address,
                    "location": registration.address},
            "taxSystem": taxations,
        })

    def _date_time(self, request: dict[str, Any]) -> dict[str, Any]:
        return ok_reply(dateTime=self._now())

    # --- shift -----------------------------------------------------------------------------------------

    def _open_shift(self, request: dict[str, Any]) -> dict[str, Any]:
        result = self.core.open_shift(_cashier_dict(protocol.cashier_of(request.get("cashierInfo"))))
        self._print_last(request)
        return self._document_reply(result)

    def _close_shift(self, request: dict[str, Any]) -> dict[str, Any]:
        result = self.core.close_shift(_cashier_dict(protocol.cashier_of(request.get("cashierInfo"))))
        self._print_last(request)
        return self._document_reply(result)

    def _report(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("reportCode", protocol.REPORT_X) != protocol.REPORT_X:
            return error_reply("not_supported", f"reportCode {request.get('reportCode')}")
        report = self.core.x_report()
        self._print_record({"doc": "x_report", "fd": None, "datetime": self.core.now().isoformat(), **report})
        return ok_reply()

    # --- receipt ---------------------------------------------------------------------------------------

    def _open_check(self, request: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        extra: dict[str, Any] = {}
        if request.get("timeZone") is not None:
            extra["time_zone"] = int(request["timeZone"])
        if request.get("industryInfo"):
            extra["industry"] = [_industry_dict(entry) for entry in request["industryInfo"]]
        if request.get("additionalProps"):
            extra["additional"] = str(request["additionalProps"])
        if request.get("internet"):
            extra["internet"] = True
        core.begin_receipt(protocol.receipt_type_of(request.get("checkType")),
                           taxation=protocol.taxation_of(request.get("taxSystem")),
                           cashier=_cashier_dict(protocol.cashier_of(request.get("cashierInfo"))),
                           electronically=request.get("printDoc", True) is False,
                           buyer=_buyer_dict(request), extra=extra)
        return ok_reply(shiftNum=core.shift_number, checkNum=core.receipts_in_shift + 1)

    def _add_goods(self, request: dict[str, Any]) -> dict[str, Any]:
        number = self.core.add_item(protocol.item_of(request))
        return ok_reply(goodsNum=number, shiftNum=self.core.shift_number, checkNum=self.core.receipts_in_shift + 1)

    def _close_check(self, request: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        receipt = core.receipt
        if receipt is None:
            return error_reply("receipt_closed")
        printed = self.prints(request)
        refusal = self._printer_refusal() if printed else None
        if refusal is not None and not self.faults.paper_out_at_close:
            return refusal
        payments = protocol.payments_of(request.get("payment")).by_kind()
        self._check_payments(payments)
        if request.get("sendCheckTo"):
            core.update_receipt(buyer={**(receipt.buyer or {}), "contact": str(request["sendCheckTo"])})
        for kind in _PAY_ORDER:
            if payments.get(kind):
                core.add_payment(kind, payments[kind])
        result = core.close_receipt()
        if printed and self.faults.paper_out_at_close:  # fiscalized in the FN; the paper ran out while printing
            self.faults.no_paper = True
            return error_reply("no_paper", "документ сформирован, печать прервана")
        if printed:
            self._print_record(core.last_document())
        return self._document_reply(result)

    def _check_payments(self, payments: dict[PaymentKind, int]) -> None:
        """CloseCheck is all or nothing: the sums are checked before any is added to the receipt (fncore's own
        checks then cannot fail halfway)."""
        receipt = self.core.receipt
        assert receipt is not None
        if not receipt.items:
            raise FnError(FnCode.NO_ITEMS, "no items to pay for")
        if self.core.shift_expired:
            raise FnError(FnCode.SHIFT_EXPIRED, "the shift is older than 24 hours")
        non_cash = sum(value for kind, value in payments.items() if kind is not PaymentKind.CASH)
        if non_cash > receipt.total:
            raise FnError(FnCode.NON_CASH_ABOVE_TOTAL, "non-cash payments exceed the total")
        if sum(payments.values()) < receipt.total:
            raise FnError(FnCode.UNDERPAID, f"paid {sum(payments.values())} of {receipt.total}")
        change = sum(payments.values()) - receipt.total
        cash = payments.get(PaymentKind.CASH, 0) - change
        outgoing = receipt.type in (ReceiptType.SALE_RETURN, ReceiptType.PURCHASE)
        if outgoing and cash > self.core.cash:
            raise FnError(FnCode.NOT_ENOUGH_CASH, "not enough cash in the drawer")

    def _reset_check(self, request: dict[str, Any]) -> dict[str, Any]:
        return ok_reply() if self.core.cancel_receipt() else error_reply("receipt_closed")

    # --- other -----------------------------------------------------------------------------------------

    def _cash(self, request: dict[str, Any], kind: CashOperationKind) -> dict[str, Any]:
        amount = request["cash"]
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError("cash must be an integer of kopecks")
        self.core.cash_operation(kind, amount, _cashier_dict(protocol.cashier_of(request.get("cashierInfo"))))
        self._print_record({"doc": kind.name.lower(), "fd": None, "datetime": self.core.now().isoformat(),
                            "amount": amount, "shift": self.core.shift_number, "cash": self.core.cash})
        return ok_reply()

    def _open_box(self, request: dict[str, Any]) -> dict[str, Any]:
        self.drawer_opened += 1
        return ok_reply()

    def _print_text(self, request: dict[str, Any]) -> dict[str, Any]:
        text = request.get(protocol.UNVERIFIED["PRINT_TEXT_FIELD"], "")
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        self.paper.print_lines(text.splitlines() or [""])
        return ok_reply()

    def _print_doc(self, request: dict[str, Any]) -> dict[str, Any]:
        wanted = request["fiscalDocNum"]
        record = self.core.last_document()
        if (record is None or record["fd"] != wanted) and self.core.journal_path is not None:
            record = next((r for r in reversed(read_journal(self.core.journal_path)) if r.get("fd") == wanted), None)
        if record is None or record.get("fd") != wanted:
            return error_reply("no_document", str(wanted))
        self._print_record(record)
        return ok_reply()

    # --- the sales journal (protocol.sales_journal; UNVERIFIED details there) ----------------------------------

    def _read_sales(self, request: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        records = [record for number in range(1, core.last_fd_number + 1)
                   if (record := core.document(number)) is not None]
        registration = core.registration
        self._sales = {"kktRegNum": registration.reg_number, "kktNum": registration.serial,
                       "ownerInn": registration.inn, "ffdVer": registration.ffd, "salesVer": "1",
                       **protocol.sales_journal(records, registration.fn_number)}
        return ok_reply()

    def _get_sales(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._sales is None:
            return error_reply("bad_request", "ReadSales first")
        return ok_reply(**self._sales)


def _industry_dict(entry: dict[str, Any]) -> dict[str, str]:
    r = protocol.industry_of(entry)
    return {"foiv_id": r.foiv_id, "document_date": r.document_date, "document_number": r.document_number,
            "value": r.value}


class MercuryEmulator:
    """The service as a process runs it: HTTP on `/api.json`, the fault switches, power loss and restarts."""

    def __init__(self, *, state_path: Path | str | None = None, journal_path: Path | str | None = None,
                 paper_path: Path | str | None = None, registration: Registration | None = None,
                 faults: Faults | None = None, model: str = "185F", fsync: bool = True,
                 exit_on_power_loss: bool = False) -> None:
        if model not in protocol.MODELS:
            raise ValueError(f"model must be one of {', '.join(protocol.MODELS)}")
        self.faults = faults or Faults()
        self._core_args: dict[str, Any] = dict(registration=registration, state_path=state_path,
                                               journal_path=journal_path, fsync=fsync)
        self.paper = PaperTape(paper_path)
        self.model = model
        self.exit_on_power_loss = exit_on_power_loss
        self.service = self._new_service()
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None
        self.restarts = 0
        self.requests = 0
        self.printing: str | None = None  # the command whose `print_latency` runs now, for the status

    def _new_service(self) -> MercuryService:
        return MercuryService(FiscalCore(**self._core_args), faults=self.faults, paper=self.paper, model=self.model)

    @property
    def core(self) -> FiscalCore:
        return self.service.core

    @property
    def url(self) -> str:
        assert self.address is not None, "serve_http() first"
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/api.json"

    # --- serving ---------------------------------------------------------------------------------------

    async def serve_http(self, host: str = "127.0.0.1", port: int = protocol.DEFAULT_PORT) -> tuple[str, int]:
        """Listen (port 0 picks a free one); returns the bound address."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/api.json", self._api)
        app.router.add_get("/", self._index)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.address = (bound[0], bound[1])
        return self.address

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=f"kktbridge Mercury service emulator ({MODEL_NAMES[self.model]}): "
                                 "POST JSON commands to /api.json\n")

    async def _api(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            payload = None
        if not isinstance(payload, dict):
            return _json(error_reply("bad_request", "the body is not a JSON object"))
        reply = await asyncio.shield(asyncio.ensure_future(self._run(payload)))
        if reply is None:  # the power went: the answer never leaves
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        return _json(reply)

    async def _run(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        async with self._lock:
            self.requests += 1
            log.debug("Mercury emulator: %s", payload.get("command"))
            if self.faults.print_latency > 0 and self.service.prints(payload):
                self.printing = str(payload.get("command"))
                try:
                    await asyncio.sleep(self.faults.print_latency)
                finally:
                    self.printing = None
            try:
                return self.service.handle(payload)
            except PowerLoss as exc:
                self._power_loss(str(exc))
                return None

    # --- faults ----------------------------------------------------------------------------------------

    def restart_service(self) -> None:
        """The `service_restart` switch: the service forgets every session key."""
        self.service.restart()

    def _power_loss(self, where: str) -> None:
        log.warning("fault: power loss %s", where)
        if self.exit_on_power_loss:
            os._exit(3)
        self.faults.power_loss_at = None
        self.service = self._new_service()  # a restart: only what the state file kept survives
        self.restarts += 1

    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """A control-port request: `faults`, `advance_clock`, `service_restart`, `service_restart_at`,
        `power_loss`, `status`."""
        if "faults" in request:
            self.faults.update(request["faults"])
        if "advance_clock" in request:
            self.core.advance_clock(float(request["advance_clock"]))
        if request.get("service_restart"):
            self.restart_service()
        if "service_restart_at" in request:
            self.service.restart_at = request["service_restart_at"] or None
        if request.get("power_loss"):
            self._power_loss("by the control port")
        return {"ok": True, **self.status()}

    def status(self) -> dict[str, Any]:
        core = self.core
        return {"shift_open": core.shift_open, "shift_number": core.shift_number, "last_fd": core.last_fd_number,
                "receipt_open": core.receipt is not None, "cash": core.cash, "sessions": len(self.service.sessions),
                "faults": self.faults.to_dict(), "restarts": self.restarts, "requests": self.requests,
                "printing": self.printing}


def _json(reply: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(reply, ensure_ascii=False).encode("utf-8"),
                        content_type="application/json", charset="utf-8")
