"""The receipt as the register must see it: typed, in kopecks, with every FFD tag named by its field.

These are plain values. They hold what a caller asked for; `validation` says whether a register would take
it, and `bitapi` builds them from the BIT wire format. Every field's comment gives its FFD tag.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .codes import (
    AgentType,
    Measure,
    PaymentKind,
    PaymentMethod,
    PaymentObject,
    ReceiptType,
    TaxationSystem,
    VatRate,
)
from .quantity import Quantity

__all__ = [
    "AgentInfo",
    "Buyer",
    "CashOperation",
    "CashOperationKind",
    "Cashier",
    "IndustryRequisite",
    "Item",
    "MarkingCode",
    "Payments",
    "Receipt",
    "Supplier",
]


@dataclass(frozen=True, slots=True)
class Cashier:
    name: str  # 1021
    inn: str | None = None  # 1203


@dataclass(frozen=True, slots=True)
class Buyer:
    contact: str | None = None  # 1008: e-mail or phone, where the electronic receipt goes
    name: str | None = None  # 1227
    inn: str | None = None  # 1228
    birth_date: str | None = None  # 1243, dd.mm.yyyy
    citizenship: str | None = None  # 1244, 3-digit country code
    document_code: str | None = None  # 1245
    document_data: str | None = None  # 1246
    address: str | None = None  # 1254

    def has_details(self) -> bool:
        """Anything beyond the contact: these go into the 1256 block of ФФД 1.2."""
        return any(
            (self.name, self.inn, self.birth_date, self.citizenship, self.document_code, self.document_data, self.address)
        )


@dataclass(frozen=True, slots=True)
class Supplier:
    name: str | None = None  # 1225
    inn: str | None = None  # 1226
    phones: tuple[str, ...] = ()  # 1171


@dataclass(frozen=True, slots=True)
class AgentInfo:
    agent_type: AgentType  # 1222 (item) / 1057 (receipt)
    paying_operation: str | None = None  # 1044
    paying_phones: tuple[str, ...] = ()  # 1073
    operator_phones: tuple[str, ...] = ()  # 1074
    transfer_operator_name: str | None = None  # 1026
    transfer_operator_address: str | None = None  # 1005
    transfer_operator_inn: str | None = None  # 1016
    transfer_operator_phones: tuple[str, ...] = ()  # 1075


@dataclass(frozen=True, slots=True)
class IndustryRequisite:
    """One 1260 (item) or 1261 (receipt) block: which ФОИВ document allows the sale, and its value."""

    foiv_id: str  # 1262, e.g. "030" for Честный знак
    document_date: str  # 1263, dd.mm.yyyy
    document_number: str  # 1264
    value: str  # 1265


@dataclass(frozen=True, slots=True)
class MarkingCode:
    """The marking data of a marked item (ФФД 1.2)."""

    code: bytes  # 2000: the raw scanned code, GS separators included
    code_type: int | None = None  # 2100; clients send driver constants (256 = detect automatically)
    processing_mode: int = 0  # 2102
    planned_status: int | None = None  # 2003
    fraction: str | None = None  # 1291: "numerator/denominator" for part of a package


@dataclass(frozen=True, slots=True)
class Item:
    """One line of a receipt (tag 1059). Money in kopecks; `amount` is price × quantity unless the caller sent
    its own, which `validation` then checks."""

    name: str  # 1030
    price: int  # 1079
    quantity: Quantity  # 1023
    vat: VatRate | None  # 1199; None until a device default fills it
    amount: int = -1  # 1043; -1 means "compute price × quantity"
    payment_method: PaymentMethod = PaymentMethod.FULL_PAYMENT  # 1214
    payment_object: PaymentObject = PaymentObject.COMMODITY  # 1212
    measure: Measure = Measure.PIECE  # 2108
    additional_info: str | None = None  # 1191
    marking: MarkingCode | None = None  # 2000, 2100, 2102, 2003, 1291
    industry: tuple[IndustryRequisite, ...] = ()  # 1260
    country_code: str | None = None  # 1230
    customs_declaration: str | None = None  # 1231
    excise: int | None = None  # 1229, kopecks
    nomenclature_code: bytes | None = None  # 1162 (ФФД 1.05 marking)
    agent: AgentInfo | None = None  # 1222, 1223
    supplier: Supplier | None = None  # 1224

    def __post_init__(self) -> None:
        if self.amount < 0:
            object.__setattr__(self, "amount", self.quantity.amount_for(self.price))

    @property
    def vat_amount(self) -> int:
        """The VAT inside this line's sum (tag 1200)."""
        return self.vat.amount_of(self.amount) if self.vat is not None else 0


@dataclass(frozen=True, slots=True)
class Payments:
    """How the buyer pays, in kopecks by kind (1031, 1081, 1215, 1216, 1217)."""

    cash: int = 0
    electronic: int = 0
    prepayment: int = 0
    credit: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.cash + self.electronic + self.prepayment + self.credit + self.other

    @property
    def non_cash(self) -> int:
        return self.total - self.cash

    def by_kind(self) -> dict[PaymentKind, int]:
        """The non-zero sums, in the order registers want them (cash last, so change is computed from it)."""
        pairs = [
            (PaymentKind.ELECTRONIC, self.electronic),
            (PaymentKind.PREPAYMENT, self.prepayment),
            (PaymentKind.CREDIT, self.credit),
            (PaymentKind.OTHER, self.other),
            (PaymentKind.CASH, self.cash),
        ]
        return {kind: value for kind, value in pairs if value}

    def change_for(self, total: int) -> int:
        return max(0, self.total - total)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A fiscal receipt (кассовый чек) of one of the four 1054 types."""

    type: ReceiptType  # 1054
    items: tuple[Item, ...]  # 1059
    payments: Payments
    taxation: TaxationSystem | None = None  # 1055; None = the register's only registered system
    cashier: Cashier | None = None  # 1021, 1203
    buyer: Buyer | None = None  # 1008, 1256
    electronically: bool = False  # do not print on paper
    time_zone: int | None = None  # 1011 (1..11)
    industry: tuple[IndustryRequisite, ...] = ()  # 1261
    additional_info: str | None = None  # 1192
    agent: AgentInfo | None = None  # 1057 and its block at receipt level
    supplier: Supplier | None = None
    internet: bool = False  # 1125: sold on the internet (buyer not present)

    @property
    def total(self) -> int:
        """Tag 1020: the sum of the item sums."""
        return sum(item.amount for item in self.items)

    @property
    def change(self) -> int:
        return self.payments.change_for(self.total)

    def vat_totals(self) -> dict[VatRate, int]:
        """VAT per rate (1102–1107 and their newer twins), computed on the receipt's sum at each rate, the way
        registers compute the receipt's tax totals; in code order."""
        amounts: dict[VatRate, int] = {}
        for item in self.items:
            if item.vat is not None:
                amounts[item.vat] = amounts.get(item.vat, 0) + item.amount
        return {rate: rate.amount_of(amounts[rate]) for rate in sorted(amounts)}


class CashOperationKind(enum.Enum):
    CASH_IN = "in"  # внесение
    CASH_OUT = "out"  # выплата (изъятие)


@dataclass(frozen=True, slots=True)
class CashOperation:
    kind: CashOperationKind
    amount: int  # kopecks
    cashier: Cashier | None = None

