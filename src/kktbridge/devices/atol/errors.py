"""ATOL error codes: the register's text for each, and the stable kktbridge code it maps to.

Codes and texts from atol4j's error-messages.properties (spec/devices.md §1.7). The register's own code and
text always travel in the DeviceError (device_code, device_text); the kktbridge code lets the driver decide
without knowing ATOL. Codes 157 and the use of 105 for an open cover are UNVERIFIED (commands.UNVERIFIED).
"""

from __future__ import annotations

from ..errors import DeviceError, device_error

__all__ = ["ATOL_ERRORS", "atol_error"]

# ATOL code → (register's text, kktbridge code)
ATOL_ERRORS: dict[int, tuple[str, str]] = {
    8: ("Неверная цена", "bad_value"),
    10: ("Неверное количество", "bad_value"),
    19: ("Неверный формат", "bad_value"),
    20: ("Неверная длина", "bad_value"),
    30: ("Заблокирован вход в режим", "wrong_mode"),
    63: ("Переполнение буфера чека", "bad_value"),
    102: ("Команда не реализуется в данном режиме ККТ", "wrong_mode"),
    103: ("Нет бумаги", "no_paper"),
    104: ("Нет связи с принтером чеков", "printer_error"),
    105: ("Механическая ошибка печатающего устройства", "printer_error"),
    106: ("Неверный тип чека", "bad_value"),
    113: ("Сумма не наличных платежей превышает сумму чека", "non_cash_above_total"),
    114: ("Сумма платежей меньше суммы чека", "underpaid"),
    122: ("Данная модель ККТ не может выполнить команду", "not_supported"),
    125: ("Неверная секция", "bad_value"),
    126: ("Неверный вид оплаты", "bad_value"),
    129: ("Переполнение итога чека", "bad_value"),
    136: ("Смена превысила 24 часа", "shift_expired"),
    140: ("Неверный пароль", "wrong_password"),
    152: ("В ККТ нет денег для выплаты", "not_enough_cash"),
    154: ("Чек закрыт - операция невозможна", "receipt_closed"),
    155: ("Чек открыт - операция невозможна", "receipt_open"),
    156: ("Смена открыта, операция невозможна", "shift_open"),
    157: ("Смена закрыта - операция невозможна", "shift_closed"),  # UNVERIFIED: no public source lists it
    168: ("ККТ не фискализирована", "not_fiscal"),
    209: ("Перегрев головки принтера", "printer_error"),
    212: ("Неверное состояние ФН", "fn_error"),
    213: ("Неисправимая ошибка ФН", "fn_error"),
    215: ("Закончен срок эксплуатации ФН", "fn_error"),
    216: ("Архив ФН переполнен", "fn_error"),
    218: ("В ФН нет запрошенных данных", "fn_error"),
    231: ("Некорректное значение параметров команды ФН", "bad_value"),
    232: ("Превышение размеров TLV данных ФН", "bad_value"),
    233: ("Нет транспортного соединения ФН", "fn_error"),
    235: ("Исчерпан ресурс хранения ФД для отправки ОФД", "fn_error"),
    240: ("Продолжительность смены ФН более 24 часов", "shift_expired"),
    242: ("Неверная команда", "not_supported"),
    243: ("Количество позиций, подлежащих учёту в документе, превысило разрешённый лимит", "bad_value"),
    244: ("Отсутствуют данные в команде", "bad_value"),
}


def atol_error(code: int, extended: int = 0) -> DeviceError:
    """The DeviceError of an ATOL error code; an unknown code keeps its number and says so."""
    text, kind = ATOL_ERRORS.get(code, (f"Ошибка ККТ {code}", "device_error"))
    if extended:
        text = f"{text} (расширенный код {extended})"
    return device_error(kind, device_code=code, device_text=text)
