"""The ATOL command layer ("Протокол ККТ 3.1"): the bytes inside a v2 frame, or after `C1 flags tid` in v3.

Both sides use this file: the host builds requests and reads replies, the emulator reads requests and builds
replies, so one layout serves both and the published vectors pin it (spec/devices.md §1.3–1.5).
A request is `password(2, BCD) + code + params`; most replies are `55 + error + extended error + data`.

Layouts follow atol4j. Where the public facts leave a gap (spec/devices.md §5), the choice made is in the
table UNVERIFIED at the end of this file and nowhere else: every value there is a plausible design, not
checked against ATOL's "Протокол работы ККТ 3.1 — Руководство программиста".
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from ...fiscal import PaymentKind, ReceiptType, VatRate
from .. import tlv
from . import bcd, charset

__all__ = [
    "ACK_BYTE",
    "UNVERIFIED",
    "Code",
    "CommandRequest",
    "DeviceState",
    "DeviceType",
    "CashInDrawer",
    "DocumentChunk",
    "DocumentContent",
    "DocumentInfo",
    "FnSub",
    "ItemLine",
    "Mode",
    "PaymentReply",
    "RegisterValue",
    "RegistrationInfo",
    "Reply",
    "ShiftState",
    "StateCode",
    "parse_request",
]

ACK_BYTE = 0x55  # 'U': the first byte of a normal reply


class Code(enum.IntEnum):
    DEVICE_STATE = 0x3F
    STATE_CODE = 0x45
    DEVICE_TYPE = 0xA5
    ENTER_MODE = 0x56
    LEAVE_MODE = 0x48
    OPEN_SHIFT = 0x9A
    OPEN_RECEIPT = 0x92
    REGISTER_ITEM = 0xE6
    WRITE_REQUISITE = 0xE8
    PAYMENT = 0x99
    CLOSE_RECEIPT = 0x4A
    CANCEL_RECEIPT = 0x59
    CASH_IN = 0x49
    CASH_OUT = 0x4F
    REPORT = 0x67
    Z_REPORT = 0x5A
    OPEN_DRAWER = 0x80
    CASH_IN_DRAWER = 0x4D
    PRINT_STRING = 0x4C
    BARCODE = 0xC1
    CUT = 0x75
    BEEP = 0x47
    FN = 0xA4
    READ_REGISTER = 0x91


class Mode(enum.IntEnum):
    SELECT = 0
    REGISTRATION = 1
    REPORT_X = 2
    REPORT_Z = 3
    PROGRAMMING = 4
    FISCAL_MEMORY = 5
    FN_ACCESS = 6


class FnSub(enum.IntEnum):
    """Sub-commands of 0xA4 (FN queries)."""

    SHIFT_STATE = 0x10
    OFD_STATUS = 0x20
    FN_STATUS = 0x30
    FN_NUMBER = 0x31
    FN_VALIDITY = 0x32
    FN_VERSION = 0x33
    DOCUMENT = 0x45  # UNVERIFIED layout, see the table at the end
    DOCUMENT_DATA = 0x46  # UNVERIFIED layout, see the table at the end
    REGISTRATION = 0x43  # UNVERIFIED: the sub-command and its layout, see the table at the end


# --- requests ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """One request: the access password, the command code and its parameters."""

    code: int
    params: bytes = b""
    password: int = 0

    def encode(self) -> bytes:
        return _password(self.password) + bytes((self.code,)) + self.params

    # builders, one per command the adapter sends; each returns bytes ready for a transport

    @staticmethod
    def device_state(password: int = 0) -> bytes:
        return CommandRequest(Code.DEVICE_STATE, b"", password).encode()

    @staticmethod
    def state_code(password: int = 0) -> bytes:
        return CommandRequest(Code.STATE_CODE, b"", password).encode()

    @staticmethod
    def device_type(password: int = 0) -> bytes:
        return CommandRequest(Code.DEVICE_TYPE, b"", password).encode()

    @staticmethod
    def enter_mode(mode: Mode, mode_password: int = 30, password: int = 0) -> bytes:
        return CommandRequest(Code.ENTER_MODE, bytes((mode,)) + bcd.encode(mode_password, 4), password).encode()

    @staticmethod
    def leave_mode(password: int = 0) -> bytes:
        return CommandRequest(Code.LEAVE_MODE, b"", password).encode()

    @staticmethod
    def open_shift(test: bool = False, password: int = 0) -> bytes:
        return CommandRequest(Code.OPEN_SHIFT, bytes((int(test),)), password).encode()

    @staticmethod
    def open_receipt(receipt_type: ReceiptType, *, electronically: bool = False, test: bool = False,
                     password: int = 0) -> bytes:
        flags = int(test) | (2 if electronically else 0)
        return CommandRequest(Code.OPEN_RECEIPT, bytes((flags, RECEIPT_TYPES[receipt_type])), password).encode()

    @staticmethod
    def register_item(line: "ItemLine", password: int = 0) -> bytes:
        return CommandRequest(Code.REGISTER_ITEM, line.encode(), password).encode()

    @staticmethod
    def write_requisite(tlv: bytes, *, item: bool, password: int = 0) -> bytes:
        return CommandRequest(Code.WRITE_REQUISITE, bytes((UNVERIFIED["E8_ITEM_FLAG"] if item else 0,)) + tlv,
                              password).encode()

    @staticmethod
    def payment(kind: PaymentKind, amount: int, test: bool = False, password: int = 0) -> bytes:
        params = bytes((int(test), PAYMENT_TYPES[kind])) + bcd.encode(amount, 5)
        return CommandRequest(Code.PAYMENT, params, password).encode()

    @staticmethod
    def close_receipt(kind: PaymentKind, amount: int, test: bool = False, password: int = 0) -> bytes:
        params = bytes((int(test), PAYMENT_TYPES[kind])) + bcd.encode(amount, 5)
        return CommandRequest(Code.CLOSE_RECEIPT, params, password).encode()

    @staticmethod
    def cancel_receipt(password: int = 0) -> bytes:
        return CommandRequest(Code.CANCEL_RECEIPT, b"", password).encode()

    @staticmethod
    def cash(cash_in: bool, amount: int, test: bool = False, password: int = 0) -> bytes:
        code = Code.CASH_IN if cash_in else Code.CASH_OUT
        return CommandRequest(code, bytes((int(test),)) + bcd.encode(amount, 5), password).encode()

    @staticmethod
    def report(report_type: int = 1, password: int = 0) -> bytes:
        return CommandRequest(Code.REPORT, bytes((report_type,)), password).encode()

    @staticmethod
    def z_report(password: int = 0) -> bytes:
        return CommandRequest(Code.Z_REPORT, b"", password).encode()

    @staticmethod
    def open_drawer(password: int = 0) -> bytes:
        return CommandRequest(Code.OPEN_DRAWER, b"", password).encode()

    @staticmethod
    def print_string(text: str, password: int = 0) -> bytes:
        return CommandRequest(Code.PRINT_STRING, charset.encode_lossy(text), password).encode()

    @staticmethod
    def qr_code(data: str, align: int = 2, password: int = 0) -> bytes:
        header = bytes((0, align, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0))
        return CommandRequest(Code.BARCODE, header + data.encode("utf-8"), password).encode()

    @staticmethod
    def fn(sub: FnSub, params: bytes = b"", password: int = 0) -> bytes:
        return CommandRequest(Code.FN, bytes((sub,)) + params, password).encode()

    @staticmethod
    def document(fd_number: int, password: int = 0) -> bytes:
        """0xA4 0x45: the header of FN document `fd_number` (UNVERIFIED["A4_45_LAST"] asks for the last one)."""
        return CommandRequest.fn(FnSub.DOCUMENT, fd_number.to_bytes(4, "little"), password)

    @staticmethod
    def document_data(fd_number: int, offset: int = 0, password: int = 0) -> bytes:
        """0xA4 0x46: a chunk of FN document `fd_number`'s TLV content, from byte `offset` (UNVERIFIED)."""
        return CommandRequest.fn(FnSub.DOCUMENT_DATA, fd_number.to_bytes(4, "little") + offset.to_bytes(2, "little"),
                                 password)

    @staticmethod
    def cash_in_drawer(password: int = 0) -> bytes:
        return CommandRequest(Code.CASH_IN_DRAWER, b"", password).encode()

    @staticmethod
    def read_register(register: int, p1: int = 0, p2: int = 0, password: int = 0) -> bytes:
        """0x91 `reg p1 p2`: one of the register's counters (RegisterValue; which ones: UNVERIFIED["91_*"])."""
        return CommandRequest(Code.READ_REGISTER, bytes((register, p1, p2)), password).encode()


@functools.lru_cache(maxsize=16)
def _password(password: int) -> bytes:
    """The 2-byte BCD access password that starts every request (the same for every command: cached)."""
    return bcd.encode(password, 2)


def parse_request(body: bytes) -> CommandRequest:
    """The device's view of a request body; ValueError when it is too short to hold a command."""
    if len(body) < 3:
        raise ValueError(f"an ATOL command needs at least 3 bytes, got {len(body)}")
    return CommandRequest(body[2], bytes(body[3:]), bcd.decode(body[:2]))


# --- 0xE6 item line ----------------------------------------------------------------------------------------

E6_LENGTH = 103  # parameters after the code: atol4j builds 104 bytes with the code


@dataclass(frozen=True, slots=True)
class ItemLine:
    """The fields of 0xE6: name (64 bytes), price BCD6 in kopecks, quantity BCD5 in thousandths, tax, section.

    Layout from atol4j ItemRegistrationCommand. Its own code writes `section` at offset 86 and then zeroes from
    86 (spec/devices.md §1.5 calls it suspect); here the section is kept at 86 and the zeros start at 87,
    which gives the same bytes for section 0, the only value kktbridge sends.
    """

    name: str
    price: int
    quantity_milli: int
    tax: int
    section: int = 0
    test: bool = False

    def encode(self) -> bytes:
        name = charset.encode_lossy(self.name)[:64].ljust(64, b"\x00")
        out = bytearray(E6_LENGTH)
        out[0] = int(self.test) | 2
        out[1:65] = name
        out[65:71] = bcd.encode(self.price, 6)
        out[71:76] = bcd.encode(self.quantity_milli, 5)
        out[76] = 1
        out[77] = 1  # no discount: the "markup" flag with a zero amount (BCD zeros), as atol4j sends it
        out[84] = self.tax
        out[85] = self.section
        return bytes(out)

    @classmethod
    def decode(cls, params: bytes) -> "ItemLine":
        if len(params) < 86:
            raise ValueError(f"0xE6 needs {E6_LENGTH} bytes of parameters, got {len(params)}")
        return cls(
            name=charset.decode(params[1:65].rstrip(b"\x00")),
            price=bcd.decode(params[65:71]),
            quantity_milli=bcd.decode(params[71:76]),
            tax=params[84],
            section=params[85],
            test=bool(params[0] & 1),
        )


# --- replies -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A normal reply `55 err ext data`; `error` 0 is success."""

    error: int = 0
    extended: int = 0
    data: bytes = b""

    def encode(self) -> bytes:
        return bytes((ACK_BYTE, self.error, self.extended)) + self.data

    @classmethod
    def decode(cls, raw: bytes) -> "Reply":
        if len(raw) < 2:
            raise ValueError(f"an ATOL reply needs at least 2 bytes, got {raw.hex(' ')}")
        return cls(raw[1], raw[2] if len(raw) > 2 else 0, bytes(raw[3:]))


@dataclass(frozen=True, slots=True)
class PaymentReply:
    """0x99's data: what is still to pay and the change so far."""

    remainder: int
    change: int

    def encode(self) -> bytes:
        return Reply(0, 0, bcd.encode(self.remainder, 5) + bcd.encode(self.change, 5)).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "PaymentReply":
        return cls(bcd.decode(raw[3:8]), bcd.decode(raw[8:13]))


class StateFlags(enum.IntFlag):
    """Byte 9 of the 0x3F reply."""

    FISCALIZED = 1
    SHIFT_OPEN = 2
    DRAWER_OPEN = 4
    PAPER = 8
    COVER_OPEN = 32
    FN_ACTIVE = 64
    BATTERY_LOW = 128


@dataclass(frozen=True, slots=True)
class DeviceState:
    """The 0x3F reply (atol4j DeviceStateRequest): 30 bytes."""

    clock: datetime
    flags: StateFlags
    serial: int
    model: int
    mode: int
    submode: int
    receipt_number: int
    shift_number: int
    receipt_state: int  # 0 closed, else the ATOL receipt type (1, 2, 4, 5)
    receipt_sum: int
    cashier: int = 0
    hall_number: int = 1
    firmware: bytes = b"32"
    decimal_point: int = 2
    port_type: int = 6  # Ethernet

    def encode(self) -> bytes:
        c = self.clock
        out = bytes((UNVERIFIED["3F_FIRST_BYTE"], _bcd1(self.cashier), self.hall_number,
                     _bcd1(c.year % 100), _bcd1(c.month), _bcd1(c.day),
                     _bcd1(c.hour), _bcd1(c.minute), _bcd1(c.second), int(self.flags)))
        out += bcd.encode(self.serial, 4) + bytes((self.model,)) + self.firmware[:2].ljust(2, b"0")
        out += bytes(((self.submode << 4) | self.mode,))
        out += bcd.encode(self.receipt_number, 2) + bcd.encode(self.shift_number, 2)
        out += bytes((self.receipt_state,)) + bcd.encode(self.receipt_sum, 5)
        out += bytes((self.decimal_point, self.port_type))
        return out

    @classmethod
    def decode(cls, raw: bytes) -> "DeviceState":
        if len(raw) < 30:
            raise ValueError(f"the 0x3F reply has {len(raw)} bytes, 30 expected")
        b = raw
        clock = datetime(2000 + bcd.decode(b[3:4]), bcd.decode(b[4:5]), bcd.decode(b[5:6]),
                         bcd.decode(b[6:7]), bcd.decode(b[7:8]), bcd.decode(b[8:9]))
        return cls(
            clock=clock, flags=StateFlags(b[9]), serial=bcd.decode(b[10:14]), model=b[14], firmware=bytes(b[15:17]),
            mode=b[17] & 0x0F, submode=b[17] >> 4, receipt_number=bcd.decode(b[18:20]),
            shift_number=bcd.decode(b[20:22]), receipt_state=b[22], receipt_sum=bcd.decode(b[23:28]),
            cashier=bcd.decode(b[1:2]), hall_number=b[2], decimal_point=b[28], port_type=b[29],
        )


class StateCodeFlags(enum.IntFlag):
    NO_PAPER = 1
    NO_PRINTER_LINK = 2
    MECHANICAL_ERROR = 4
    CUTTER_ERROR = 8
    PRINTER_ERROR = 16


@dataclass(frozen=True, slots=True)
class StateCode:
    """The 0x45 reply: `55, mode | submode << 4, flags`."""

    mode: int
    submode: int
    flags: StateCodeFlags

    def encode(self) -> bytes:
        return bytes((ACK_BYTE, (self.submode << 4) | self.mode, int(self.flags)))

    @classmethod
    def decode(cls, raw: bytes) -> "StateCode":
        return cls(raw[1] & 0x0F, raw[1] >> 4, StateCodeFlags(raw[2]))


@dataclass(frozen=True, slots=True)
class DeviceType:
    """The 0xA5 reply: error first, then protocol, type, model, mode(2), version(5), name."""

    protocol: int
    device_type: int
    model: int
    version: bytes
    name: str
    error: int = 0

    def encode(self) -> bytes:
        return bytes((self.error, self.protocol, self.device_type, self.model, 0, 0)) + self.version[:5].ljust(
            5, b"\x00") + charset.encode_lossy(self.name)

    @classmethod
    def decode(cls, raw: bytes) -> "DeviceType":
        if raw and raw[0] != 0:
            return cls(0, 0, 0, b"", "", error=raw[0])
        return cls(raw[1], raw[2], raw[3], bytes(raw[6:11]), charset.decode(raw[11:]))


@dataclass(frozen=True, slots=True)
class ShiftState:
    """The 0xA4 0x10 reply: `55 err state shift(2) receipt(2)`; numbers as BCD with the low byte first
    (atol4j reads `decode(r[4], r[3])`). The state byte's values are in UNVERIFIED."""

    state: int  # 0 closed, 1 open, 2 open and older than 24 hours
    shift_number: int
    receipt_number: int

    def encode(self) -> bytes:
        shift = bcd.encode(self.shift_number, 2)
        receipt = bcd.encode(self.receipt_number, 2)
        return bytes((ACK_BYTE, 0, self.state, shift[1], shift[0], receipt[1], receipt[0]))

    @classmethod
    def decode(cls, raw: bytes) -> "ShiftState":
        return cls(raw[2], bcd.decode(bytes((raw[4], raw[3]))), bcd.decode(bytes((raw[6], raw[5]))))


@dataclass(frozen=True, slots=True)
class FnValidity:
    """The 0xA4 0x32 reply: `55 err YY MM DD regs_left regs_made` (UNVERIFIED: the published table names these
    fields; their encoding is assumed binary, as in the 0xA4 0x45 reply's date)."""

    valid_until: date
    registrations_left: int
    registrations_made: int

    def encode(self) -> bytes:
        d = self.valid_until
        return bytes((ACK_BYTE, 0, d.year % 100, d.month, d.day, self.registrations_left, self.registrations_made))

    @classmethod
    def decode(cls, raw: bytes) -> "FnValidity":
        if len(raw) < 7:
            raise ValueError(f"the 0xA4 0x32 reply has {len(raw)} bytes, 7 expected")
        return cls(date(2000 + raw[2], raw[3], raw[4]), raw[5], raw[6])


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """The 0xA4 0x45 reply (UNVERIFIED layout): the last fiscal document, for reconciliation.

    `55 00 doc_type fd(LE32) fiscal_sign(LE32) YY MM DD hh mm ss shift(LE16) receipt(LE16) receipt_type total(LE40)`
    doc_type is the FN document type code (1 registration, 2 open shift, 3 receipt, 5 close shift); an empty
    FN answers doc_type 0.
    """

    doc_type: int
    fd_number: int
    fiscal_sign: int
    clock: datetime
    shift_number: int
    receipt_number: int
    receipt_type: int  # ATOL numbering (1, 2, 4, 5), 0 for documents that are not receipts
    total: int

    def encode(self) -> bytes:
        c = self.clock
        return bytes((ACK_BYTE, 0, self.doc_type)) + self.fd_number.to_bytes(4, "little") + \
            self.fiscal_sign.to_bytes(4, "little") + bytes((c.year % 100, c.month, c.day, c.hour, c.minute, c.second)) + \
            self.shift_number.to_bytes(2, "little") + self.receipt_number.to_bytes(2, "little") + \
            bytes((self.receipt_type,)) + self.total.to_bytes(5, "little")

    @classmethod
    def decode(cls, raw: bytes) -> "DocumentInfo":
        if len(raw) < 27:
            raise ValueError(f"the 0xA4 0x45 reply has {len(raw)} bytes, 27 expected")
        b = raw
        clock = datetime(2000 + b[11], b[12], b[13], b[14], b[15], b[16]) if b[12] else datetime(2000, 1, 1)
        return cls(b[2], int.from_bytes(b[3:7], "little"), int.from_bytes(b[7:11], "little"), clock,
                   int.from_bytes(b[17:19], "little"), int.from_bytes(b[19:21], "little"), b[21],
                   int.from_bytes(b[22:27], "little"))


@dataclass(frozen=True, slots=True)
class DocumentChunk:
    """The 0xA4 0x46 reply (UNVERIFIED layout): `55 00 length(LE16) data`, where `length` is the size of the whole
    TLV content and `data` the part of it from the requested offset, at most UNVERIFIED["A4_46_CHUNK"] bytes."""

    length: int
    data: bytes

    def encode(self) -> bytes:
        return bytes((ACK_BYTE, 0)) + self.length.to_bytes(2, "little") + self.data

    @classmethod
    def decode(cls, raw: bytes) -> "DocumentChunk":
        if len(raw) < 4:
            raise ValueError(f"the 0xA4 0x46 reply has {len(raw)} bytes, at least 4 expected")
        return cls(int.from_bytes(raw[2:4], "little"), bytes(raw[4:]))


@dataclass(frozen=True, slots=True)
class DocumentContent:
    """What a receipt holds beyond its header, as the FN's TLVs: payments (1031, 1081, 1215, 1216, 1217) and one
    1059 STLV per line (1030 name, 1079 price, 1023 quantity, 1043 line total). The 0xA4 0x46 data."""

    payments: dict[PaymentKind, int]
    lines: tuple[tuple[str, int, Decimal, int], ...]  # name, price, quantity, amount

    def encode(self) -> bytes:
        out = [tlv.encode(kind.tag, value).to_bytes() for kind, value in self.payments.items() if value]
        for name, price, quantity, amount in self.lines:
            line = [tlv.encode(1030, name), tlv.encode(1079, price), tlv.encode(1023, quantity),
                    tlv.encode(1043, amount)]
            out.append(tlv.encode(1059, line).to_bytes())
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes) -> "DocumentContent":
        payments: dict[PaymentKind, int] = {}
        lines = []
        for entry in tlv.iter_tlv(data):
            if entry.tag == 1059:
                parts = {child.tag: child for child in entry.children()}
                lines.append((parts[1030].as_text() if 1030 in parts else "", parts[1079].as_int(),
                              parts[1023].as_decimal(), parts[1043].as_int()))
            elif entry.tag in _PAYMENT_TAGS:
                payments[_PAYMENT_TAGS[entry.tag]] = entry.as_int()
        return cls(payments, tuple(lines))


_PAYMENT_TAGS = {kind.tag: kind for kind in PaymentKind}


@dataclass(frozen=True, slots=True)
class CashInDrawer:
    """The 0x4D reply: `4D` + the cash in the drawer, kopecks, BCD of UNVERIFIED["4D_DIGITS"] bytes."""

    cash: int

    def encode(self) -> bytes:
        return bytes((Code.CASH_IN_DRAWER,)) + bcd.encode(self.cash, UNVERIFIED["4D_DIGITS"])  # type: ignore[arg-type]

    @classmethod
    def decode(cls, raw: bytes) -> "CashInDrawer":
        if not raw or raw[0] != Code.CASH_IN_DRAWER:
            raise ValueError(f"the 0x4D reply does not start with 4D: {raw.hex(' ')}")
        return cls(bcd.decode(raw[1:1 + UNVERIFIED["4D_DIGITS"]]))  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class RegisterValue:
    """The 0x91 reply for a counter (UNVERIFIED): `55 00` + the value, BCD of UNVERIFIED["91_DIGITS"] bytes."""

    value: int

    def encode(self) -> bytes:
        return bytes((ACK_BYTE, 0)) + bcd.encode(self.value, UNVERIFIED["91_DIGITS"])  # type: ignore[arg-type]

    @classmethod
    def decode(cls, raw: bytes) -> "RegisterValue":
        digits: int = UNVERIFIED["91_DIGITS"]  # type: ignore[assignment]
        if len(raw) < 2 + digits:
            raise ValueError(f"the 0x91 reply has {len(raw)} bytes, {2 + digits} expected")
        return cls(bcd.decode(raw[2:2 + digits]))


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """The 0xA4 0x43 reply (UNVERIFIED): `55 00 reg_number(20 ASCII) inn(12 ASCII) taxation_mask(1)`, text
    fields padded with spaces."""

    reg_number: str
    inn: str
    taxation_mask: int

    def encode(self) -> bytes:
        return bytes((ACK_BYTE, 0)) + self.reg_number.ljust(20)[:20].encode("ascii") + \
            self.inn.ljust(12)[:12].encode("ascii") + bytes((self.taxation_mask,))

    @classmethod
    def decode(cls, raw: bytes) -> "RegistrationInfo":
        if len(raw) < 35:
            raise ValueError(f"the 0xA4 0x43 reply has {len(raw)} bytes, 35 expected")
        return cls(raw[2:22].decode("ascii").strip(), raw[22:34].decode("ascii").strip(), raw[34])


def _bcd1(value: int) -> int:
    return bcd.encode(value, 1)[0]


# --- code tables -------------------------------------------------------------------------------------------

RECEIPT_TYPES: dict[ReceiptType, int] = {  # 0x92 type byte (atol4j OpenBillCommand)
    ReceiptType.SALE: 1,
    ReceiptType.SALE_RETURN: 2,
    ReceiptType.PURCHASE: 4,
    ReceiptType.PURCHASE_RETURN: 5,
}
RECEIPT_TYPE_OF = {value: key for key, value in RECEIPT_TYPES.items()}

PAYMENT_TYPES: dict[PaymentKind, int] = {  # 0x99 / 0x4A payment type byte (spec/devices.md §1.5)
    PaymentKind.CASH: 1,
    PaymentKind.ELECTRONIC: 2,
    PaymentKind.PREPAYMENT: 3,
    PaymentKind.CREDIT: 4,
    PaymentKind.OTHER: 5,
}
PAYMENT_KIND_OF = {value: key for key, value in PAYMENT_TYPES.items()}

# UNVERIFIED against the ATOL manual: every design choice where the public facts stop (spec/devices.md §5).
# The emulator and the adapter both read these; change a value here and both follow.
UNVERIFIED: dict[str, object] = {
    # First byte of the 0x3F reply: atol4j does not check it; dant expects 0x55; the manual may say 'D'.
    "3F_FIRST_BYTE": 0x44,
    # 0xE6 tax byte: the FFD 1199 code itself (1 20 %, 2 10 %, ... 11 22 %, 12 22/122).
    "E6_TAX": {rate: int(rate) for rate in VatRate},
    # 0xE8 "write requisite": `E8 flags TLV` with the FFD TLV (tag LE16, length LE16, value). Flags bit 0:
    # the requisite belongs to the next 0xE6 item line; clear: to the open receipt. Sent after 0x92.
    "E8_ITEM_FLAG": 0x01,
    # Requisites carried by 0xE8 when 0xE6 cannot hold them: 1030 when the name is longer than 64 bytes,
    # 1023 (FVLN) when the quantity has more than 3 decimals.
    "E6_OVERFLOW_TAGS": (1030, 1023),
    # 0xA4 0x10 state byte: 0 closed, 1 open, 2 open for more than 24 hours (as ATOL driver 10's
    # closed / opened / expired).
    "A4_10_STATES": {"closed": 0, "open": 1, "expired": 2},
    # 0xA4 0x45 + fd(LE32, 0 = the last): the layout of DocumentInfo above; a number the FN does not hold
    # answers error A4_NO_DOCUMENT.
    "A4_45_LAST": 0,
    "A4_NO_DOCUMENT": 0xDA,  # 218
    # 0xA4 0x46 + fd(LE32) + offset(LE16): the document's TLV content in chunks (DocumentChunk, DocumentContent
    # above), so reconciliation can compare payments and lines; atol4j names the sub-command "…_DATA" only.
    "A4_46_CHUNK": 512,
    # 0x4D "cash in drawer": the number of BCD bytes after the 4D byte (spec/devices.md §1.5 gives no width).
    "4D_DIGITS": 7,
    # 0xA4 0x43: the registration data (RegistrationInfo above); no public source names a command for it.
    "A4_43_REGISTRATION": 0x43,
    # 0xA4 0x32: the FN's validity (FnValidity above); the spec names the fields (YY MM DD, registrations left
    # and made), not their encoding: the dates are taken as binary bytes, like 0xA4 0x45's.
    "A4_32_BINARY_DATE": True,
    # 0x91 "read register" (spec/devices.md §1.5 names the command and `reg p1 p2`; Unact/kkm names register 3
    # "payment sum"): register 3 with p1 the receipt type (the 0x92 byte) and p2 the payment type (the 0x99 byte)
    # is the shift's sum of that payment kind in receipts of that type; register 6 with p1 the receipt type is the
    # number of such receipts in the shift. Both are reset when a shift opens. The value: BCD of 7 bytes. Used
    # only with registers that cannot read documents back (the shift counters stand in for them).
    "91_PAYMENTS": 3,
    "91_RECEIPTS": 6,
    "91_DIGITS": 7,
    # Error codes for states atol4j's table has no entry for.
    "ERROR_SHIFT_CLOSED": 0x9D,  # 157
    "ERROR_COVER_OPEN": 0x69,  # 105, "mechanical error of the printing device", with 0x3F flag bit 5 set
}
