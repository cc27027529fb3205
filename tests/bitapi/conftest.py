import json
from datetime import date

import pytest

from kktbridge.bitapi import PacketError, decode_request

TODAY = date(2026, 11, 23)


def _decode(packet, headers=None, **kw):
    body = packet if isinstance(packet, (bytes, str)) else json.dumps(packet, ensure_ascii=False)
    body = body.encode() if isinstance(body, str) else body
    kw.setdefault("today", TODAY)
    return decode_request(headers or {"Action": "command_list"}, body, **kw)


def _refusal(packet, **kw) -> dict[str, str]:
    """{path: code} of a refused packet."""
    with pytest.raises(PacketError) as info:
        _decode(packet, **kw)
    return {f.path: f.code for f in info.value.fields}


@pytest.fixture
def decode():
    return _decode


@pytest.fixture
def refusal():
    return _refusal


@pytest.fixture
def item():
    def make(**overrides):
        base = {"productName_1030": "товар 123", "price_1079": 11.00, "qty_1023": 1, "unit_2108": 0,
                "paymentFormCode_1214": 4, "productTypeCode_1212": 1, "tax_1199": 6}
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}
    return make


@pytest.fixture
def receipt_packet(item):
    def make(items=None, **data):
        body = {"purchases": items if items is not None else [item()], "cashierName_1021": "Пупкин",
                "cashierInn_1203": "", "payments": {"cash_1031": 11.00}, "taxationType_1055": 1,
                "receiptType_1054": 1, "printDoc": True}
        body.update(data)
        body = {k: v for k, v in body.items() if v is not None}
        return [{"name": "чек", "type": "kktReceiptFiscalization", "data": body}]
    return make
