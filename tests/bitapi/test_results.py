"""Results in BIT JSON: name + success|error, fiscal fields beside them, a packet error as result:false."""

import json
from datetime import datetime
from decimal import Decimal

import pytest

from kktbridge.bitapi import (
    Adjustment,
    CommandResult,
    PacketError,
    decode_request,
    dumps,
    encode_packet_error,
    encode_results,
)
from kktbridge.fiscal import BridgeError, DocumentKind, FiscalResult, ReceiptQr, ReceiptType

RECEIPT = FiscalResult(kind=DocumentKind.RECEIPT, fd_number=123, fiscal_sign="2918241905", fn_number="9999078900012345",
                       shift_number=5, datetime=datetime(2026, 11, 23, 19, 4, 5), reg_number="0000000001012345",
                       receipt_number=7, total=1100, receipt_type=ReceiptType.SALE)


def test_receipt_success_carries_fiscal_fields_beside_success():
    (out,) = encode_results([CommandResult("2. Фискализируем чек", "kktReceiptFiscalization", True, fiscal=RECEIPT)])
    assert out["name"] == "2. Фискализируем чек" and "error" not in out
    assert out["success"] == "OK: чек №7 (приход), ФД 123, ФП 2918241905"
    assert out["fdNumber_1040"] == 123 and out["fiscalSign_1077"] == "2918241905"
    assert out["fnNumber_1041"] == "9999078900012345" and out["shiftNumber_1038"] == 5
    assert out["receiptNumber_1042"] == 7 and out["dateTime_1012"] == "2026-11-23T19:04:05"
    assert out["regNumber_1037"] == "0000000001012345" and out["total_1020"] == Decimal("11.00")
    assert out["receiptType_1054"] == 1
    qr = ReceiptQr.parse(out["qr"])
    assert (qr.fd_number, qr.total, qr.fiscal_sign) == (123, 1100, "2918241905")
    text = dumps([out])
    assert '"total_1020":11.00' in text and "Фискализируем" in text
    assert json.loads(text)[0]["total_1020"] == 11.0


def test_shift_result_has_no_qr():
    shift = FiscalResult(kind=DocumentKind.CLOSE_SHIFT, fd_number=9, fiscal_sign="1", fn_number="1", shift_number=5,
                         datetime=datetime(2026, 11, 23))
    (out,) = encode_results([CommandResult("z", "kktCloseShift", True, fiscal=shift)])
    assert out["success"] == "OK: смена №5 закрыта, ФД 9, ФП 1" and "qr" not in out and "total_1020" not in out


def test_error_keeps_device_code_and_both_languages():
    error = BridgeError("no_paper", "нет бумаги", "out of paper", retryable=True, device_code=103,
                        device_text="Нет бумаги")
    results = [CommandResult("1", "bnkCardPayment", True, message="Одобрено", extra={"rrn": "123456789012"}),
               CommandResult("2", "kktReceiptFiscalization", False, error=error),
               CommandResult("3", "kktOpenCashDraw", False, skipped=True,
                             error=BridgeError("skipped", "не выполнено", "not run"))]
    pay, check, skipped = encode_results(results)
    assert pay == {"name": "1", "type": "bnkCardPayment", "success": "Одобрено", "rrn": "123456789012"}
    assert check["error"] == "нет бумаги / out of paper [103: Нет бумаги]"
    assert check["errorCode"] == "no_paper" and check["retryable"] is True
    assert check["deviceError"] == {"code": 103, "text": "Нет бумаги"}
    assert skipped["skipped"] is True and "success" not in skipped


def test_packet_error_shape():
    with pytest.raises(PacketError) as info:
        decode_request({}, b"[1,")
    out = encode_packet_error(info.value)
    assert out["result"] is False and out["errorCode"] == "bad_packet"
    assert out["fields"][0]["path"] == "body" and out["fields"][0]["code"] == "json"
    assert "строка 1" in out["error"] and "line 1" in out["error"]
    json.loads(dumps(out))


def test_dumps_refuses_floats_and_keeps_digits():
    assert dumps({"a": Decimal("12.00"), "b": [1, True, None, "я"]}) == '{"a":12.00,"b":[1,true,null,"я"]}'
    with pytest.raises(TypeError):
        dumps({"a": 1.5})


def test_adjustments_beside_success_and_said_in_it():
    adjusted = Adjustment("[1].data.payments", "payments_completed", "оплата не указана: доплачено 11.00 наличными",
                          "no payments given: 11.00 in cash added")
    ok, failed = encode_results([
        CommandResult("чек", "kktReceiptFiscalization", True, fiscal=RECEIPT, warnings=(adjusted,)),
        CommandResult("чек", "kktReceiptFiscalization", False, error=BridgeError("no_paper", "нет бумаги", "no paper"),
                      warnings=(adjusted,))])
    assert ok["warnings"] == [{"path": "[1].data.payments", "code": "payments_completed",
                               "ru": adjusted.ru, "en": adjusted.en}]
    assert ok["success"] == ("OK: чек №7 (приход), ФД 123, ФП 2918241905; исправлено драйвером: "
                             "оплата не указана: доплачено 11.00 наличными")
    assert failed["warnings"] == ok["warnings"] and failed["error"] == "нет бумаги / no paper"
    (plain,) = encode_results([CommandResult("чек", "kktReceiptFiscalization", True, fiscal=RECEIPT)])
    assert "warnings" not in plain
