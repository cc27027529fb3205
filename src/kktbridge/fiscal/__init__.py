"""The domain: money in kopecks, quantities, FFD code tables, the receipt, its validation, the fiscal result.

Pure: no I/O, and no import of any other kktbridge package.
"""

from .codes import (
    AgentType,
    Measure,
    PaymentKind,
    PaymentMethod,
    PaymentObject,
    PlannedStatus,
    ReceiptType,
    TaxationSystem,
    VatRate,
)
from .documents import DocumentLine, Expected, FnDocument, ShiftCounters, counted
from .errors import BridgeError, FieldError, FormatError, ValidationFailed, shown
from .money import format_rubles, kopecks_to_decimal, parse_kopecks, parse_rubles
from .qr import ReceiptQr, printed_fiscal_sign
from .quantity import Quantity
from .receipt import (
    AgentInfo,
    Buyer,
    CashOperation,
    CashOperationKind,
    Cashier,
    IndustryRequisite,
    Item,
    MarkingCode,
    Payments,
    Receipt,
    Supplier,
)
from .result import DocumentKind, FiscalResult
from .validation import (
    DEFAULT_LIMITS,
    Limits,
    check_receipt,
    is_valid_contact,
    is_valid_inn,
    logical_path,
    validate_cash_operation,
    validate_cashier,
    validate_receipt,
)

__all__ = [
    "DEFAULT_LIMITS",
    "AgentInfo",
    "AgentType",
    "BridgeError",
    "Buyer",
    "CashOperation",
    "CashOperationKind",
    "Cashier",
    "DocumentKind",
    "DocumentLine",
    "Expected",
    "FieldError",
    "FiscalResult",
    "FnDocument",
    "FormatError",
    "IndustryRequisite",
    "Item",
    "Limits",
    "MarkingCode",
    "Measure",
    "PaymentKind",
    "PaymentMethod",
    "PaymentObject",
    "Payments",
    "PlannedStatus",
    "Quantity",
    "Receipt",
    "ReceiptQr",
    "ReceiptType",
    "ShiftCounters",
    "Supplier",
    "TaxationSystem",
    "ValidationFailed",
    "VatRate",
    "check_receipt",
    "counted",
    "format_rubles",
    "is_valid_contact",
    "is_valid_inn",
    "kopecks_to_decimal",
    "logical_path",
    "parse_kopecks",
    "parse_rubles",
    "printed_fiscal_sign",
    "shown",
    "validate_cash_operation",
    "validate_cashier",
    "validate_receipt",
]
