"""The FFD code tables: every enum carries the official code of its tag, so no other module needs numbers.

Tags: 1054 receipt type, 1055 taxation system, 1199 VAT rate, 1212 payment object, 1214 payment method,
2108 measure, 1031/1081/1215/1216/1217 payment kinds, 1222 agent type, 2003 planned status.
Sources: spec/devices.md §4.4 and spec/cloud-anchors.md §10 (ФФД 1.2 tables, ФНС order ЕД-7-20/1050@ for the
2026 VAT codes 11 and 12).
"""

from __future__ import annotations

import enum
from datetime import date

__all__ = [
    "AgentType",
    "Measure",
    "PaymentKind",
    "PaymentMethod",
    "PaymentObject",
    "PlannedStatus",
    "ReceiptType",
    "TaxationSystem",
    "VatRate",
]


class ReceiptType(enum.IntEnum):
    """Tag 1054, признак расчёта; the same number is the `n=` of the receipt QR."""

    SALE = 1  # приход
    SALE_RETURN = 2  # возврат прихода
    PURCHASE = 3  # расход
    PURCHASE_RETURN = 4  # возврат расхода

    @property
    def ru(self) -> str:
        return _RECEIPT_TYPE_RU[self]

    @property
    def is_return(self) -> bool:
        return self in (ReceiptType.SALE_RETURN, ReceiptType.PURCHASE_RETURN)


_RECEIPT_TYPE_RU = {
    ReceiptType.SALE: "приход",
    ReceiptType.SALE_RETURN: "возврат прихода",
    ReceiptType.PURCHASE: "расход",
    ReceiptType.PURCHASE_RETURN: "возврат расхода",
}


class TaxationSystem(enum.Enum):
    """Tag 1055, система налогообложения.

    In the fiscal storage the tag is a bit mask (1 ОСН, 2 УСН доход, 4 УСН Д−Р, 8 ЕНВД, 16 ЕСХН, 32 ПСН);
    clients of the BIT API and of KKMServer, Orange Data and Mercury send the index 0–5 instead. Both are here.
    """

    OSN = (0, 1, "ОСН")
    USN_INCOME = (1, 2, "УСН доход")
    USN_INCOME_OUTCOME = (2, 4, "УСН доход − расход")
    ENVD = (3, 8, "ЕНВД")
    ESHN = (4, 16, "ЕСХН")
    PATENT = (5, 32, "ПСН")

    def __init__(self, index: int, mask: int, ru: str) -> None:
        self.index = index
        self.mask = mask
        self.ru = ru

    @classmethod
    def from_index(cls, index: int) -> "TaxationSystem":
        for member in cls:
            if member.index == index:
                return member
        raise ValueError(f"no taxation system with index {index}")

    @classmethod
    def from_mask(cls, mask: int) -> "TaxationSystem":
        for member in cls:
            if member.mask == mask:
                return member
        raise ValueError(f"no taxation system with mask {mask}")

    @classmethod
    def from_client_value(cls, value: int) -> "TaxationSystem":
        """What a BIT client sends: the index 0–5, or one of the masks 8, 16, 32 that no index can mean.

        The values 1, 2 and 4 are both an index and a mask; the BIT docs send 5 (a valid index, an
        impossible single mask), so the index reading wins.
        """
        if 0 <= value <= 5:
            return cls.from_index(value)
        return cls.from_mask(value)


class VatRate(enum.IntEnum):
    """Tag 1199, ставка НДС. The amount VAT of a line is sum × numerator / denominator, rounded half up."""

    VAT20 = 1
    VAT10 = 2
    VAT20_120 = 3
    VAT10_110 = 4
    VAT0 = 5
    NONE = 6
    VAT5 = 7
    VAT7 = 8
    VAT5_105 = 9
    VAT7_107 = 10
    VAT22 = 11
    VAT22_122 = 12

    @property
    def label(self) -> str:
        return _VAT[self][0]

    @property
    def fraction(self) -> tuple[int, int] | None:
        """(numerator, denominator) of the VAT inside a price that includes it; None for no VAT."""
        return _VAT[self][1]

    def amount_of(self, kopecks: int) -> int:
        """The VAT contained in a sum of kopecks (prices in Russia include VAT)."""
        frac = self.fraction
        if frac is None:
            return 0
        num, den = frac
        return (kopecks * num * 2 + den) // (2 * den)

    @property
    def valid_from(self) -> date | None:
        return _VAT[self][2]

    @property
    def valid_until(self) -> date | None:
        """Last day the rate may be used on a sale or purchase (returns may still use it)."""
        return _VAT[self][3]


_VAT: dict[VatRate, tuple[str, tuple[int, int] | None, date | None, date | None]] = {
    VatRate.VAT20: ("НДС 20%", (20, 120), None, date(2025, 12, 31)),
    VatRate.VAT10: ("НДС 10%", (10, 110), None, None),
    VatRate.VAT20_120: ("НДС 20/120", (20, 120), None, date(2025, 12, 31)),
    VatRate.VAT10_110: ("НДС 10/110", (10, 110), None, None),
    VatRate.VAT0: ("НДС 0%", (0, 100), None, None),
    VatRate.NONE: ("без НДС", None, None, None),
    VatRate.VAT5: ("НДС 5%", (5, 105), date(2025, 1, 1), None),
    VatRate.VAT7: ("НДС 7%", (7, 107), date(2025, 1, 1), None),
    VatRate.VAT5_105: ("НДС 5/105", (5, 105), date(2025, 1, 1), None),
    VatRate.VAT7_107: ("НДС 7/107", (7, 107), date(2025, 1, 1), None),
    VatRate.VAT22: ("НДС 22%", (22, 122), date(2026, 1, 1), None),
    VatRate.VAT22_122: ("НДС 22/122", (22, 122), date(2026, 1, 1), None),
}


class PaymentMethod(enum.IntEnum):
    """Tag 1214, признак способа расчёта."""

    FULL_PREPAYMENT = 1
    PREPAYMENT = 2
    ADVANCE = 3
    FULL_PAYMENT = 4
    PARTIAL_PAYMENT = 5
    CREDIT = 6
    CREDIT_PAYMENT = 7


class PaymentObject(enum.IntEnum):
    """Tag 1212, признак предмета расчёта (ФФД 1.2 numbering; 28 and 29 do not exist)."""

    COMMODITY = 1
    EXCISE = 2
    JOB = 3
    SERVICE = 4
    GAMBLING_BET = 5
    GAMBLING_PRIZE = 6
    LOTTERY = 7
    LOTTERY_PRIZE = 8
    INTELLECTUAL_ACTIVITY = 9
    PAYMENT = 10
    AGENT_COMMISSION = 11
    PAYOUT = 12
    ANOTHER = 13
    PROPERTY_RIGHT = 14
    NON_OPERATING_GAIN = 15
    INSURANCE_PREMIUM = 16
    SALES_TAX = 17
    RESORT_FEE = 18
    DEPOSIT = 19
    EXPENSE = 20
    PENSION_INSURANCE_IP = 21
    PENSION_INSURANCE = 22
    MEDICAL_INSURANCE_IP = 23
    MEDICAL_INSURANCE = 24
    SOCIAL_INSURANCE = 25
    CASINO_PAYMENT = 26
    CASH_ISSUE = 27
    EXCISE_UNMARKED = 30  # АТНМ
    EXCISE_MARKED = 31  # АТМ
    COMMODITY_UNMARKED = 32  # ТНМ
    COMMODITY_MARKED = 33  # ТМ


class Measure(enum.IntEnum):
    """Tag 2108, мера количества предмета расчёта (required in ФФД 1.2)."""

    PIECE = 0
    GRAM = 10
    KILOGRAM = 11
    TON = 12
    CENTIMETER = 20
    DECIMETER = 21
    METER = 22
    SQUARE_CENTIMETER = 30
    SQUARE_DECIMETER = 31
    SQUARE_METER = 32
    MILLILITER = 40
    LITER = 41
    CUBIC_METER = 42
    KILOWATT_HOUR = 50
    GIGACALORIE = 51
    DAY = 70
    HOUR = 71
    MINUTE = 72
    SECOND = 73
    KILOBYTE = 80
    MEGABYTE = 81
    GIGABYTE = 82
    TERABYTE = 83
    OTHER = 255


class PaymentKind(enum.Enum):
    """The five ways a receipt is paid, each with its sum tag."""

    CASH = 1031
    ELECTRONIC = 1081
    PREPAYMENT = 1215
    CREDIT = 1216
    OTHER = 1217

    @property
    def tag(self) -> int:
        return self.value


class AgentType(enum.IntFlag):
    """Tag 1222 (item) / 1057 (receipt), признак агента: a bit mask."""

    BANK_PAYING_AGENT = 1
    BANK_PAYING_SUBAGENT = 2
    PAYING_AGENT = 4
    PAYING_SUBAGENT = 8
    ATTORNEY = 16
    COMMISSION_AGENT = 32
    ANOTHER = 64


class PlannedStatus(enum.IntEnum):
    """Tag 2003, планируемый статус товара (marked goods)."""

    PIECE_SOLD = 1
    MEASURED_SOLD = 2
    PIECE_RETURNED = 3
    MEASURED_RETURNED = 4
    UNCHANGED = 255
