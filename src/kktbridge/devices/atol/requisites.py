"""A receipt as ATOL lines and requisites, and back: what 0xE6 holds and what travels in 0xE8 TLVs.

The adapter turns a `fiscal.Receipt` into receipt-level TLVs (sent after 0x92) and, per item, item-level
TLVs (sent before its 0xE6) plus the 0xE6 line; the emulator turns them back into `fiscal` values for the
shared fiscal storage. One module for both directions, so a field cannot be written one way and read
another. The 0xE8 command itself is UNVERIFIED (commands.UNVERIFIED); the TLVs are FFD 1.2's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ...fiscal import (
    AgentInfo,
    AgentType,
    Buyer,
    Cashier,
    IndustryRequisite,
    Item,
    MarkingCode,
    Measure,
    PaymentMethod,
    PaymentObject,
    Quantity,
    Receipt,
    Supplier,
    TaxationSystem,
    VatRate,
)
from .. import tlv
from .commands import UNVERIFIED, ItemLine
from . import charset

__all__ = ["ReceiptRequisites", "item_from", "item_requisites", "receipt_requisites"]

_TAX: dict[VatRate, int] = UNVERIFIED["E6_TAX"]  # type: ignore[assignment]
_TAX_OF = {value: key for key, value in _TAX.items()}


def receipt_requisites(receipt: Receipt) -> list[bytes]:
    """The receipt-level TLVs, in the order a register prints them."""
    out: list[tlv.Tlv] = []
    if receipt.cashier is not None:
        out.append(tlv.encode(1021, receipt.cashier.name))
        if receipt.cashier.inn:
            out.append(tlv.encode(1203, receipt.cashier.inn))
    if receipt.taxation is not None:
        out.append(tlv.encode(1055, receipt.taxation.mask))
    buyer = receipt.buyer
    if buyer is not None:
        if buyer.contact:
            out.append(tlv.encode(1008, buyer.contact))
        details = [tlv.encode(tag, value) for tag, value in (
            (1227, buyer.name), (1228, buyer.inn), (1243, buyer.birth_date), (1244, buyer.citizenship),
            (1245, buyer.document_code), (1246, buyer.document_data), (1254, buyer.address)) if value]
        if details:
            out.append(tlv.encode(1256, details))
    if receipt.time_zone is not None:
        out.append(tlv.encode(1011, receipt.time_zone))
    out.extend(tlv.encode(1261, _industry(r)) for r in receipt.industry)
    if receipt.additional_info:
        out.append(tlv.encode(1192, receipt.additional_info))
    if receipt.agent is not None:
        out.append(tlv.encode(1057, int(receipt.agent.agent_type)))
        out.append(tlv.encode(1223, _agent_block(receipt.agent)))
    if receipt.supplier is not None:
        out.append(tlv.encode(1224, _supplier_block(receipt.supplier)))
    if receipt.internet:
        out.append(tlv.encode(1125, 1))
    return [t.to_bytes() for t in out]


def item_requisites(item: Item) -> tuple[ItemLine, list[bytes]]:
    """The 0xE6 line of an item and the TLVs that must precede it."""
    out: list[tlv.Tlv] = [
        tlv.encode(1212, int(item.payment_object)),
        tlv.encode(1214, int(item.payment_method)),
        tlv.encode(2108, int(item.measure)),
    ]
    if len(charset.encode_lossy(item.name)) > 64:
        out.append(tlv.encode(1030, item.name))
    milli, rest = divmod(item.quantity.micros, 1000)
    if rest:
        out.append(tlv.encode(1023, item.quantity.to_decimal()))
    for tag, value in ((1191, item.additional_info), (1230, item.country_code), (1231, item.customs_declaration)):
        if value:
            out.append(tlv.encode(tag, value))
    if item.excise is not None:
        out.append(tlv.encode(1229, item.excise))
    if item.nomenclature_code:
        out.append(tlv.encode(1162, item.nomenclature_code))
    if item.agent is not None:
        out.append(tlv.encode(1222, int(item.agent.agent_type)))
        out.append(tlv.encode(1223, _agent_block(item.agent)))
    if item.supplier is not None:
        out.append(tlv.encode(1224, _supplier_block(item.supplier)))
    out.extend(tlv.encode(1260, _industry(r)) for r in item.industry)
    marking = item.marking
    if marking is not None:
        out.append(tlv.encode(2000, marking.code))
        if marking.code_type is not None:
            out.append(tlv.encode(2100, marking.code_type))
        out.append(tlv.encode(2102, marking.processing_mode))
        if marking.planned_status is not None:
            out.append(tlv.encode(2003, marking.planned_status))
        if marking.fraction:
            numerator, _, denominator = marking.fraction.partition("/")
            out.append(tlv.encode(1291, [tlv.encode(1293, int(numerator)), tlv.encode(1294, int(denominator))]))
    vat = item.vat if item.vat is not None else VatRate.NONE
    line = ItemLine(name=item.name, price=item.price, quantity_milli=milli, tax=_TAX[vat])
    return line, [t.to_bytes() for t in out]


@dataclass
class ReceiptRequisites:
    """What the emulator gathers from 0xE8 for the open receipt (receipt-level TLVs)."""

    cashier: Cashier | None = None
    taxation: TaxationSystem | None = None
    buyer: Buyer | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, item: tlv.Tlv) -> None:
        tag = item.tag
        if tag == 1021:
            self.cashier = Cashier(item.as_text(), self.cashier.inn if self.cashier else None)
        elif tag == 1203:
            self.cashier = Cashier(self.cashier.name if self.cashier else "", item.as_text())
        elif tag == 1055:
            self.taxation = TaxationSystem.from_mask(item.as_int())
        elif tag == 1008:
            self.buyer = _merge_buyer(self.buyer, contact=item.as_text())
        elif tag == 1256:
            fields = {1227: "name", 1228: "inn", 1243: "birth_date", 1244: "citizenship", 1245: "document_code",
                      1246: "document_data", 1254: "address"}
            self.buyer = _merge_buyer(self.buyer, **{fields[c.tag]: c.as_text() for c in item.children()
                                                     if c.tag in fields})
        elif tag == 1011:
            self.extra["time_zone"] = item.as_int()
        elif tag == 1261:
            self.extra.setdefault("industry", []).append(_industry_dict(item))
        else:
            self.extra[str(tag)] = item.value.hex()


def item_from(line: ItemLine, tlvs: list[tlv.Tlv]) -> Item:
    """An Item from a 0xE6 line and the item-level TLVs sent before it (the emulator's side)."""
    by_tag: dict[int, list[tlv.Tlv]] = {}
    for t in tlvs:
        by_tag.setdefault(t.tag, []).append(t)

    def one(tag: int) -> tlv.Tlv | None:
        return by_tag[tag][-1] if tag in by_tag else None

    name = one(1030).as_text() if one(1030) else line.name
    exact = one(1023)
    quantity = Quantity.parse(exact.as_decimal()) if exact else Quantity(line.quantity_milli * 1000)
    if exact and quantity.micros // 1000 != line.quantity_milli:
        raise ValueError("the 1023 requisite disagrees with the 0xE6 quantity")
    marking = None
    if one(2000):
        fraction = None
        if one(1291):
            parts = {c.tag: c.as_int() for c in one(1291).children()}
            fraction = f"{parts.get(1293, 0)}/{parts.get(1294, 0)}"
        marking = MarkingCode(code=one(2000).value, code_type=one(2100).as_int() if one(2100) else None,
                              processing_mode=one(2102).as_int() if one(2102) else 0,
                              planned_status=one(2003).as_int() if one(2003) else None, fraction=fraction)
    agent = None
    if one(1222):
        agent = _agent_from(AgentType(one(1222).as_int()), one(1223))
    supplier = _supplier_from(one(1224)) if one(1224) else None
    return Item(
        name=name,
        price=line.price,
        quantity=quantity,
        vat=_TAX_OF[line.tax],
        payment_object=PaymentObject(one(1212).as_int()) if one(1212) else PaymentObject.COMMODITY,
        payment_method=PaymentMethod(one(1214).as_int()) if one(1214) else PaymentMethod.FULL_PAYMENT,
        measure=Measure(one(2108).as_int()) if one(2108) else Measure.PIECE,
        additional_info=one(1191).as_text() if one(1191) else None,
        country_code=one(1230).as_text() if one(1230) else None,
        customs_declaration=one(1231).as_text() if one(1231) else None,
        excise=one(1229).as_int() if one(1229) else None,
        nomenclature_code=one(1162).value if one(1162) else None,
        marking=marking,
        industry=tuple(_industry_from(t) for t in by_tag.get(1260, ())),
        agent=agent,
        supplier=supplier,
    )


def tax_of(code: int) -> VatRate:
    """The VAT rate of a 0xE6 tax byte; KeyError for an unknown byte."""
    return _TAX_OF[code]


# --- blocks ------------------------------------------------------------------------------------------------


def _industry(r: IndustryRequisite) -> list[tlv.Tlv]:
    return [tlv.encode(1262, r.foiv_id), tlv.encode(1263, r.document_date), tlv.encode(1264, r.document_number),
            tlv.encode(1265, r.value)]


def _industry_from(block: tlv.Tlv) -> IndustryRequisite:
    parts = {c.tag: c.as_text() for c in block.children()}
    return IndustryRequisite(parts.get(1262, ""), parts.get(1263, ""), parts.get(1264, ""), parts.get(1265, ""))


def _industry_dict(block: tlv.Tlv) -> dict[str, str]:
    r = _industry_from(block)
    return {"foiv_id": r.foiv_id, "document_date": r.document_date, "document_number": r.document_number,
            "value": r.value}


def _agent_block(agent: AgentInfo) -> list[tlv.Tlv]:
    out = []
    if agent.paying_operation:
        out.append(tlv.encode(1044, agent.paying_operation))
    out += [tlv.encode(1073, p) for p in agent.paying_phones]
    out += [tlv.encode(1074, p) for p in agent.operator_phones]
    for tag, value in ((1026, agent.transfer_operator_name), (1005, agent.transfer_operator_address),
                       (1016, agent.transfer_operator_inn)):
        if value:
            out.append(tlv.encode(tag, value))
    out += [tlv.encode(1075, p) for p in agent.transfer_operator_phones]
    return out


def _agent_from(kind: AgentType, block: tlv.Tlv | None) -> AgentInfo:
    children = block.children() if block else []

    def texts(tag: int) -> tuple[str, ...]:
        return tuple(c.as_text() for c in children if c.tag == tag)

    def text(tag: int) -> str | None:
        found = texts(tag)
        return found[-1] if found else None

    return AgentInfo(agent_type=kind, paying_operation=text(1044), paying_phones=texts(1073),
                     operator_phones=texts(1074), transfer_operator_name=text(1026),
                     transfer_operator_address=text(1005), transfer_operator_inn=text(1016),
                     transfer_operator_phones=texts(1075))


def _supplier_block(supplier: Supplier) -> list[tlv.Tlv]:
    out = [tlv.encode(1171, p) for p in supplier.phones]
    if supplier.name:
        out.append(tlv.encode(1225, supplier.name))
    if supplier.inn:
        out.append(tlv.encode(1226, supplier.inn))
    return out


def _supplier_from(block: tlv.Tlv) -> Supplier:
    children = block.children()
    name = next((c.as_text() for c in children if c.tag == 1225), None)
    inn = next((c.as_text() for c in children if c.tag == 1226), None)
    return Supplier(name=name, inn=inn, phones=tuple(c.as_text() for c in children if c.tag == 1171))


def _merge_buyer(buyer: Buyer | None, **fields: str) -> Buyer:
    return replace(buyer, **fields) if buyer is not None else Buyer(**fields)

