"""Results back into BIT JSON: one object per command, `name` plus `success` or `error` (spec/bit-api.md §8).

No sample answer of the vendor's driver is published; clients print `name : success|error` and treat any
`error` as a failure, so `success` and `error` stay texts for the cashier and everything else sits beside them:
the fiscal fields as tag-suffixed keys, the QR string, card data, device error details, the `warnings` of what
the driver adjusted (which `success` also says in a few words, since the cashier sees nothing else). The shape
is documented in docs/result-format.md; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..fiscal import BridgeError, DocumentKind, FieldError, FiscalResult, kopecks_to_decimal

__all__ = ["ADJUSTED", "CommandResult", "encode_packet_error", "encode_results", "fiscal_fields", "success_text"]

ADJUSTED = "; исправлено драйвером: "  # in `success`, before the adjustments of the command said in a few words


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The outcome of one command, as the executor knows it."""

    name: str
    type: str  # the command's canonical wire type
    ok: bool
    message: str = ""  # the `success` text when ok; the error text otherwise (taken from `error` when empty)
    fiscal: FiscalResult | None = None
    error: BridgeError | None = None
    skipped: bool = False  # not run because an earlier command failed
    extra: dict[str, Any] = field(default_factory=dict)  # card data and the like, already in wire form
    warnings: tuple[FieldError, ...] = ()  # the command's adjustments made at decoding (compat.Adjustment)


def fiscal_fields(result: FiscalResult) -> dict[str, Any]:
    """The fiscal data of a document as tag-suffixed keys."""
    out: dict[str, Any] = {
        "fdNumber_1040": result.fd_number,
        "fiscalSign_1077": result.fiscal_sign,
        "fnNumber_1041": result.fn_number,
        "shiftNumber_1038": result.shift_number,
        "dateTime_1012": result.datetime.strftime("%Y-%m-%dT%H:%M:%S"),
        "regNumber_1037": result.reg_number,
    }
    if result.receipt_number is not None:
        out["receiptNumber_1042"] = result.receipt_number
    if result.total is not None:
        out["total_1020"] = kopecks_to_decimal(result.total)
    if result.receipt_type is not None:
        out["receiptType_1054"] = int(result.receipt_type)
    qr = result.qr
    if qr is not None:
        out["qr"] = qr
    return out


def success_text(result: FiscalResult) -> str:
    """The short line a cashier reads for a fiscal document."""
    if result.kind is DocumentKind.RECEIPT:
        what = f"чек №{result.receipt_number} ({result.receipt_type.ru if result.receipt_type else ''})"
    elif result.kind is DocumentKind.OPEN_SHIFT:
        what = f"смена №{result.shift_number} открыта"
    elif result.kind is DocumentKind.CLOSE_SHIFT:
        what = f"смена №{result.shift_number} закрыта"
    else:
        what = "документ"
    return f"OK: {what}, ФД {result.fd_number}, ФП {result.fiscal_sign}"


def _encode(result: CommandResult) -> dict[str, Any]:
    out: dict[str, Any] = {"name": result.name, "type": result.type}
    if result.ok:
        out["success"] = result.message or (success_text(result.fiscal) if result.fiscal else "OK")
    else:
        out["error"] = result.message or (result.error.text() if result.error else "ошибка / error")
        if result.skipped:
            out["skipped"] = True
        if result.error is not None:
            out["errorCode"] = result.error.code
            out["errorRu"] = result.error.text_ru()
            out["errorEn"] = result.error.text_en()
            out["retryable"] = result.error.retryable
            if result.error.device_code is not None or result.error.device_text:
                out["deviceError"] = {"code": result.error.device_code, "text": result.error.device_text}
            if result.error.fields:
                out["fields"] = [f.to_dict() for f in result.error.fields]
    if result.warnings:  # beside success, and said in it too: the vendor's pages show the cashier `success` alone
        out["warnings"] = [w.to_dict() for w in result.warnings]
        if result.ok:
            out["success"] += ADJUSTED + "; ".join(w.ru for w in result.warnings)
    if result.fiscal is not None:
        out.update(fiscal_fields(result.fiscal))
    out.update(result.extra)
    return out


def encode_results(results: list[CommandResult]) -> list[dict[str, Any]]:
    """The answer to a packet that ran (fully or up to its first failure): a JSON array, one per command."""
    return [_encode(result) for result in results]


def encode_packet_error(error: BridgeError) -> dict[str, Any]:
    """The answer to a packet that could not run at all: `{"result": false, "error": …}` plus details."""
    out: dict[str, Any] = {
        "result": False,
        "error": error.text(),
        "errorCode": error.code,
        "errorRu": error.text_ru(),
        "errorEn": error.text_en(),
        "retryable": error.retryable,
    }
    if error.fields:
        out["fields"] = [f.to_dict() for f in error.fields]
    if error.device_code is not None or error.device_text:
        out["deviceError"] = {"code": error.device_code, "text": error.device_text}
    return out
