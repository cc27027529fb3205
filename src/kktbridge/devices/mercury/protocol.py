"""The Mercury JSON service (Incotex "универсальный драйвер", Inecrman) as requests and replies; no I/O here.

Everything that decides how a value looks on `POST /api.json` lives in this file, in both directions: the adapter
builds requests and reads replies with it, the emulator reads requests and builds replies with it, so a field
cannot be written one way and read another. Units are the service's: money an int of kopecks, quantity an int
× 10000, `taxCode` / `paymentFormCode` / `productTypeCode` / `measureUnit` the FFD codes (1199, 1214, 1212, 2108),
`taxSystem` the ordinal 0–5, `checkType` 0–3. Names and units come from KKTServiceLib (spec/devices.md §2); where
the public sources stop, the choice is in the table UNVERIFIED below and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...fiscal import (
    AgentInfo,
    AgentType,
    Buyer,
    CashOperation,
    CashOperationKind,
    Cashier,
    DocumentKind,
    DocumentLine,
    FiscalResult,
    FnDocument,
    FormatError,
    IndustryRequisite,
    Item,
    MarkingCode,
    Measure,
    PaymentKind,
    PaymentMethod,
    PaymentObject,
    Payments,
    Quantity,
    Receipt,
    ReceiptType,
    Supplier,
    TaxationSystem,
    ValidationFailed,
    VatRate,
)
from ..errors import DeviceError, device_error

__all__ = [
    "CHECK_TYPES",
    "DATETIME_FORMAT",
    "DEFAULT_PORT",
    "DEFAULT_URL",
    "MODELS",
    "PAYMENT_FIELDS",
    "QUANTITY_SCALE",
    "RECEIPT_TYPE_OF",
    "REPORT_X",
    "UNVERIFIED",
    "CommonInfo",
    "LastDocument",
    "ReceiptRequests",
    "RegistrationData",
    "Status",
    "parse_sales",
    "sales_journal",
    "add_goods",
    "agent_info",
    "buyer_info",
    "buyer_of",
    "cash_operation",
    "cashier_info",
    "cashier_of",
    "check_reply",
    "close_check",
    "close_shift",
    "command",
    "error_code",
    "error_reply",
    "industry_info",
    "industry_of",
    "is_session_error",
    "item_of",
    "keyed",
    "last_doc_fields",
    "mc_info",
    "mercury_error",
    "ok_reply",
    "open_check",
    "open_session",
    "open_shift",
    "parse_common_info",
    "parse_document",
    "parse_last_document",
    "parse_registration",
    "parse_session",
    "parse_status",
    "payments_of",
    "print_report",
    "print_text",
    "receipt_requests",
    "receipt_type_of",
    "simple",
    "taxation_of",
]

DEFAULT_PORT = 50010
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}/api.json"
MODELS = ("185F", "119F")  # "185F" also covers 115Ф, 130Ф and 180Ф
QUANTITY_SCALE = 10000  # KKTServiceLib QuantityConverter: 1.5 → 15000
_MICROS_PER_UNIT = 1_000_000 // QUANTITY_SCALE  # Quantity keeps millionths
REPORT_X = 1  # PrintReport reportCode 1: the shift report from the FN without closing it
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # KKTServiceLib CustomDateTimeConverter("yyyy-MM-ddTHH:mm:ss")

CHECK_TYPES: dict[ReceiptType, int] = {
    ReceiptType.SALE: 0,
    ReceiptType.SALE_RETURN: 1,
    ReceiptType.PURCHASE: 2,
    ReceiptType.PURCHASE_RETURN: 3,
}
RECEIPT_TYPE_OF = {value: key for key, value in CHECK_TYPES.items()}
PAYMENT_FIELDS: dict[PaymentKind, str] = {  # CloseCheck payment{...}, kopecks
    PaymentKind.CASH: "cash",
    PaymentKind.ELECTRONIC: "ecash",
    PaymentKind.PREPAYMENT: "prepayment",
    PaymentKind.CREDIT: "credit",
    PaymentKind.OTHER: "consideration",
}
_PAYMENT_KIND_OF = {value: key for key, value in PAYMENT_FIELDS.items()}

# UNVERIFIED against the Incotex PDF ("Универсальный драйвер ККТ Меркурий. Протокол JSON"): every value here is
# a plausible design, used by both the adapter and the emulator, not checked against the real service.
UNVERIFIED: dict[str, Any] = {
    # The service's `result` codes: name → (code, the service's description, kktbridge code). The real numbers
    # are not public; the names are what kktbridge needs to tell apart.
    "ERRORS": {
        "bad_request": (1, "Ошибка в запросе: неверный JSON или поле команды", "bad_value"),
        "unknown_command": (2, "Неизвестная команда", "not_supported"),
        "session_unknown": (3, "Сессия не найдена: неверный или устаревший ключ сессии", "link"),
        "port_unavailable": (4, "Порт ККТ недоступен или ККТ не найдена", "link"),
        "no_answer": (5, "ККТ не ответила на команду", "outcome_unknown"),
        "not_supported": (6, "Команда не поддерживается моделью ККТ", "not_supported"),
        "bad_value": (7, "Неверное значение параметра", "bad_value"),
        "no_paper": (101, "Нет бумаги", "no_paper"),
        "cover_open": (102, "Открыта крышка принтера", "cover_open"),
        "printer_error": (103, "Ошибка принтера", "printer_error"),
        "shift_closed": (201, "Смена закрыта", "shift_closed"),
        "shift_open": (202, "Смена уже открыта", "shift_open"),
        "shift_expired": (203, "Смена превысила 24 часа", "shift_expired"),
        "receipt_open": (204, "Чек открыт, операция невозможна", "receipt_open"),
        "receipt_closed": (205, "Чек не открыт", "receipt_closed"),
        "underpaid": (206, "Сумма оплат меньше суммы чека", "underpaid"),
        "non_cash_above_total": (207, "Сумма безналичных оплат больше суммы чека", "non_cash_above_total"),
        "not_enough_cash": (208, "Недостаточно наличных в денежном ящике", "not_enough_cash"),
        "no_items": (209, "В чеке нет предметов расчёта", "bad_value"),
        "taxation": (210, "Система налогообложения не указана при регистрации ККТ", "bad_value"),
        "no_document": (211, "Документ с таким номером не найден в ФН", "fn_error"),
        "busy": (8, "ККТ занята: чтение журнала продаж ещё не закончено", "busy"),
    },
    # GetStatus fnInfo.lastDoc: `num` and `dateTime` are public (KKTServiceLib FiscalDocument); these fields,
    # which reconciliation needs, are kktbridge's design: our field → the service's key.
    "LAST_DOC": {
        "fiscal_sign": "fiscalSign",  # the printed ФП, a decimal string
        "kind": "docType",  # the FN document type code (DocumentKind's value: 2 open shift, 3 receipt, 5 close)
        "shift_number": "shiftNum",
        "receipt_number": "checkNum",  # receipts only
        "check_type": "checkType",  # receipts only, 0–3 as in OpenCheck
        "total": "sum",  # receipts only, kopecks
    },
    # ReadSales / GetSales (KKTServiceLib's sales journal, "журнал продаж"): the public shape has `shifts` as one
    # JournalShift; we send and accept a list of them. ReadSales prepares the journal at once (the real service
    # may read the register's database in the background: GetSales then answers `busy` until it is ready).
    # Open and close entries carry `fiscalSign` too (the public JournalShiftOpenInfo has none).
    "SALES_SHIFTS_LIST": True,
    "SALES_SHIFT_SIGN": "fiscalSign",
    # PrintText: one line of non-fiscal text per command, in this field.
    "PRINT_TEXT_FIELD": "text",
    # AddGoods nomenclatureCode (tag 1162, FFD < 1.2): the raw bytes as base64, like mcInfo.mc.
    "NOMENCLATURE_ENCODING": "base64",
}

_ERRORS: dict[str, tuple[int, str, str]] = UNVERIFIED["ERRORS"]
_BY_CODE = {code: (name, text, kind) for name, (code, text, kind) in _ERRORS.items()}
_LAST: dict[str, str] = UNVERIFIED["LAST_DOC"]
_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


# --- requests ----------------------------------------------------------------------------------------------


def command(name: str, **fields: Any) -> dict[str, Any]:
    """A request body: the command name and its fields, leaving out the ones that are None."""
    return {"command": name, **{key: value for key, value in fields.items() if value is not None}}


def keyed(body: dict[str, Any], session_key: str | None) -> dict[str, Any]:
    """The request as sent: `sessionKey` first (null for OpenSession and GetDriverInfo), then the body."""
    return {"sessionKey": session_key, **body}


def open_session(port_name: str, model: str = "185F", baud_rate: int | None = None,
                 serial_number: str | None = None) -> dict[str, Any]:
    if model not in MODELS:
        raise FormatError("mercury_model", f"модель ККТ «{model}» не поддерживается службой (185F, 119F)",
                          f"model '{model}' is not one the service knows (185F, 119F)")
    return command("OpenSession", portName=port_name, model=model, baudRate=baud_rate,
                   serialNumber=serial_number or None)


def cashier_info(cashier: Cashier | None) -> dict[str, str] | None:
    if cashier is None or not cashier.name:
        return None
    return {"cashierName": cashier.name, **({"cashierINN": cashier.inn} if cashier.inn else {})}


def open_shift(cashier: Cashier | None = None, print_doc: bool = True) -> dict[str, Any]:
    return command("OpenShift", printDoc=print_doc, cashierInfo=cashier_info(cashier))


def close_shift(cashier: Cashier | None = None, print_doc: bool = True) -> dict[str, Any]:
    return command("CloseShift", printDoc=print_doc, cashierInfo=cashier_info(cashier))


def open_check(receipt: Receipt) -> dict[str, Any]:
    return command(
        "OpenCheck",
        checkType=CHECK_TYPES[receipt.type],
        taxSystem=receipt.taxation.index if receipt.taxation is not None else None,
        printDoc=not receipt.electronically,
        cashierInfo=cashier_info(receipt.cashier),
        buyerInfo=buyer_info(receipt.buyer),
        additionalProps=receipt.additional_info or None,
        internet=True if receipt.internet else None,
        timeZone=receipt.time_zone,
        industryInfo=[industry_info(r) for r in receipt.industry] or None,
    )


def add_goods(item: Item, *, agent: AgentInfo | None = None, supplier: Supplier | None = None) -> dict[str, Any]:
    """One line. `agent`/`supplier` are the receipt's, used when the item has none of its own (the service has
    agent data per line only). Raises FormatError when the quantity has more than 4 decimals."""
    return command(
        "AddGoods",
        productName=item.name,
        qty=item.quantity.scaled(QUANTITY_SCALE),
        measureUnit=int(item.measure),
        taxCode=int(item.vat if item.vat is not None else VatRate.NONE),
        paymentFormCode=int(item.payment_method),
        productTypeCode=int(item.payment_object),
        price=item.price,
        sum=item.amount,
        exciseAmount=item.excise,
        countryOfOrigin=item.country_code or None,
        customsDeclaration=item.customs_declaration or None,
        additionalAttribute=item.additional_info or None,
        nomenclatureCode=_b64(item.nomenclature_code) if item.nomenclature_code else None,
        mcInfo=mc_info(item.marking),
        agent=agent_info(item.agent or agent, item.supplier or supplier),
        industryAttribute=[industry_info(r) for r in item.industry] or None,
    )


def close_check(receipt: Receipt) -> dict[str, Any]:
    """`payment` always carries `cash` and `ecash` (as the public client sends them), the others when not zero."""
    paid = receipt.payments
    payment = {"cash": paid.cash, "ecash": paid.electronic}
    for kind, value in ((PaymentKind.PREPAYMENT, paid.prepayment), (PaymentKind.CREDIT, paid.credit),
                        (PaymentKind.OTHER, paid.other)):
        if value:
            payment[PAYMENT_FIELDS[kind]] = value
    contact = receipt.buyer.contact if receipt.buyer is not None else None
    return command("CloseCheck", payment=payment, sendCheckTo=contact or None)


@dataclass(frozen=True, slots=True)
class ReceiptRequests:
    open: dict[str, Any]
    goods: list[dict[str, Any]]
    close: dict[str, Any]


def receipt_requests(receipt: Receipt) -> ReceiptRequests:
    """Every request of a receipt, built before the register is touched: a value the service cannot carry is a
    ValidationFailed naming its field (`items[2].quantity`)."""
    goods, bad = [], []
    for index, item in enumerate(receipt.items):
        try:
            goods.append(add_goods(item, agent=receipt.agent, supplier=receipt.supplier))
        except FormatError as exc:
            field = "quantity" if exc.code.startswith("quantity") else "agent"
            bad.append(exc.at(f"items[{index}].{field}"))
    if bad:
        raise ValidationFailed(bad)
    return ReceiptRequests(open_check(receipt), goods, close_check(receipt))


def cash_operation(operation: CashOperation) -> dict[str, Any]:
    name = "BringMoney" if operation.kind is CashOperationKind.CASH_IN else "WithdrawMoney"
    return command(name, cash=operation.amount, cashierInfo=cashier_info(operation.cashier))


def print_report(report_code: int = REPORT_X) -> dict[str, Any]:
    return command("PrintReport", reportCode=report_code)


def print_text(line: str) -> dict[str, Any]:
    return command("PrintText", **{UNVERIFIED["PRINT_TEXT_FIELD"]: line})


def simple(name: str) -> dict[str, Any]:
    """A command without fields: GetStatus, GetCommonInfo, GetRegistrationInfo, ResetCheck, OpenBox, CloseSession."""
    return command(name)


# --- blocks ------------------------------------------------------------------------------------------------


def buyer_info(buyer: Buyer | None) -> dict[str, Any] | None:
    """buyerInfo (tag 1256 and its parts); the contact (1008) travels in CloseCheck `sendCheckTo`."""
    if buyer is None or not buyer.has_details():
        return None
    code = buyer.document_code
    doc_type = int(code) if code and code.isdigit() else code  # docType is a number in KKTServiceLib
    fields = {"buyerName": buyer.name, "buyerINN": buyer.inn, "birthday": _iso_date(buyer.birth_date),
              "citizenship": buyer.citizenship, "docType": doc_type, "docData": buyer.document_data,
              "address": buyer.address}
    return {key: value for key, value in fields.items() if value not in (None, "")}


def mc_info(marking: MarkingCode | None) -> dict[str, Any] | None:
    """mcInfo (FFD 1.2): the code as base64, the processing mode (2102), the planned status (2003), the part
    (1291) as a fraction. The code type (2100) has no field: the register determines it."""
    if marking is None:
        return None
    info: dict[str, Any] = {"mc": _b64(marking.code), "processingMode": marking.processing_mode}
    if marking.planned_status is not None:
        info["plannedStatus"] = marking.planned_status
    if marking.fraction:
        numerator, _, denominator = marking.fraction.partition("/")
        info["part"] = {"numerator": int(numerator), "denominator": int(denominator)}
    return info


def agent_info(agent: AgentInfo | None, supplier: Supplier | None) -> dict[str, Any] | None:
    """agent{...}: the agent (1222 as the service's ordinal 0–6: the bit number of the FFD mask), its 1223
    block and the supplier (1224). A supplier without an agent goes without `code`."""
    if agent is None and supplier is None:
        return None
    fields: dict[str, Any] = {}
    if agent is not None:
        fields.update(code=_agent_code(agent.agent_type), payingOp=agent.paying_operation,
                      payingPhone=list(agent.paying_phones), transfName=agent.transfer_operator_name,
                      transfINN=agent.transfer_operator_inn, transfAddress=agent.transfer_operator_address,
                      transfPhone=list(agent.transfer_operator_phones), operatorPhone=list(agent.operator_phones))
    if supplier is not None:
        fields.update(supplierPhone=list(supplier.phones), supplierINN=supplier.inn, supplierName=supplier.name)
    return {key: value for key, value in fields.items() if value not in (None, "", [])}


def industry_info(requisite: IndustryRequisite) -> dict[str, str]:
    """industryAttribute[] / industryInfo[] (1260 / 1261); the date as yyyy-MM-dd."""
    return {"idFOIV": requisite.foiv_id, "docDate": _iso_date(requisite.document_date) or "",
            "docNum": requisite.document_number, "value": requisite.value}


def _agent_code(kind: AgentType) -> int:
    mask = int(kind)
    if mask <= 0 or mask & (mask - 1):
        raise FormatError("agent_type", "у позиции может быть только один признак агента",
                          "an item can have one agent type only")
    return mask.bit_length() - 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso_date(value: str | None) -> str | None:
    """dd.mm.yyyy (the FFD form) → yyyy-MM-dd (the service's); anything else as it is."""
    if not value:
        return None
    found = _DATE.match(value)
    return f"{found[3]}-{found[2]}-{found[1]}" if found else value


def _ffd_date(value: str | None) -> str | None:
    if not value:
        return None
    found = _ISO_DATE.match(value)
    return f"{found[3]}.{found[2]}.{found[1]}" if found else value


# --- replies -----------------------------------------------------------------------------------------------


def error_code(name: str) -> int:
    """The service's `result` code of a situation named in UNVERIFIED["ERRORS"]."""
    return _ERRORS[name][0]


def mercury_error(code: int, description: str | None = None) -> DeviceError:
    """The DeviceError of a `result` code; the service's own code and description travel inside it."""
    _, text, kind = _BY_CODE.get(code, (None, f"Ошибка службы ККТ Меркурий {code}", "device_error"))
    return device_error(kind, device_code=code, device_text=description or text)


def is_session_error(reply: Any) -> bool:
    """Does the service say it does not know the session key (it restarted, or the session timed out)?"""
    return isinstance(reply, dict) and reply.get("result") == error_code("session_unknown")


def check_reply(reply: Any) -> dict[str, Any]:
    """The reply itself if `result` is 0; the service's error as a DeviceError otherwise."""
    result = reply.get("result") if isinstance(reply, dict) else None
    if not isinstance(result, int) or isinstance(result, bool):
        raise device_error("device_error", device_text=f"not a reply of the Mercury service: {str(reply)[:200]}")
    if result != 0:
        raise mercury_error(result, str(reply.get("description") or "") or None)
    return reply


def ok_reply(**fields: Any) -> dict[str, Any]:
    """A successful reply (the emulator's side)."""
    return {"result": 0, "description": "", **fields}


def error_reply(name: str, detail: str | None = None) -> dict[str, Any]:
    """A refusal by its UNVERIFIED name (the emulator's side); `detail` follows the service's text."""
    code, text, _ = _ERRORS[name]
    return {"result": code, "description": f"{text}: {detail}" if detail else text}


def parse_session(reply: dict[str, Any]) -> str:
    key = reply.get("sessionKey")
    if not isinstance(key, str) or not key:
        raise _malformed("OpenSession", reply, "no sessionKey")
    return key


@dataclass(frozen=True, slots=True)
class LastDocument:
    """fnInfo.lastDoc: the last document in the FN. Only fd_number and datetime are in the public contract."""

    fd_number: int
    datetime: datetime
    kind: DocumentKind | None = None
    fiscal_sign: str | None = None
    shift_number: int | None = None
    receipt_number: int | None = None
    receipt_type: ReceiptType | None = None
    total: int | None = None

    def to_result(self, fn_number: str, reg_number: str = "") -> FiscalResult:
        if self.kind is None or self.fiscal_sign is None or self.shift_number is None:
            raise device_error("not_supported", device_text=(
                "служба не сообщает тип и ФП последнего документа (fnInfo.lastDoc) / the service does not report "
                "the last document's type and fiscal sign (fnInfo.lastDoc)"))
        receipt = self.kind is DocumentKind.RECEIPT
        return FiscalResult(kind=self.kind, fd_number=self.fd_number, fiscal_sign=self.fiscal_sign,
                            fn_number=fn_number, shift_number=self.shift_number, datetime=self.datetime,
                            reg_number=reg_number, receipt_number=self.receipt_number if receipt else None,
                            total=self.total if receipt else None,
                            receipt_type=self.receipt_type if receipt else None)


@dataclass(frozen=True, slots=True)
class Status:
    """GetStatus, typed."""

    datetime: datetime
    paper: bool
    shift_open: bool
    shift_expired: bool
    shift_number: int
    shift_opened_at: datetime | None
    cash: int | None
    receipt_open: bool
    receipt_number: int | None
    goods: int
    fn_number: str
    unsent: int
    last: LastDocument | None

    @property
    def last_fd_number(self) -> int:
        return self.last.fd_number if self.last is not None else 0


def parse_status(reply: dict[str, Any]) -> Status:
    try:
        shift, check, fn = reply["shiftInfo"], reply.get("checkInfo") or {}, reply.get("fnInfo") or {}
        return Status(
            datetime=_when(reply["dateTime"]),
            paper=bool(reply.get("paperPresence", True)),
            shift_open=bool(shift["isOpen"]),
            shift_expired=bool(shift.get("is24Expired", False)),
            shift_number=int(shift.get("num") or 0),
            shift_opened_at=_when(shift["lastOpen"]) if shift.get("lastOpen") else None,
            cash=shift.get("cash"),
            receipt_open=bool(check.get("isOpen", False)),
            receipt_number=check.get("num"),
            goods=int(check.get("goodsQty") or 0),
            fn_number=str(fn.get("fnNum") or ""),
            unsent=int((fn.get("unsignedDocs") or {}).get("qty") or 0),
            last=parse_last_document(fn.get("lastDoc")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed("GetStatus", reply, exc) from None


def parse_last_document(doc: dict[str, Any] | None) -> LastDocument | None:
    if not doc or not doc.get("num"):
        return None
    kind = doc.get(_LAST["kind"])
    check_type = doc.get(_LAST["check_type"])
    sign = doc.get(_LAST["fiscal_sign"])
    return LastDocument(
        fd_number=int(doc["num"]), datetime=_when(doc["dateTime"]),
        kind=DocumentKind(kind) if kind is not None else None,
        fiscal_sign=str(sign) if sign is not None else None,
        shift_number=doc.get(_LAST["shift_number"]), receipt_number=doc.get(_LAST["receipt_number"]),
        receipt_type=RECEIPT_TYPE_OF[check_type] if check_type is not None else None,
        total=doc.get(_LAST["total"]),
    )


def last_doc_fields(result: FiscalResult) -> dict[str, Any]:
    """fnInfo.lastDoc of a document (the emulator's side)."""
    doc: dict[str, Any] = {"num": result.fd_number, "dateTime": result.datetime.strftime(DATETIME_FORMAT),
                           _LAST["fiscal_sign"]: result.fiscal_sign, _LAST["kind"]: result.kind.value,
                           _LAST["shift_number"]: result.shift_number}
    if result.receipt_type is not None:
        doc.update({_LAST["receipt_number"]: result.receipt_number,
                    _LAST["check_type"]: CHECK_TYPES[result.receipt_type], _LAST["total"]: result.total})
    return doc


def parse_document(reply: dict[str, Any], kind: DocumentKind, fn_number: str, reg_number: str = "", *,
                   total: int | None = None, receipt_type: ReceiptType | None = None) -> FiscalResult:
    """The FiscalResult of an OpenShift / CloseShift / CloseCheck reply; a receipt's total and type are the ones
    the register was given (the reply does not repeat them)."""
    try:
        return FiscalResult(kind=kind, fd_number=int(reply["fiscalDocNum"]), fiscal_sign=str(reply["fiscalSign"]),
                            fn_number=fn_number, shift_number=int(reply["shiftNum"]),
                            datetime=_when(reply["dateTime"]), reg_number=reg_number,
                            receipt_number=int(reply["checkNum"]) if kind is DocumentKind.RECEIPT else None,
                            total=total, receipt_type=receipt_type)
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(kind.name, reply, exc) from None


@dataclass(frozen=True, slots=True)
class CommonInfo:
    model: str
    serial: str
    fn_number: str


def parse_common_info(reply: dict[str, Any]) -> CommonInfo:
    return CommonInfo(model=str(reply.get("model") or ""), serial=str(reply.get("kktNum") or ""),
                      fn_number=str(reply.get("fnNum") or ""))


@dataclass(frozen=True, slots=True)
class RegistrationData:
    reg_number: str
    inn: str
    taxations: tuple[TaxationSystem, ...]


def parse_registration(reply: dict[str, Any]) -> RegistrationData:
    info = reply.get("registrationInfo") or {}
    try:
        taxations = tuple(TaxationSystem.from_index(int(i)) for i in info.get("taxSystem") or ())
    except (TypeError, ValueError) as exc:
        raise _malformed("GetRegistrationInfo", reply, exc) from None
    return RegistrationData(reg_number=str((info.get("kkt") or {}).get("regNum") or ""),
                            inn=str((info.get("owner") or {}).get("inn") or ""), taxations=taxations)


def _when(text: str) -> datetime:
    return datetime.strptime(text, DATETIME_FORMAT)


def _malformed(what: str, reply: Any, why: object) -> DeviceError:
    return device_error("device_error", device_text=f"malformed {what} reply ({why}): {str(reply)[:200]}")


# --- requests read back (the emulator's side) ------------------------------------------------------------


def receipt_type_of(check_type: Any) -> ReceiptType:
    """OpenCheck checkType → the receipt type; corrections (4–7) are not supported."""
    if check_type not in RECEIPT_TYPE_OF:
        raise ValueError(f"checkType {check_type!r} is not 0–3")
    return RECEIPT_TYPE_OF[check_type]


def taxation_of(value: Any) -> TaxationSystem | None:
    return None if value is None else TaxationSystem.from_index(int(value))


def cashier_of(info: dict[str, Any] | None) -> Cashier | None:
    if not info or not info.get("cashierName"):
        return None
    return Cashier(str(info["cashierName"]), str(info["cashierINN"]) if info.get("cashierINN") else None)


def buyer_of(info: dict[str, Any] | None, contact: str | None = None) -> Buyer | None:
    info = info or {}
    doc_type = info.get("docType")
    buyer = Buyer(contact=contact or None, name=info.get("buyerName"), inn=info.get("buyerINN"),
                  birth_date=_ffd_date(info.get("birthday")), citizenship=info.get("citizenship"),
                  document_code=str(doc_type) if doc_type is not None else None,
                  document_data=info.get("docData"), address=info.get("address"))
    return buyer if buyer.contact or buyer.has_details() else None


def item_of(fields: dict[str, Any]) -> Item:
    """An AddGoods request as an Item; ValueError / KeyError for a field that does not fit."""
    qty = _int(fields, "qty")
    if qty <= 0:
        raise ValueError("qty must be above zero")
    quantity = Quantity(qty * _MICROS_PER_UNIT)
    return Item(
        name=str(fields["productName"]),
        price=_int(fields, "price"),
        quantity=quantity,
        vat=VatRate(_int(fields, "taxCode")),
        amount=_int(fields, "sum") if "sum" in fields else -1,
        payment_method=PaymentMethod(fields.get("paymentFormCode", PaymentMethod.FULL_PAYMENT)),
        payment_object=PaymentObject(fields.get("productTypeCode", PaymentObject.COMMODITY)),
        measure=Measure(fields.get("measureUnit", Measure.PIECE)),
        additional_info=fields.get("additionalAttribute"),
        marking=_marking_of(fields.get("mcInfo")),
        industry=tuple(industry_of(entry) for entry in fields.get("industryAttribute") or ()),
        country_code=fields.get("countryOfOrigin"),
        customs_declaration=fields.get("customsDeclaration"),
        excise=fields.get("exciseAmount"),
        nomenclature_code=_unb64(fields["nomenclatureCode"]) if fields.get("nomenclatureCode") else None,
        agent=_agent_of(fields.get("agent")),
        supplier=_supplier_of(fields.get("agent")),
    )


def industry_of(entry: dict[str, Any]) -> IndustryRequisite:
    return IndustryRequisite(foiv_id=str(entry.get("idFOIV") or ""),
                             document_date=_ffd_date(entry.get("docDate")) or "",
                             document_number=str(entry.get("docNum") or ""), value=str(entry.get("value") or ""))


def payments_of(payment: dict[str, Any] | None) -> Payments:
    """CloseCheck payment{...} → Payments; an unknown kind is refused."""
    sums: dict[str, int] = {}
    for key, value in (payment or {}).items():
        if key not in _PAYMENT_KIND_OF:
            raise ValueError(f"unknown payment kind {key!r}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"payment {key} must be a non-negative integer of kopecks")
        sums[_PAYMENT_KIND_OF[key].name.lower()] = value
    return Payments(**sums)


def _int(fields: dict[str, Any], key: str) -> int:
    value = fields[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer")
    return value


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def _marking_of(info: dict[str, Any] | None) -> MarkingCode | None:
    if not info:
        return None
    part = info.get("part")
    fraction = f"{int(part['numerator'])}/{int(part['denominator'])}" if part else None
    return MarkingCode(code=_unb64(info["mc"]), processing_mode=int(info.get("processingMode") or 0),
                       planned_status=info.get("plannedStatus"), fraction=fraction)


def _agent_of(info: dict[str, Any] | None) -> AgentInfo | None:
    if not info or info.get("code") is None:
        return None
    return AgentInfo(agent_type=AgentType(1 << int(info["code"])), paying_operation=info.get("payingOp"),
                     paying_phones=tuple(info.get("payingPhone") or ()),
                     operator_phones=tuple(info.get("operatorPhone") or ()),
                     transfer_operator_name=info.get("transfName"),
                     transfer_operator_address=info.get("transfAddress"),
                     transfer_operator_inn=info.get("transfINN"),
                     transfer_operator_phones=tuple(info.get("transfPhone") or ()))


def _supplier_of(info: dict[str, Any] | None) -> Supplier | None:
    if not info or not any(info.get(key) for key in ("supplierName", "supplierINN", "supplierPhone")):
        return None
    return Supplier(name=info.get("supplierName"), inn=info.get("supplierINN"),
                    phones=tuple(info.get("supplierPhone") or ()))


# --- the sales journal (ReadSales, GetSales): every document read back, for reconciliation -----------------------


def sales_journal(records: list[dict[str, Any]], fn_number: str) -> dict[str, Any]:
    """The GetSales reply fields for the FN's documents (the emulator's side): the shifts, each with its opening,
    closing and receipts. `records` are fiscal-storage records (emulators/fncore.py), oldest first."""
    sign = UNVERIFIED["SALES_SHIFT_SIGN"]
    shifts: list[dict[str, Any]] = []
    for record in records:
        when = datetime.fromisoformat(record["datetime"]).strftime(DATETIME_FORMAT)
        if record["doc"] == "open_shift" or not shifts:
            shifts.append({"fnNum": fn_number, "num": record["shift"], "open": None, "close": None, "checks": []})
        shift = shifts[-1]
        entry = {"fiscalDocNum": record["fd"], "dateTime": when, sign: record["fp"]}
        if record["doc"] == "open_shift":
            shift["open"] = entry
        elif record["doc"] == "close_shift":
            shift["close"] = entry
        elif record["doc"] == "receipt":
            shift["checks"].append({
                **entry, "fiscalSign": record["fp"], "annulled": False, "num": record.get("receipt"),
                "checkType": CHECK_TYPES[ReceiptType(record["type"])],
                "taxSystem": TaxationSystem[record["taxation"]].index if record.get("taxation") else None,
                "sendCheckTo": (record.get("buyer") or {}).get("contact"), "total": record["total"],
                "payment": {PAYMENT_FIELDS[PaymentKind[kind.upper()]]: value
                            for kind, value in (record.get("payments") or {}).items()},
                "goods": [{"productName": line["name"],
                           "qty": Quantity.parse(line["quantity"]).scaled(QUANTITY_SCALE),
                           "measureUnit": line.get("measure", 0), "taxCode": line.get("vat") or int(VatRate.NONE),
                           "price": line["price"], "typeCode": line.get("object", 1),
                           "paymentFormCode": line.get("method", 4), "sum": line["amount"]}
                          for line in record.get("items") or ()],
            })
    return {"shifts": shifts if UNVERIFIED["SALES_SHIFTS_LIST"] else (shifts[-1] if shifts else None)}


def parse_sales(reply: dict[str, Any], fn_number: str, reg_number: str = "") -> list[FnDocument]:
    """Every document in a GetSales reply, by FD number order: shift openings and closings, and receipts with their
    payments and lines. Annulled receipts (reset before closing) made no document and are left out."""
    shifts = reply.get("shifts") or []
    if isinstance(shifts, dict):  # the public shape: one shift
        shifts = [shifts]
    sign = UNVERIFIED["SALES_SHIFT_SIGN"]
    documents: list[FnDocument] = []
    try:
        for shift in shifts:
            number = int(shift.get("num") or 0)
            for key, kind in (("open", DocumentKind.OPEN_SHIFT), ("close", DocumentKind.CLOSE_SHIFT)):
                entry = shift.get(key)
                if entry and entry.get("fiscalDocNum"):
                    documents.append(FnDocument(FiscalResult(
                        kind=kind, fd_number=int(entry["fiscalDocNum"]), fiscal_sign=str(entry.get(sign) or ""),
                        fn_number=fn_number, shift_number=number, datetime=_when(entry["dateTime"]),
                        reg_number=reg_number)))
            for check in shift.get("checks") or ():
                if check.get("annulled") or not check.get("fiscalDocNum"):
                    continue
                lines = tuple(DocumentLine(int(good["price"]), Quantity(int(good["qty"]) * _MICROS_PER_UNIT),
                                           int(good["sum"]), str(good.get("productName") or ""))
                              for good in check.get("goods") or ())
                documents.append(FnDocument(FiscalResult(
                    kind=DocumentKind.RECEIPT, fd_number=int(check["fiscalDocNum"]),
                    fiscal_sign=str(check.get("fiscalSign") or ""), fn_number=fn_number, shift_number=number,
                    datetime=_when(check["dateTime"]), reg_number=reg_number,
                    receipt_number=int(check["num"]) if check.get("num") is not None else None,
                    total=int(check["total"]), receipt_type=RECEIPT_TYPE_OF[int(check["checkType"])]),
                    payments={kind: value for kind, value in payments_of(check.get("payment")).by_kind().items()},
                    lines=lines))
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed("GetSales", reply, exc) from None
    return sorted(documents, key=lambda document: document.fd_number)
