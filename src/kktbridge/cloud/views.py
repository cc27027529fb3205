"""Records as the APIs show them: receipts (with ATOL Online's result fields), drivers, devices, the account.

A receipt's `result` is the driver's BIT answer as docs/result-format.md describes it (one object per command,
fiscal data as tag-suffixed keys); `payload` repeats the fiscal receipt's data under the names ATOL Online
users know (ATOL v4 §6 `payload`), so code written for ATOL maps over. `status` is ATOL's wait / done / fail.
Nothing secret is ever shown here: no key, token, code or secret is on the records these functions read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from .store import AccountRecord, DeviceRecord, DriverRecord, ReceiptRecord

__all__ = ["API", "account_view", "atol_payload", "device_view", "driver_view", "receipt_links", "receipt_view",
           "timestamp"]

API = "/api/v1"
FNS_SITE = "www.nalog.gov.ru"  # tag 1060, the same on every Russian receipt


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds: 2026-11-23T16:04:05.123Z."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value is not None else None


def receipt_links(record: ReceiptRecord) -> dict[str, str]:
    return {"self": f"{API}/receipts/{record.uuid}",
            "by_order": f"{API}/receipts/by-order/{quote(record.order_id, safe='')}"}


def receipt_view(record: ReceiptRecord) -> dict[str, Any]:
    return {
        "id": str(record.uuid),
        "order_id": record.order_id,
        "state": record.state.value,
        "status": record.state.status,
        "source": record.source,
        "account_id": record.account_id,
        "driver_id": record.driver_id,
        "device": {"id": record.device_id, "name": record.device_name},
        "idempotency_key": record.idempotency_key,
        "created_at": timestamp(record.created_at),
        "delivered_at": timestamp(record.delivered_at),
        "unknown_at": timestamp(record.unknown_at),
        "finished_at": timestamp(record.finished_at),
        "expires_at": timestamp(record.expires_at),
        "callbacks": {"success": record.callback_success, "failed": record.callback_failed,
                      "webhook": record.webhook_url},
        "prog_url": record.prog_url,
        "result": record.result,
        "error": record.error,
        "payload": atol_payload(record.result),
        "links": receipt_links(record),
    }


def atol_payload(result: Any) -> dict[str, Any] | None:
    """ATOL's `payload` for the last fiscalized receipt of the result, or None before there is one."""
    if not isinstance(result, list):
        return None
    for item in reversed(result):
        if isinstance(item, dict) and item.get("type") == "kktReceiptFiscalization" and "success" in item \
                and item.get("fdNumber_1040") is not None:
            sign = item.get("fiscalSign_1077")
            return {
                "fiscal_receipt_number": item.get("receiptNumber_1042"),
                "shift_number": item.get("shiftNumber_1038"),
                "receipt_datetime": _atol_datetime(item.get("dateTime_1012")),
                "total": item.get("total_1020"),
                "fn_number": item.get("fnNumber_1041"),
                "ecr_registration_number": item.get("regNumber_1037"),
                "fiscal_document_number": item.get("fdNumber_1040"),
                "fiscal_document_attribute": int(sign) if isinstance(sign, str) and sign.isdigit() else sign,
                "fns_site": FNS_SITE,
                "ofd_inn": None,
                "ofd_receipt_url": None,
                "qr": item.get("qr"),
            }
    return None


def _atol_datetime(value: Any) -> Any:
    """2026-11-23T19:04:05 → 23.11.2026 19:04:05, ATOL's form; anything else as it is."""
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
    except (TypeError, ValueError):
        return value
    return moment.strftime("%d.%m.%Y %H:%M:%S")


def account_view(account: AccountRecord) -> dict[str, Any]:
    return {"id": account.id, "name": account.name, "allowed_origins": list(account.allowed_origins),
            "created_at": timestamp(account.created_at)}


def driver_view(driver: DriverRecord, devices: list[DeviceRecord]) -> dict[str, Any]:
    return {"id": driver.id, "account_id": driver.account_id, "name": driver.name,
            "created_at": timestamp(driver.created_at), "devices": [device_view(d) for d in devices]}


def device_view(device: DeviceRecord) -> dict[str, Any]:
    return {"id": device.id, "account_id": device.account_id, "driver_id": device.driver_id, "kind": device.kind,
            "role": device.role, "name": device.name, "created_at": timestamp(device.created_at)}
