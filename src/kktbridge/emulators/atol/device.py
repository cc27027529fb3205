"""An emulated ATOL register's command interpreter: a request body in, a reply body out.

Wire framing lives in the server; fiscal state lives in fncore. This file holds what an ATOL register keeps
between commands besides the fiscal storage: its mode, its passwords, the requisites sent by 0xE8 for the
next document or item, its printer (paper, cover) and the fault switches. Codes are checked against the mode
table below before anything runs; an FnError becomes the ATOL error code of FN_ERRORS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from ...devices import tlv
from ...devices.atol import bcd
from ...devices.atol.commands import (
    FnValidity,
    PAYMENT_KIND_OF,
    RECEIPT_TYPE_OF,
    RECEIPT_TYPES,
    UNVERIFIED,
    CashInDrawer,
    Code,
    DeviceState,
    DeviceType,
    DocumentChunk,
    DocumentContent,
    DocumentInfo,
    FnSub,
    ItemLine,
    Mode,
    PaymentReply,
    RegisterValue,
    RegistrationInfo,
    Reply,
    ShiftState,
    StateCode,
    StateCodeFlags,
    StateFlags,
    parse_request,
)
from ...devices.atol.requisites import ReceiptRequisites, item_from
from ...devices.atol import charset
from ...fiscal import CashOperationKind, DocumentKind, FiscalResult, PaymentKind, TaxationSystem
from ..faults import Faults
from ..fncore import FiscalCore, FnCode, FnError, result_of
from ..paper import PaperTape, render_document

__all__ = ["AtolDevice", "PowerLoss"]

log = logging.getLogger("kktbridge.emulator.atol")


class PowerLoss(Exception):
    """The `power_loss_at` switch fired: the server must drop everything and restart the device."""


FN_ERRORS: dict[FnCode, int] = {
    FnCode.SHIFT_CLOSED: UNVERIFIED["ERROR_SHIFT_CLOSED"],  # type: ignore[dict-item]
    FnCode.SHIFT_OPEN: 156,
    FnCode.SHIFT_EXPIRED: 136,
    FnCode.RECEIPT_OPEN: 155,
    FnCode.NO_RECEIPT: 154,
    FnCode.ITEM_AFTER_PAYMENT: 102,
    FnCode.NO_ITEMS: 244,
    FnCode.UNDERPAID: 114,
    FnCode.NON_CASH_ABOVE_TOTAL: 113,
    FnCode.NOT_ENOUGH_CASH: 152,
    FnCode.BAD_VALUE: 8,
    FnCode.TAXATION: 231,
}

_ANY_MODE = {Code.DEVICE_STATE, Code.STATE_CODE, Code.DEVICE_TYPE, Code.FN, Code.OPEN_DRAWER, Code.PRINT_STRING,
             Code.BARCODE, Code.CUT, Code.BEEP, Code.CASH_IN_DRAWER, Code.READ_REGISTER}
MODE_COMMANDS: dict[Mode, set[int]] = {
    Mode.SELECT: {Code.ENTER_MODE},
    Mode.REGISTRATION: {Code.OPEN_SHIFT, Code.OPEN_RECEIPT, Code.WRITE_REQUISITE, Code.REGISTER_ITEM,
                        Code.PAYMENT, Code.CLOSE_RECEIPT, Code.CANCEL_RECEIPT, Code.CASH_IN, Code.CASH_OUT,
                        Code.LEAVE_MODE},
    Mode.REPORT_X: {Code.REPORT, Code.LEAVE_MODE, Code.WRITE_REQUISITE},
    Mode.REPORT_Z: {Code.Z_REPORT, Code.LEAVE_MODE, Code.WRITE_REQUISITE},
}
PRINTING = {Code.OPEN_SHIFT, Code.REGISTER_ITEM, Code.CLOSE_RECEIPT, Code.CASH_IN, Code.CASH_OUT, Code.REPORT,
            Code.Z_REPORT, Code.PRINT_STRING, Code.BARCODE}  # need paper and a closed cover
SLOW = {Code.OPEN_SHIFT, Code.CLOSE_RECEIPT, Code.CASH_IN, Code.CASH_OUT, Code.REPORT, Code.Z_REPORT,
        Code.PRINT_STRING, Code.BARCODE}  # print a whole document: the ones `print_latency` delays

_DOC_TYPE = {DocumentKind.OPEN_SHIFT: 2, DocumentKind.RECEIPT: 3, DocumentKind.CLOSE_SHIFT: 5}


def _document_info(record: dict) -> bytes:
    """The 0xA4 0x45 reply for an FN record."""
    result = result_of(record)
    return DocumentInfo(
        doc_type=_DOC_TYPE.get(result.kind, 0), fd_number=result.fd_number, fiscal_sign=int(result.fiscal_sign),
        clock=result.datetime, shift_number=result.shift_number, receipt_number=result.receipt_number or 0,
        receipt_type=RECEIPT_TYPES[result.receipt_type] if result.receipt_type else 0, total=result.total or 0,
    ).encode()


def _document_content(record: dict) -> DocumentContent:
    """The TLV content (payments, lines) of an FN record, for 0xA4 0x46."""
    payments = {PaymentKind[name.upper()]: value for name, value in (record.get("payments") or {}).items()}
    lines = tuple((line["name"], line["price"], Decimal(line["quantity"]), line["amount"])
                  for line in record.get("items") or ())
    return DocumentContent(payments, lines)


class AtolDevice:
    """One emulated ATOL register over a FiscalCore."""

    def __init__(self, core: FiscalCore, *, faults: Faults | None = None, paper: PaperTape | None = None,
                 password: int = 0, mode_password: int = 30, model: int = 63, serial: int | None = None,
                 on_power_loss: Callable[[], None] | None = None) -> None:
        self.core = core
        self.faults = faults or Faults()
        self.paper = paper or PaperTape()
        self.password = password
        self.mode_password = mode_password
        self.model = model
        self.serial = serial if serial is not None else int(core.registration.serial[-8:])
        self.mode = Mode.SELECT
        self._doc_tlvs: list[tlv.Tlv] = []  # 0xE8 for the next document (receipt level)
        self._item_tlvs: list[tlv.Tlv] = []  # 0xE8 for the next 0xE6
        self._handlers: dict[int, Callable[[bytes], bytes]] = {
            Code.DEVICE_STATE: self._device_state, Code.STATE_CODE: self._state_code,
            Code.DEVICE_TYPE: self._device_type, Code.ENTER_MODE: self._enter_mode,
            Code.LEAVE_MODE: self._leave_mode, Code.OPEN_SHIFT: self._open_shift,
            Code.OPEN_RECEIPT: self._open_receipt, Code.WRITE_REQUISITE: self._write_requisite,
            Code.REGISTER_ITEM: self._register_item, Code.PAYMENT: self._payment,
            Code.CLOSE_RECEIPT: self._close_receipt, Code.CANCEL_RECEIPT: self._cancel_receipt,
            Code.CASH_IN: lambda params: self._cash(params, CashOperationKind.CASH_IN),
            Code.CASH_OUT: lambda params: self._cash(params, CashOperationKind.CASH_OUT), Code.REPORT: self._report,
            Code.Z_REPORT: self._z_report, Code.OPEN_DRAWER: self._ok, Code.PRINT_STRING: self._print_string,
            Code.BARCODE: self._barcode, Code.CUT: self._ok, Code.BEEP: self._ok, Code.FN: self._fn,
            Code.CASH_IN_DRAWER: lambda params: CashInDrawer(self.core.cash).encode(),
            Code.READ_REGISTER: self._read_register,
        }

    # --- the one entry point -------------------------------------------------------------------------

    def handle(self, body: bytes) -> bytes:
        """Run one command; PowerLoss when the `power_loss_at` switch says so."""
        try:
            request = parse_request(body)
        except ValueError:
            return Reply(20).encode()
        code = request.code
        self._power_loss("before", code)
        if request.password != self.password:
            return bytes((140,)) if code == Code.DEVICE_TYPE else Reply(140).encode()  # 0xA5 answers error first
        handler = self._handlers.get(code)
        if handler is None:
            return Reply(242).encode()
        if code not in _ANY_MODE and code not in MODE_COMMANDS.get(self.mode, set()):
            return Reply(102).encode()
        if code in PRINTING and code != Code.CLOSE_RECEIPT:
            refusal = self._printer_refusal()
            if refusal is not None:
                return refusal
        try:
            reply = handler(request.params)
        except FnError as exc:
            return Reply(FN_ERRORS[exc.code]).encode()
        except (ValueError, KeyError, IndexError) as exc:
            log.info("ATOL emulator: command 0x%02X refused as malformed: %s", code, exc)
            return Reply(231).encode()
        self._power_loss("after", code)
        return reply

    def is_slow(self, body: bytes) -> bool:
        """Does this command print a whole document (and so take `print_latency`)?"""
        return len(body) > 2 and body[2] in SLOW

    # --- helpers ---------------------------------------------------------------------------------------

    def _printer_refusal(self) -> bytes | None:
        if self.faults.cover_open:
            return Reply(UNVERIFIED["ERROR_COVER_OPEN"]).encode()  # type: ignore[arg-type]
        if self.faults.no_paper:
            return Reply(103).encode()
        return None

    def _power_loss(self, when: str, code: int) -> None:
        if self.faults.power_loss_at and self.faults.power_loss_at.lower() == f"{when}:{code:02x}":
            raise PowerLoss(f"{when} 0x{code:02X}")

    def _print_document(self, result: FiscalResult | None = None) -> None:
        record = self.core.last_document() if result is not None else None
        if record is not None:
            self.paper.print_lines(render_document(record, self.core.registration))

    def _take_doc_requisites(self) -> ReceiptRequisites:
        gathered = ReceiptRequisites()
        for item in self._doc_tlvs:
            gathered.add(item)
        self._doc_tlvs = []
        return gathered

    @staticmethod
    def _ok(params: bytes) -> bytes:
        return Reply().encode()

    # --- state queries ---------------------------------------------------------------------------------

    def _device_state(self, params: bytes) -> bytes:
        flags = StateFlags.FISCALIZED | StateFlags.FN_ACTIVE
        if self.core.shift_open:
            flags |= StateFlags.SHIFT_OPEN
        if not self.faults.no_paper:
            flags |= StateFlags.PAPER
        if self.faults.cover_open:
            flags |= StateFlags.COVER_OPEN
        receipt = self.core.receipt
        return DeviceState(
            clock=self.core.now(), flags=flags, serial=self.serial, model=self.model, mode=int(self.mode),
            submode=0, receipt_number=self.core.receipts_in_shift + (1 if receipt else 0),
            shift_number=self.core.shift_number, receipt_state=RECEIPT_TYPES[receipt.type] if receipt else 0,
            receipt_sum=receipt.total if receipt else 0,
        ).encode()

    def _state_code(self, params: bytes) -> bytes:
        flags = StateCodeFlags.NO_PAPER if self.faults.no_paper else StateCodeFlags(0)
        if self.faults.cover_open:
            flags |= StateCodeFlags.MECHANICAL_ERROR
        return StateCode(int(self.mode), 0, flags).encode()

    def _device_type(self, params: bytes) -> bytes:
        return DeviceType(protocol=3, device_type=1, model=self.model, version=b"\x03\x01\x00\x00\x01",
                          name="АТОЛ эмулятор kktbridge").encode()

    def _fn(self, params: bytes) -> bytes:
        sub = params[0]
        if sub == FnSub.SHIFT_STATE:
            states = UNVERIFIED["A4_10_STATES"]
            state = states["expired"] if self.core.shift_expired else states["open"] if self.core.shift_open \
                else states["closed"]  # type: ignore[index]
            return ShiftState(state, self.core.shift_number, self.core.receipts_in_shift).encode()
        if sub == FnSub.FN_NUMBER:
            return Reply().encode()[:2] + self.core.registration.fn_number.encode("ascii")
        if sub == FnSub.FN_VALIDITY:
            valid_until = date.fromisoformat(self.core.registration.fn_valid_until)
            return FnValidity(valid_until, registrations_left=29, registrations_made=1).encode()
        if sub == FnSub.REGISTRATION:
            registration = self.core.registration
            mask = sum(TaxationSystem[name].mask for name in registration.taxations)
            return RegistrationInfo(registration.reg_number, registration.inn, mask).encode()
        if sub == FnSub.OFD_STATUS:
            return Reply().encode()[:2] + bytes(2) + bytes(2) + bytes(4) + bytes(5)
        if sub == FnSub.DOCUMENT:
            wanted = int.from_bytes(params[1:5], "little") if len(params) >= 5 else UNVERIFIED["A4_45_LAST"]
            if wanted == UNVERIFIED["A4_45_LAST"]:
                record = self.core.last_document()
                if record is None:
                    return DocumentInfo(0, 0, 0, datetime(2000, 1, 1), 0, 0, 0, 0).encode()
            else:
                record = self._archived(wanted)
                if record is None:
                    return Reply(UNVERIFIED["A4_NO_DOCUMENT"]).encode()  # type: ignore[arg-type]
            return _document_info(record)
        if sub == FnSub.DOCUMENT_DATA:
            record = self._archived(int.from_bytes(params[1:5], "little"))
            if record is None:
                return Reply(UNVERIFIED["A4_NO_DOCUMENT"]).encode()  # type: ignore[arg-type]
            data = _document_content(record).encode()
            offset = int.from_bytes(params[5:7], "little")
            return DocumentChunk(len(data), data[offset:offset + UNVERIFIED["A4_46_CHUNK"]]).encode()  # type: ignore
        return Reply(242).encode()

    def _archived(self, fd_number: int) -> dict | None:
        """FN document `fd_number` as 0xA4 0x45 n / 0x46 n give it back: none while `documents_unreadable`."""
        return None if self.faults.documents_unreadable else self.core.document(fd_number)

    def _read_register(self, params: bytes) -> bytes:
        """0x91: the shift counters of UNVERIFIED["91_*"] (a register number it does not know is malformed)."""
        register, receipt_type = params[0], RECEIPT_TYPE_OF[params[1]]
        if register == UNVERIFIED["91_PAYMENTS"]:
            return RegisterValue(self.core.shift_paid(receipt_type, PAYMENT_KIND_OF[params[2]])).encode()
        if register == UNVERIFIED["91_RECEIPTS"]:
            return RegisterValue(self.core.shift_count(receipt_type)).encode()
        raise ValueError(f"no register {register}")

    # --- modes -----------------------------------------------------------------------------------------

    def _enter_mode(self, params: bytes) -> bytes:
        mode = Mode(params[0])
        if bcd.decode(params[1:5]) != self.mode_password:
            return Reply(140).encode()
        if mode not in MODE_COMMANDS or mode is Mode.SELECT:
            return Reply(122).encode()
        self.mode = mode
        return Reply().encode()

    def _leave_mode(self, params: bytes) -> bytes:
        if self.core.receipt is not None:
            return Reply(155).encode()
        self.mode = Mode.SELECT
        self._doc_tlvs = []
        return Reply().encode()

    # --- shift -----------------------------------------------------------------------------------------

    def _cashier_dict(self, gathered: ReceiptRequisites) -> dict[str, str] | None:
        if gathered.cashier is None:
            return None
        out = {"name": gathered.cashier.name}
        if gathered.cashier.inn:
            out["inn"] = gathered.cashier.inn
        return out

    def _open_shift(self, params: bytes) -> bytes:
        result = self.core.open_shift(self._cashier_dict(self._take_doc_requisites()))
        self._print_document(result)
        return Reply().encode()

    def _z_report(self, params: bytes) -> bytes:
        result = self.core.close_shift(self._cashier_dict(self._take_doc_requisites()))
        self._print_document(result)
        return Reply().encode()

    def _report(self, params: bytes) -> bytes:
        if params and params[0] != 1:
            return Reply(163).encode()
        self._take_doc_requisites()
        report = self.core.x_report()
        self.paper.print_lines(render_document({"doc": "x_report", "fd": None,
                                                "datetime": self.core.now().isoformat(), **report},
                                               self.core.registration))
        return Reply().encode()

    # --- receipt ---------------------------------------------------------------------------------------

    def _open_receipt(self, params: bytes) -> bytes:
        flags, type_byte = params[0], params[1]
        if type_byte not in RECEIPT_TYPE_OF:
            return Reply(106).encode()
        self.core.begin_receipt(RECEIPT_TYPE_OF[type_byte], electronically=bool(flags & 2))
        self._item_tlvs = []
        pending, self._doc_tlvs = self._doc_tlvs, []
        for item in pending:
            self._receipt_requisite(item)
        return Reply().encode()

    def _write_requisite(self, params: bytes) -> bytes:
        flags = params[0]
        for item in tlv.decode(params[1:]):
            if flags & UNVERIFIED["E8_ITEM_FLAG"]:  # type: ignore[operator]
                if self.core.receipt is None:
                    return Reply(154).encode()
                self._item_tlvs.append(item)
            elif self.core.receipt is not None:
                self._receipt_requisite(item)
            else:
                self._doc_tlvs.append(item)
        return Reply().encode()

    def _receipt_requisite(self, item: tlv.Tlv) -> None:
        gathered = ReceiptRequisites()
        gathered.add(item)
        receipt = self.core.receipt
        buyer = cashier = None
        if gathered.buyer is not None:
            current = (receipt.buyer or {}) if receipt else {}
            buyer = {**current, **{k: v for k, v in _buyer_dict(gathered.buyer).items() if v}}
        if gathered.cashier is not None:
            current = (receipt.cashier or {}) if receipt else {}
            cashier = {**current, **{k: v for k, v in (self._cashier_dict(gathered) or {}).items() if v}}
        self.core.update_receipt(taxation=gathered.taxation, cashier=cashier, buyer=buyer, extra=gathered.extra)

    def _register_item(self, params: bytes) -> bytes:
        line = ItemLine.decode(params)
        item = item_from(line, self._item_tlvs)
        self._item_tlvs = []
        self.core.add_item(item)
        return Reply().encode()

    def _payment(self, params: bytes) -> bytes:
        kind = PAYMENT_KIND_OF.get(params[1])
        if kind is None:
            return Reply(126).encode()
        remainder, change = self.core.add_payment(kind, bcd.decode(params[2:7]))
        return PaymentReply(remainder, change).encode()

    def _close_receipt(self, params: bytes) -> bytes:
        kind = PAYMENT_KIND_OF.get(params[1])
        if kind is None:
            return Reply(126).encode()
        refusal = self._printer_refusal()
        if refusal is not None and not self.faults.paper_out_at_close:
            return refusal
        amount = bcd.decode(params[2:7])
        if self.core.receipt is not None and (amount or not self.core.receipt.payments):
            self.core.add_payment(kind, amount)
        result = self.core.close_receipt()
        if self.faults.paper_out_at_close:  # fiscalized in the FN; the tape ran out while printing it
            self.faults.no_paper = True
            return Reply(103).encode()
        self._print_document(result)
        return Reply().encode()

    def _cancel_receipt(self, params: bytes) -> bytes:
        if not self.core.cancel_receipt():
            return Reply(154).encode()
        self._item_tlvs = []
        return Reply().encode()

    def _cash(self, params: bytes, kind: CashOperationKind) -> bytes:
        cashier = self._cashier_dict(self._take_doc_requisites())
        self.core.cash_operation(kind, bcd.decode(params[1:6]), cashier)
        record = {"doc": kind.name.lower(), "fd": None, "datetime": self.core.now().isoformat(),
                  "amount": bcd.decode(params[1:6]), "shift": self.core.shift_number, "cash": self.core.cash}
        self.paper.print_lines(render_document(record, self.core.registration))
        return Reply().encode()

    def _print_string(self, params: bytes) -> bytes:
        self.paper.print_lines([charset.decode(params)])
        return Reply().encode()

    def _barcode(self, params: bytes) -> bytes:
        self.paper.print_lines([f"[{'QR' if params[0] == 0 else 'EAN13'}] {params[14:].decode('utf-8')}"])
        return Reply().encode()


def _buyer_dict(buyer) -> dict[str, str | None]:
    return {name: getattr(buyer, name) for name in ("contact", "name", "inn", "birth_date", "citizenship",
                                                    "document_code", "document_data", "address")}
