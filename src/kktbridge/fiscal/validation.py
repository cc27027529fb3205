"""Everything a register would reject later, found before any device is touched and reported all at once.

A register answers one error at a time, after the receipt is half printed; here every bad field is listed
with the path the caller used, so a shop developer fixes the whole packet in one go. Paths come from the
caller: `where(("items", 2, "price"))` turns the logical path into the wire key (`data.purchases[2].price_1079`);
the default writes the logical path itself.

Rules and their sources: spec/cloud-anchors.md §10 (ФФД 1.2 limits, sum and VAT rules), spec/bit-api.md §6.3.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from .codes import ReceiptType, VatRate
from .errors import FieldError, ValidationFailed
from .money import format_rubles
from .receipt import AgentInfo, Buyer, CashOperation, Cashier, Item, Receipt, Supplier

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "Path",
    "check_receipt",
    "is_valid_contact",
    "is_valid_inn",
    "logical_path",
    "validate_cash_operation",
    "validate_cashier",
    "validate_receipt",
]

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    """What depends on the register or the service; the bounds default to ATOL's (the strictest common set)."""

    max_items: int = 100
    max_name: int = 128
    max_price: int = 4_294_967_295  # 42 949 672.95 ₽, the 32-bit limit of tag 1079/1043
    # The receipt total, each payment and their sum, a cash in/out, a card sum: 99 999 999.99 ₽, the widest sum an
    # ATOL command carries (5 BCD bytes). Mercury's own limit is not published (UNVERIFIED); the same bound holds.
    max_sum: int = 9_999_999_999
    max_quantity_micros: int = 99_999_999_000  # 99 999.999
    max_cashier: int = 64
    max_contact: int = 64
    max_buyer_name: int = 256
    max_additional_item: int = 64  # 1191
    max_additional_receipt: int = 16  # 1192
    check_vat_dates: bool = True
    line_total_by_register: bool = True  # the register computes 1043 from price × quantity (ATOL, Mercury; not Shtrih)


DEFAULT_LIMITS = Limits()


def logical_path(path: Path) -> str:
    """("items", 2, "price") → `items[2].price`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def validate_receipt(
    receipt: Receipt,
    *,
    limits: Limits = DEFAULT_LIMITS,
    on_date: date | None = None,
    where: Callable[[Path], str] = logical_path,
    check_totals: bool = True,
) -> list[FieldError]:
    """Every problem of the receipt; an empty list means a register should take it.

    `on_date` enables the VAT rates' validity dates; `check_totals=False` skips the checks of the whole
    (item count, payments against the total), for a receipt of which some lines could not be read.
    """
    errors: list[FieldError] = []

    def bad(path: Path, code: str, ru: str, en: str) -> None:
        errors.append(FieldError(where(path), code, ru, en))

    if not check_totals:
        pass
    elif not receipt.items:
        bad(("items",), "required", "в чеке нет ни одного товара", "the receipt has no items")
    elif len(receipt.items) > limits.max_items:
        bad(
            ("items",),
            "too_many",
            f"в чеке {len(receipt.items)} позиций, ККТ принимает не больше {limits.max_items}",
            f"the receipt has {len(receipt.items)} items, the register takes at most {limits.max_items}",
        )
    for index, item in enumerate(receipt.items):
        _check_item(item, ("items", index), receipt, limits, on_date, bad)

    if check_totals:
        _check_payments(receipt, bad)
        _check_sums(receipt, limits, bad)
    if receipt.cashier is not None:
        _check_cashier(receipt.cashier, ("cashier",), limits, bad)
    if receipt.buyer is not None:
        _check_buyer(receipt.buyer, ("buyer",), limits, bad)
    if receipt.electronically and not (receipt.buyer and receipt.buyer.contact) and not receipt.internet:
        bad(
            ("buyer", "contact"),
            "required",
            "для чека без печати нужен e-mail или телефон покупателя (1008)",
            "a receipt that is not printed needs the buyer's e-mail or phone (1008)",
        )
    if receipt.time_zone is not None and not 1 <= receipt.time_zone <= 11:
        bad(("time_zone",), "range", "часовая зона 1011 должна быть от 1 до 11", "time zone 1011 must be 1..11")
    if receipt.additional_info is not None and len(receipt.additional_info) > limits.max_additional_receipt:
        bad(
            ("additional_info",),
            "too_long",
            f"доп. реквизит чека длиннее {limits.max_additional_receipt} символов",
            f"the additional receipt requisite is longer than {limits.max_additional_receipt} characters",
        )
    if receipt.agent is not None:
        _check_agent(receipt.agent, ("agent",), bad)
    if receipt.supplier is not None:
        _check_supplier(receipt.supplier, ("supplier",), bad)
    return errors


def check_receipt(receipt: Receipt, **kwargs) -> Receipt:
    """The receipt itself if valid, else ValidationFailed listing every bad field."""
    errors = validate_receipt(receipt, **kwargs)
    if errors:
        raise ValidationFailed(errors)
    return receipt


def validate_cashier(
    cashier: Cashier, *, limits: Limits = DEFAULT_LIMITS, where: Callable[[Path], str] = logical_path
) -> list[FieldError]:
    errors: list[FieldError] = []
    _check_cashier(cashier, ("cashier",), limits, lambda p, c, r, e: errors.append(FieldError(where(p), c, r, e)))
    return errors


def validate_cash_operation(
    operation: CashOperation, *, limits: Limits = DEFAULT_LIMITS, where: Callable[[Path], str] = logical_path
) -> list[FieldError]:
    errors: list[FieldError] = []

    def bad(path: Path, code: str, ru: str, en: str) -> None:
        errors.append(FieldError(where(path), code, ru, en))

    if operation.amount <= 0:
        bad(("amount",), "range", "сумма внесения/выплаты должна быть больше нуля", "the cash sum must be above zero")
    elif operation.amount > limits.max_sum:
        bad(("amount",), "range", f"сумма больше {format_rubles(limits.max_sum)} ₽, наибольшей, что принимает ККТ",
            f"the sum is above {format_rubles(limits.max_sum)}, the most a register takes")
    if operation.cashier is not None:
        _check_cashier(operation.cashier, ("cashier",), limits, bad)
    return errors


# --- items -----------------------------------------------------------------------------------------------


def _check_item(item: Item, at: Path, receipt: Receipt, limits: Limits, on_date: date | None, bad) -> None:
    name = item.name.strip()
    if not name:
        bad((*at, "name"), "required", "у позиции нет наименования (1030)", "the item has no name (1030)")
    elif len(item.name) > limits.max_name:
        bad(
            (*at, "name"),
            "too_long",
            f"наименование длиннее {limits.max_name} символов ({len(item.name)})",
            f"the name is longer than {limits.max_name} characters ({len(item.name)})",
        )
    if item.price > limits.max_price:
        bad((*at, "price"), "range", "цена больше допустимой для ККТ", "the price is above the register's limit")
    if item.excise is not None and item.excise > limits.max_price:
        bad((*at, "excise"), "range", "сумма акциза больше допустимой для ККТ", "the excise is above the register's "
            "limit")
    if item.quantity.micros > limits.max_quantity_micros:
        bad((*at, "quantity"), "range", "количество больше допустимого", "the quantity is above the limit")
    expected = item.quantity.amount_for(item.price)
    if item.amount != expected:
        bad(
            (*at, "amount"),
            "sum_mismatch",
            f"сумма позиции {format_rubles(item.amount)} не равна цене × количество = "
            f"{format_rubles(item.price)} × {item.quantity} = {format_rubles(expected)}; ККТ не делает скидку сама,"
            " измените цену или разбейте позицию",
            f"the item sum {format_rubles(item.amount)} is not price × quantity = {format_rubles(item.price)} × "
            f"{item.quantity} = {format_rubles(expected)}; registers no longer apply a discount themselves, change the"
            " price or split the line",
        )
    elif item.amount > limits.max_price:
        bad((*at, "amount"), "range", "сумма позиции больше допустимой", "the item sum is above the limit")
    if item.vat is None:
        bad(
            (*at, "vat"),
            "required",
            "не указана ставка НДС (1199), и у устройства нет ставки по умолчанию",
            "no VAT rate (1199) is given and the device has no default rate",
        )
    elif limits.check_vat_dates and on_date is not None:
        _check_vat_date(item.vat, (*at, "vat"), receipt.type, on_date, bad)
    if item.additional_info is not None and len(item.additional_info) > limits.max_additional_item:
        bad(
            (*at, "additional_info"),
            "too_long",
            f"доп. реквизит предмета расчёта длиннее {limits.max_additional_item} символов",
            f"the additional item requisite is longer than {limits.max_additional_item} characters",
        )
    if item.country_code is not None and not re.fullmatch(r"\d{3}", item.country_code):
        bad((*at, "country_code"), "format", "код страны (1230) — три цифры", "the country code (1230) is 3 digits")
    if item.marking is not None and not item.marking.code:
        bad((*at, "marking", "code"), "required", "пустой код маркировки (2000)", "empty marking code (2000)")
    if item.agent is not None:
        _check_agent(item.agent, (*at, "agent"), bad)
    if item.supplier is not None:
        _check_supplier(item.supplier, (*at, "supplier"), bad)
    if item.agent is not None and item.supplier is None and receipt.supplier is None:
        bad(
            (*at, "supplier"),
            "required",
            "для агентской позиции нужны данные поставщика (1224: 1225, 1226)",
            "an agent item needs the supplier's data (1224: 1225, 1226)",
        )


def _check_vat_date(rate: VatRate, at: Path, receipt_type: ReceiptType, on_date: date, bad) -> None:
    if rate.valid_from is not None and on_date < rate.valid_from:
        bad(
            at,
            "vat_not_yet",
            f"ставка «{rate.label}» (код {int(rate)}) действует с {rate.valid_from:%d.%m.%Y}",
            f"the rate '{rate.label}' (code {int(rate)}) applies from {rate.valid_from:%d.%m.%Y}",
        )
    if rate.valid_until is not None and on_date > rate.valid_until and not receipt_type.is_return:
        bad(
            at,
            "vat_expired",
            f"ставка «{rate.label}» (код {int(rate)}) не применяется с {rate.valid_until:%d.%m.%Y} "
            "(кроме возвратов); используйте 22% (код 11) или 22/122 (код 12)",
            f"the rate '{rate.label}' (code {int(rate)}) is not used after {rate.valid_until:%d.%m.%Y} "
            "(except on returns); use 22% (code 11) or 22/122 (code 12)",
        )


# --- payments ----------------------------------------------------------------------------------------------


def _check_payments(receipt: Receipt, bad) -> None:
    total = receipt.total
    paid = receipt.payments
    if paid.total < total:
        bad(
            ("payments",),
            "underpaid",
            f"оплата {format_rubles(paid.total)} меньше суммы чека {format_rubles(total)}",
            f"payments of {format_rubles(paid.total)} do not cover the receipt total of {format_rubles(total)}",
        )
    if paid.non_cash > total:
        path = ("payments", "electronic") if paid.electronic else ("payments",)
        bad(
            path,
            "non_cash_above_total",
            f"безналичная оплата {format_rubles(paid.non_cash)} больше суммы чека {format_rubles(total)}: "
            "сдача возможна только с наличных",
            f"non-cash payments of {format_rubles(paid.non_cash)} exceed the receipt total of {format_rubles(total)}: "
            "change can only come from cash",
        )


def _check_sums(receipt: Receipt, limits: Limits, bad) -> None:
    """No sum above what a register can carry: one that overflows there leaves a receipt open or prints nonsense."""
    most = format_rubles(limits.max_sum)
    if receipt.total > limits.max_sum:
        bad(("items",), "range", f"сумма чека больше {most} ₽, наибольшей, что принимает ККТ",
            f"the receipt total is above {most}, the most a register takes")
    paid = receipt.payments
    for name in ("cash", "electronic", "prepayment", "credit", "other"):
        if getattr(paid, name) > limits.max_sum:
            bad(("payments", name), "range", f"оплата больше {most} ₽, наибольшей, что принимает ККТ",
                f"the payment is above {most}, the most a register takes")
    if paid.total > limits.max_sum and all(getattr(paid, n) <= limits.max_sum for n in ("cash", "electronic",
                                                                                        "prepayment", "credit",
                                                                                        "other")):
        bad(("payments",), "range", f"оплаты вместе больше {most} ₽, наибольшей суммы, что принимает ККТ",
            f"the payments together are above {most}, the most a register takes")


# --- people ------------------------------------------------------------------------------------------------


def _check_cashier(cashier: Cashier, at: Path, limits: Limits, bad) -> None:
    if len(cashier.name) > limits.max_cashier:
        bad(
            (*at, "name"),
            "too_long",
            f"имя кассира длиннее {limits.max_cashier} символов",
            f"the cashier's name is longer than {limits.max_cashier} characters",
        )
    if cashier.inn and not (len(cashier.inn) == 12 and is_valid_inn(cashier.inn)):
        bad((*at, "inn"), "inn", _inn_ru(cashier.inn, person=True), _inn_en(cashier.inn, person=True))


def _check_buyer(buyer: Buyer, at: Path, limits: Limits, bad) -> None:
    if buyer.contact is not None:
        if len(buyer.contact) > limits.max_contact:
            bad(
                (*at, "contact"),
                "too_long",
                f"e-mail/телефон покупателя длиннее {limits.max_contact} символов",
                f"the buyer's e-mail/phone is longer than {limits.max_contact} characters",
            )
        elif not is_valid_contact(buyer.contact):
            bad(
                (*at, "contact"),
                "format",
                f"«{buyer.contact}» не похоже ни на e-mail, ни на телефон (+79991234567)",
                f"'{buyer.contact}' is neither an e-mail nor a phone number (+79991234567)",
            )
    if buyer.name is not None and len(buyer.name) > limits.max_buyer_name:
        bad((*at, "name"), "too_long", "имя покупателя слишком длинное", "the buyer's name is too long")
    if buyer.inn and not is_valid_inn(buyer.inn):
        bad((*at, "inn"), "inn", _inn_ru(buyer.inn), _inn_en(buyer.inn))


def _check_agent(agent: AgentInfo, at: Path, bad) -> None:
    if not int(agent.agent_type) or int(agent.agent_type) >= 128:
        bad((*at, "agent_type"), "range", "неверный признак агента (1222)", "invalid agent type (1222)")
    if agent.transfer_operator_inn and not is_valid_inn(agent.transfer_operator_inn):
        bad(
            (*at, "transfer_operator_inn"),
            "inn",
            _inn_ru(agent.transfer_operator_inn),
            _inn_en(agent.transfer_operator_inn),
        )


def _check_supplier(supplier: Supplier, at: Path, bad) -> None:
    if supplier.inn and not is_valid_inn(supplier.inn):
        bad((*at, "inn"), "inn", _inn_ru(supplier.inn), _inn_en(supplier.inn))


# --- formats -----------------------------------------------------------------------------------------------

_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def is_valid_inn(inn: str) -> bool:
    """A Russian INN: 10 digits (organisation) or 12 (person), with its check digits."""
    if not inn.isascii() or not inn.isdigit():
        return False
    digits = [int(c) for c in inn]

    def check(weights: tuple[int, ...]) -> int:
        return sum(w * d for w, d in zip(weights, digits)) % 11 % 10

    if len(digits) == 10:
        return check(_INN10) == digits[9]
    if len(digits) == 12:
        return check(_INN11) == digits[10] and check(_INN12) == digits[11]
    return False


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?\d{10,15}")


def is_valid_contact(contact: str) -> bool:
    """Tag 1008: an e-mail, or a phone of 10–15 digits with an optional + (spaces, dashes, brackets allowed)."""
    text = contact.strip()
    if "@" in text:
        return bool(_EMAIL.fullmatch(text))
    return bool(_PHONE.fullmatch(re.sub(r"[\s\-()]", "", text)))


def _inn_ru(inn: str, person: bool = False) -> str:
    need = "12 цифр" if person else "10 или 12 цифр"
    return f"ИНН «{inn}» неверен: нужно {need} с верной контрольной суммой"


def _inn_en(inn: str, person: bool = False) -> str:
    need = "12 digits" if person else "10 or 12 digits"
    return f"INN '{inn}' is invalid: {need} with a correct checksum are needed"
