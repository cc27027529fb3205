"""The test page's packet presets: one list, served to the page as `/presets.json` and read by the tests.

Each preset is a packet as the vendor's clients send it (tag-suffixed keys, money in rubles as JSON numbers with
their digits: Decimal here, never float), which devices it needs (a register, a bank terminal), and the header
style the page sends it in by default: 1.3+ (`BIT_KKT_TOKEN`, `Action: command_list`, as the vendor's 2025 page),
or 1.2 (tokens as header names, `Action: toLocalhost`, a `json=` body), as the Bitrix module does.
A card payment needs a person at the terminal, so a preset with one cannot go through the cloud (`cloud`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..bitapi import dumps, loads
from . import example_packet

__all__ = ["BITRIX_ADMIN", "Preset", "preset", "presets", "presets_document"]

CASHIER = {"cashierName_1021": "Пупкин Иван Трофимович", "cashierInn_1203": ""}
BITRIX_ADMIN = "Иванов Иван Иванович"  # the Bitrix module puts the admin's name into cashierInn_1203 as well
# A GS1 DataMatrix code of a marked good (the GS separators included), as the scanner reads it; sent in base64.
MARKING_CODE = b"0104603586014674215012516640247\x1d91EE10\x1d92EC9TS/3CdrTuO7M5+9nrNhy8o0zq2CHV74v7qv77+Pk="


@dataclass(frozen=True)
class Preset:
    key: str
    ru: str
    en: str
    packet: list[Any]
    bnk: bool = False  # needs a bank terminal (BIT_BNK_TRM_TOKEN)
    style: str = "1.3"  # the header style the page sends it in by default

    @property
    def cloud(self) -> bool:
        """Whether the cloud takes it (register commands only)."""
        return not self.bnk

    @property
    def text(self) -> str:
        return dumps(self.packet)


def _item(name: str, price: str, qty: str = "1", **extra: Any) -> dict[str, Any]:
    return {"productName_1030": name, "price_1079": Decimal(price), "qty_1023": Decimal(qty), "unit_2108": 0,
            "paymentFormCode_1214": 4, "productTypeCode_1212": 1, "tax_1199": 6, **extra}


def _receipt(name: str, items: list[dict[str, Any]], cash: Decimal, *, receipt_type: int = 1,
             ecash: Decimal = Decimal(0)) -> dict[str, Any]:
    return {"name": name, "type": "kktReceiptFiscalization", "data": {
        "purchases": items, **CASHIER,
        "payments": {"cash_1031": cash, "ecash_1081": ecash, "prepayment_1215": 0, "credit_1216": 0,
                     "barter_1217": 0},
        "taxationType_1055": 5, "receiptType_1054": receipt_type, "printDoc": True}}


def _eighty() -> dict[str, Any]:
    items = [_item(f"Товар {n:02d}", f"{n}.{n % 100:02d}") for n in range(1, 81)]
    total = sum(item["price_1079"] for item in items)
    return _receipt("Чек на 80 позиций", items, total)


def _bitrix() -> list[Any]:
    """`paymentacceptance`'s «Банковской картой»: the card, then the basket as purchases with no payments at all."""
    return [{"name": "1. Оплата картой", "type": "bnkCardPayment", "data": {"sum": 12}},
            {"name": "2. Чек", "type": "kktReceiptFiscalization", "data": {
                "purchases": [{"productName_1030": "Товар из корзины", "price_1079": 12, "qty_1023": 1,
                               "getVatRate": 0, "unit_2108": 0, "paymentFormCode_1214": 2,
                               "productTypeCode_1212": 3, "tax_1199": 6}],
                "cashierName_1021": BITRIX_ADMIN, "cashierInn_1203": BITRIX_ADMIN,
                "taxationType_1055": 5, "receiptType_1054": 1, "electronically": False}}]


def presets() -> list[Preset]:
    example = loads(example_packet())
    marked = _item("Обувь (маркировка)", "1990.00", productTypeCode_1212=33,
                   mrkcode_2000=base64.b64encode(MARKING_CODE).decode(), imcType_2100=256,
                   imcModeProcessing_2102=0, itemEstimatedStatus_2003=1)
    return [  # in the order of a working day: the test runs them so, from a fresh register
        Preset("open_shift", "Открыть смену", "Open the shift",
               [{"name": "Открытие смены", "type": "kktOpenShift", "data": CASHIER}]),
        Preset("cash_in", "Внесение наличных", "Cash in",
               [{"name": "Внесение", "type": "kktCashIn", "cashSum": Decimal("1000.00"), "data": CASHIER}]),
        Preset("example", "Пример API 1.2: оплата картой и чек", "API 1.2 example: card payment and receipt",
               example, bnk=True),
        Preset("receipt", "Только чек", "Receipt only", example[1:]),
        Preset("sale_return", "Возврат прихода", "Sale return",
               [_receipt("Возврат", [_item("товар 123", "11.00")], Decimal("11.00"), receipt_type=2)]),
        Preset("marked", "Маркированный товар", "Marked goods",
               [_receipt("Чек с маркировкой", [marked], Decimal("1990.00"))]),
        Preset("items80", "Чек на 80 позиций", "A receipt of 80 items", [_eighty()]),
        Preset("bitrix", "Модуль Битрикс: картой", "Bitrix module: by card", _bitrix(), bnk=True, style="1.2"),
        Preset("x_report", "X-отчёт", "X report", [{"name": "X-отчёт", "type": "kktXReport", "data": CASHIER}]),
        Preset("cash_out", "Выплата наличных", "Cash out",
               [{"name": "Выплата", "type": "kktCashOut", "cashSum": Decimal("250.50"), "data": CASHIER}]),
        Preset("close_shift", "Закрыть смену", "Close the shift",
               [{"name": "Закрытие смены", "type": "kktCloseShift", "data": CASHIER}]),
    ]


def preset(key: str) -> Preset:
    return next(p for p in presets() if p.key == key)


def presets_document() -> str:
    """The presets as the page reads them (JSON text; each packet as JSON text, its digits as written)."""
    return dumps([{"key": p.key, "ru": p.ru, "en": p.en, "bnk": p.bnk, "cloud": p.cloud, "style": p.style,
                   "packet": p.text} for p in presets()])
