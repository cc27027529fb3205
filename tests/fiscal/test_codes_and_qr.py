"""FFD code tables and the receipt QR string."""

from datetime import datetime

import pytest

from kktbridge.fiscal import (
    DocumentKind,
    FiscalResult,
    FormatError,
    Measure,
    PaymentKind,
    PaymentMethod,
    PaymentObject,
    ReceiptQr,
    ReceiptType,
    TaxationSystem,
    VatRate,
    printed_fiscal_sign,
)


def test_taxation_index_and_mask():
    assert TaxationSystem.from_index(0) is TaxationSystem.OSN
    assert TaxationSystem.from_index(5) is TaxationSystem.PATENT
    assert TaxationSystem.from_mask(1) is TaxationSystem.OSN
    assert TaxationSystem.from_mask(32) is TaxationSystem.PATENT
    assert [t.mask for t in TaxationSystem] == [1, 2, 4, 8, 16, 32]
    assert [t.index for t in TaxationSystem] == [0, 1, 2, 3, 4, 5]
    # clients send the index; masks that no index can mean are accepted too
    assert TaxationSystem.from_client_value(5) is TaxationSystem.PATENT
    assert TaxationSystem.from_client_value(1) is TaxationSystem.USN_INCOME
    assert TaxationSystem.from_client_value(16) is TaxationSystem.ESHN
    with pytest.raises(ValueError):
        TaxationSystem.from_client_value(6)


def test_vat_codes_and_amounts():
    assert int(VatRate.VAT5) == 7 and int(VatRate.VAT7_107) == 10
    assert int(VatRate.VAT22) == 11 and int(VatRate.VAT22_122) == 12
    assert VatRate.VAT22.amount_of(12200) == 2200
    assert VatRate.VAT20.amount_of(12000) == 2000
    assert VatRate.VAT10.amount_of(11000) == 1000
    assert VatRate.VAT5.amount_of(10500) == 500
    assert VatRate.VAT7_107.amount_of(10700) == 700
    assert VatRate.VAT0.amount_of(10000) == 0
    assert VatRate.NONE.amount_of(10000) == 0
    assert VatRate.VAT22.amount_of(100) == 18  # 18.03 → 18
    assert VatRate.VAT10.amount_of(5) == 0  # 0.4545 → 0
    assert VatRate.VAT10.amount_of(6) == 1  # 0.545 → 1


def test_other_tables():
    assert [int(m) for m in PaymentMethod] == list(range(1, 8))
    assert 28 not in {int(p) for p in PaymentObject} and int(PaymentObject.COMMODITY_MARKED) == 33
    assert int(Measure.KILOGRAM) == 11 and int(Measure.OTHER) == 255
    assert [k.tag for k in PaymentKind] == [1031, 1081, 1215, 1216, 1217]
    assert ReceiptType.SALE_RETURN.is_return and not ReceiptType.PURCHASE.is_return


def test_qr_string_and_parse():
    result = FiscalResult(
        kind=DocumentKind.RECEIPT, fd_number=64318, fiscal_sign="2918241905", fn_number="9282000100072197",
        shift_number=3, datetime=datetime(2019, 4, 18, 21, 16, 55), receipt_number=7, total=394326,
        receipt_type=ReceiptType.SALE, reg_number="0000000001012345",
    )
    assert result.qr == "t=20190418T2116&s=3943.26&fn=9282000100072197&i=64318&fp=2918241905&n=1"
    # the published example, with seconds, reads too
    parsed = ReceiptQr.parse("t=20190418T211655&s=3943.26&fn=9282000100072197&i=64318&fp=2918241905&n=1")
    assert parsed.total == 394326 and parsed.fd_number == 64318 and parsed.datetime.second == 55
    again = ReceiptQr.parse(result.qr)
    assert (again.total, again.fn_number, again.fiscal_sign, again.receipt_type) == (
        394326, "9282000100072197", "2918241905", ReceiptType.SALE)


def test_qr_absent_for_other_documents():
    shift = FiscalResult(kind=DocumentKind.OPEN_SHIFT, fd_number=1, fiscal_sign="1", fn_number="1",
                         shift_number=1, datetime=datetime(2026, 1, 1))
    assert shift.qr is None


@pytest.mark.parametrize("text", ["", "t=20190418T2116&s=1.00", "t=2019&s=1&fn=1&i=1&fp=1&n=1",
                                  "t=20190418T2116&s=1.00&fn=1&i=x&fp=1&n=1",
                                  "t=20190418T2116&s=1.00&fn=1&i=1&fp=1&n=9"])
def test_qr_parse_rejects(text):
    with pytest.raises(FormatError):
        ReceiptQr.parse(text)


def test_printed_fiscal_sign():
    assert printed_fiscal_sign(bytes([1, 2, 3, 4, 5, 6])) == "50595078"
    assert printed_fiscal_sign(bytes([0xFF] * 6)) == str(2**32 - 1)
    with pytest.raises(FormatError):
        printed_fiscal_sign(bytes(7))
