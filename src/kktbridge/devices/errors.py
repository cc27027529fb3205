"""Device errors with stable kktbridge codes; a device's own code and text travel inside, untouched.

Each device family maps its error codes to these in one table of its own (e.g. devices/atol/errors.py), so the
driver and the cloud reason about `no_paper` or `shift_expired` without knowing which register answered.
`retryable` says whether the same request can succeed later without changing it (paper loaded, link back).
"""

from __future__ import annotations

import logging

from ..fiscal import BridgeError, Expected, FiscalResult, FnDocument

__all__ = ["PRINTER_FAULTS", "DeviceError", "LinkError", "OutcomeUnknown", "device_error", "document_despite_fault",
           "outcome_unknown"]

log = logging.getLogger("kktbridge.devices")
PRINTER_FAULTS = {"no_paper", "printer_error", "cover_open"}


class DeviceError(BridgeError):
    """The device answered and refused."""


class LinkError(DeviceError):
    """The device could not be reached, or the link broke before any state could change."""


class OutcomeUnknown(DeviceError):
    """The link broke after the device was told to act: whether it did must be asked before doing anything else."""


# code → (Russian, English, retryable). The codes are kktbridge's; keep them stable, clients may match them.
_TEXTS: dict[str, tuple[str, str, bool]] = {
    "no_paper": ("нет бумаги", "out of paper", True),
    "cover_open": ("открыта крышка принтера", "the printer cover is open", True),
    "printer_error": ("ошибка принтера", "printer error", True),
    "link": ("нет связи с устройством", "no link with the device", True),
    "outcome_unknown": ("связь прервалась во время операции; результат уточняется у устройства",
                        "the link broke during the operation; its outcome must be asked of the device", True),
    "busy": ("устройство занято", "the device is busy", True),
    "wrong_password": ("неверный пароль доступа к устройству", "wrong device access password", False),
    "wrong_mode": ("команда недоступна в текущем режиме устройства", "the command is not allowed in the device's current mode", False),
    "shift_closed": ("смена закрыта", "the shift is closed", False),
    "shift_open": ("смена открыта, операция невозможна", "the shift is open, the operation is impossible", False),
    "shift_expired": ("смена превысила 24 часа: закройте смену (Z-отчёт)",
                      "the shift is over 24 hours old: close it (Z report)", False),
    "receipt_open": ("чек открыт, операция невозможна", "a receipt is open, the operation is impossible", False),
    "receipt_closed": ("чек закрыт, операция невозможна", "no receipt is open, the operation is impossible", False),
    "underpaid": ("оплата меньше суммы чека", "payments are less than the receipt total", False),
    "non_cash_above_total": ("безналичная оплата больше суммы чека", "non-cash payments exceed the receipt total", False),
    "not_enough_cash": ("в кассе недостаточно наличных", "not enough cash in the drawer", False),
    "bad_value": ("устройство не приняло значение", "the device refused a value", False),
    "not_supported": ("устройство не поддерживает команду", "the device does not support the command", False),
    "not_fiscal": ("ККТ не фискализирована", "the register is not fiscalized", False),
    "fn_error": ("ошибка фискального накопителя", "fiscal storage error", False),
    "declined": ("операция отклонена", "the operation was declined", False),
    "cancelled": ("операция отменена", "the operation was cancelled", False),
    "device_error": ("ошибка устройства", "device error", False),
}


def device_error(code: str, device_code: int | str | None = None, device_text: str | None = None, *,
                 ru: str | None = None, en: str | None = None, retryable: bool | None = None) -> DeviceError:
    """A DeviceError (or LinkError / OutcomeUnknown for those codes) with the standard texts of `code`."""
    base_ru, base_en, base_retry = _TEXTS.get(code, _TEXTS["device_error"])
    kind = {"link": LinkError, "outcome_unknown": OutcomeUnknown}.get(code, DeviceError)
    return kind(code=code, ru=ru or base_ru, en=en or base_en,
                retryable=base_retry if retryable is None else retryable,
                device_code=device_code, device_text=device_text)


def outcome_unknown(cause: DeviceError) -> OutcomeUnknown:
    """The device refused, but what the refused command was doing may have been done (a printer fault while the
    receipt was being closed): the caller must ask the device, and answers with `cause` if it was not done."""
    if isinstance(cause, OutcomeUnknown):
        return cause
    return OutcomeUnknown(code=cause.code, ru=cause.ru, en=cause.en, retryable=cause.retryable,
                          device_code=cause.device_code, device_text=cause.device_text)


def document_despite_fault(error: DeviceError, made: FiscalResult | None, expected: Expected) -> FiscalResult:
    """A closing command answered `error`; `made` is the newest document read right after it (None if none is new).
    A printer fault after the FN made the expected document (paper out while it printed) still returns it; a new
    document that is not the expected one leaves the outcome to be found by content; otherwise `error` stands."""
    if made is None or error.code not in PRINTER_FAULTS:
        raise error
    if not expected.matches(FnDocument(made)):
        raise outcome_unknown(error)
    log.warning("document %d was made, then: %s", made.fd_number, error.text())
    return made
