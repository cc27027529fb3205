"""The packets of the vendor's own clients that a strict reading refuses (issue 11), written from their
description, with what each must print: the payments the register must record and the adjustments reported.

Each shape goes out in both header styles: 1.3+ (`BIT_KKT_TOKEN`, `Action: command_list`, the body as
`encodeURIComponent(json)`, as the 2025 page's jQuery sends a string) and 1.2 (each token a header name with the
value 1, `Action: toLocalhost`, a `json=` form body, as jQuery encodes `data: {json: text}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, quote_plus

__all__ = ["SHAPES", "Shape", "request"]

ADMIN = "Иванов Иван Иванович"  # a Bitrix admin with a name: the module puts it into cashierInn_1203 as well


def _card(rubles) -> dict:
    return {"name": "1. Оплата картой", "type": "bnkCardPayment", "data": {"sum": rubles}}


def _receipt(data: dict) -> dict:
    return {"name": "2. Чек", "type": "kktReceiptFiscalization", "data": data}


DEMO_2025 = [_card(12), _receipt({  # test-with-ajax.php, the «ЧЕК» button
    "1059": [
        {"productName_1030": "товар 1", "price_1079": 11, "qty_1023": 1, "amount_1043": 11, "unit_2108": 0,
         "paymentFormCode_1214": 4, "productTypeCode_1212": 1, "tax_1199": 6},
        {"productName_1030": "товар 2", "price_1079": 22, "qty_1023": 1.234, "amount_1043": 27.7, "unit_2108": 0,
         "paymentFormCode_1214": 4, "productTypeCode_1212": 1, "tax_1199": 6},
    ],
    "cashierName_1021": "Пупкин Иван Трофимович", "cashierInn_1203": "",
    "payments": {"cash_1031": 10, "ecash_1081": 1, "prepayment_1215": 0, "credit_1216": 0, "barter_1217": 0},
    "taxationType_1055": 5, "receiptType_1054": 1, "printDoc": True,
})]

_BITRIX_RECEIPT = _receipt({  # paymentacceptance: the basket as purchases, no payments at all
    "purchases": [{"productName_1030": "Товар из корзины", "price_1079": 12, "qty_1023": 1, "getVatRate": 0,
                   "unit_2108": 0, "paymentFormCode_1214": 2, "productTypeCode_1212": 3, "tax_1199": 6}],
    "cashierName_1021": ADMIN, "cashierInn_1203": ADMIN,
    "taxationType_1055": 5, "receiptType_1054": 1, "electronically": False,
})

_WOO_RECEIPT = _receipt({  # woo-pa: a line total as a string, no price, no payment object, no payments
    "purchases": [{"productName_1030": "Товар заказа", "sum": "12", "qty_1023": 1, "unit_2108": 0,
                   "paymentFormCode_1214": 4, "tax_1199": 6}],
    "cashierName_1021": "Администратор", "cashierInn_1203": "",
    "taxationType_1055": 5, "receiptType_1054": 1, "electronically": False,
})


@dataclass(frozen=True)
class Shape:
    name: str
    packet: list
    payments: dict[str, int]  # kopecks by kind, as the emulator's FN journal records them
    warnings: tuple[str, ...]  # the codes on the receipt's result, in order
    total: int

    @property
    def card(self) -> bool:
        return self.packet[0]["type"] == "bnkCardPayment"


SHAPES = [
    Shape("2025 demo page, ЧЕК", DEMO_2025, {"electronic": 1200, "cash": 2615},
          ("amount_recomputed", "payments_completed"), 3815),
    Shape("Bitrix, Наличными", [_BITRIX_RECEIPT], {"cash": 1200}, ("cashier_inn_dropped", "payments_completed"), 1200),
    Shape("Bitrix, Банковской картой", [_card(12), _BITRIX_RECEIPT], {"electronic": 1200},
          ("cashier_inn_dropped", "payments_completed"), 1200),
    Shape("WooCommerce, cash", [_WOO_RECEIPT], {"cash": 1200}, ("price_from_total", "payments_completed"), 1200),
    Shape("WooCommerce, card", [_card(12), _WOO_RECEIPT], {"electronic": 1200},
          ("price_from_total", "payments_completed"), 1200),
]


def request(text: str, style: str, kkt: str, bnk: str | None, order: str) -> tuple[dict[str, str], str]:
    """(headers, body) of a packet's JSON text as the vendor's jQuery clients send it in a header style."""
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8", "BIT_ORDER_ID": order}
    if style == "1.2":
        headers = {**form, "Action": "toLocalhost", kkt: "1", **({bnk: "1"} if bnk else {})}
        return headers, "json=" + quote_plus(text, safe="-_.!~*'()")
    headers = {**form, "Action": "command_list", "BIT_KKT_TOKEN": kkt, "BIT_ENCODE_TYPE": "JS",
               **({"BIT_BNK_TRM_TOKEN": bnk} if bnk else {})}
    return headers, quote(text, safe="-_.!~*'()")
