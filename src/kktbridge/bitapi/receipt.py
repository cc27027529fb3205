"""The receipt of `kktReceiptFiscalization.data` (spec/bit-api.md §6.3) read into a `fiscal.Receipt`.

Every tolerance of §10 lives here: items as `purchases`, `"1059": [...]` or `"<x>_1059": {...}` (in the order
sent, all shapes together); payments inside `payments` or beside the items; `printDoc` and `electronically`;
the buyer as `sendToEmail_1008` or inside `clientInfo`; 1260/1261 as a list or one object; `amount_1043`
of 0 meaning "not sent" (the demos send 0 for every line). Defaults that the caller may leave out come from
the device (`ReceiptDefaults`), never from a guess here. What the vendor's own clients send short or inconsistent
is made whole by compat.py (an item's price from its line total, a cashier "INN" that is a name), unless strict.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fiscal import (
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
    Payments,
    Receipt,
    ReceiptType,
    Supplier,
    TaxationSystem,
    VatRate,
)
from ..fiscal.validation import Path
from .compat import cashier_inn, price_from_total
from .jsontext import JsonObject
from .tags import Node, tag_of

__all__ = ["ReceiptDefaults", "read_cashier", "read_receipt"]


@dataclass(frozen=True, slots=True)
class ReceiptDefaults:
    """What a device fills in when the caller leaves it out (set per device in the driver's config)."""

    taxation: TaxationSystem | None = None
    vat: VatRate | None = None
    payment_method: PaymentMethod = PaymentMethod.FULL_PAYMENT
    payment_object: PaymentObject = PaymentObject.COMMODITY
    measure: Measure = Measure.PIECE
    time_zone: int | None = None

    def to_json(self) -> dict[str, int | None]:
        """As a driver reports them to the cloud (which reads packets for that device with them)."""
        return {"taxation": self.taxation.index if self.taxation else None, "vat": int(self.vat) if self.vat else None,
                "paymentMethod": int(self.payment_method), "paymentObject": int(self.payment_object),
                "measure": int(self.measure), "timeZone": self.time_zone}

    @classmethod
    def from_json(cls, data: object) -> "ReceiptDefaults":
        """What a driver reported; a value that is not one of the codes is left out (the plain default stands)."""
        if not isinstance(data, dict):
            return cls()

        def code(key: str, kind, default):
            value = data.get(key)
            try:
                return kind(value) if isinstance(value, int) and not isinstance(value, bool) else default
            except ValueError:
                return default

        def zone(value: int) -> int:
            if not 1 <= value <= 11:  # tag 1011's zones
                raise ValueError(value)
            return value

        return cls(taxation=code("taxation", TaxationSystem.from_index, None), vat=code("vat", VatRate, None),
                   payment_method=code("paymentMethod", PaymentMethod, PaymentMethod.FULL_PAYMENT),
                   payment_object=code("paymentObject", PaymentObject, PaymentObject.COMMODITY),
                   measure=code("measure", Measure, Measure.PIECE), time_zone=code("timeZone", zone, None))


_TAXATION_KNOWN = "0–5 (ОСН, УСН доход, УСН Д−Р, ЕНВД, ЕСХН, ПСН) или маска 8, 16, 32"


def read_receipt(node: Node, defaults: ReceiptDefaults) -> tuple[Receipt, list[int], bool]:
    """(receipt, indices of the items read, complete).

    Fields that cannot be read are errors in node.ctx. When an item or a payment could not be read,
    `complete` is False: the receipt then holds only the items that were read, so their own checks still
    run and name the right lines (through the indices), while the totals, which would mislead, are not
    checked.
    """
    receipt_type = _receipt_type(node)
    taxation = node.code(1055, "taxation", TaxationSystem, convert=TaxationSystem.from_client_value,
                         known=_TAXATION_KNOWN)
    errors_before = len(node.ctx.errors)
    items, good = _items(node, defaults)
    payments = _payments(node)
    complete = len(node.ctx.errors) == errors_before
    cashier = read_cashier(node)
    buyer = _buyer(node)
    electronically = _electronically(node)
    time_zone = node.integer(1011, "time_zone")
    industry = _industry(node, 1261, ("industry",), named=("foiv",))
    additional = node.text(1192, "additional_info")
    agent, agent_supplier = _agent(node, ("agent",))
    supplier = _supplier(node, ("supplier",)) or agent_supplier
    internet = node.integer(1125, "internet")
    if payments is None:
        payments = Payments()
    receipt = Receipt(
        type=receipt_type or ReceiptType.SALE,
        items=tuple(items),
        payments=payments,
        taxation=taxation or defaults.taxation,
        cashier=cashier,
        buyer=buyer,
        electronically=electronically,
        time_zone=time_zone if time_zone is not None else defaults.time_zone,
        industry=industry,
        additional_info=additional,
        agent=agent,
        supplier=supplier,
        internet=bool(internet),
    )
    return receipt, good, complete


def _receipt_type(node: Node) -> ReceiptType | None:
    value = node.integer(1054, "type", required="тип чека (receiptType_1054)")
    if value is None:
        return None
    if value == 0:  # the API 1.1 example sends 0 for a sale, as KKMServer's TypeCheck and Mercury's checkType do
        return ReceiptType.SALE
    try:
        return ReceiptType(value)
    except ValueError:
        wire, _ = node.locate(1054, "type")
        node.ctx.error(wire, "code", f"неизвестный тип чека {value}: 1 приход, 2 возврат прихода, 3 расход, "
                       "4 возврат расхода", f"unknown receipt type {value}: 1 sale, 2 sale return, 3 purchase, "
                       "4 purchase return")
        return None


def _items(node: Node, defaults: ReceiptDefaults) -> tuple[list[Item], list[int]]:
    """Every item in the order sent, from all three container shapes; the logical indices of those read."""
    containers = [(key, value) for key, value in node.obj.pairs if key.lower() == "purchases" or tag_of(key) == 1059]
    node.read.update(key for key, _ in containers)
    node.ctx.keys[(*node.logical, "items")] = node.key_path(containers[0][0] if containers else "purchases")
    items: list[Item] = []
    good: list[int] = []
    index = 0
    for key, value in containers:
        if isinstance(value, list):
            elements = [(f"{node.key_path(key)}[{i}]", element) for i, element in enumerate(value)]
        elif key.lower() == "purchases":
            node.ctx.error(node.key_path(key), "type", "ожидается список товаров [...]",
                           "a list of items [...] is expected")
            continue
        else:  # "x_1059": {...} and "1059": {...} carry one item each
            elements = [(node.key_path(key), value)]
        for wire, element in elements:
            logical = ("items", index)
            index += 1
            if not isinstance(element, JsonObject):
                node.ctx.error(wire, "type", "позиция чека должна быть объектом {…}", "an item must be an object {…}")
                continue
            item = _item(Node(element, wire, logical, node.ctx), defaults)
            if item is not None:
                items.append(item)
                good.append(logical[1])
    return items, good


def _item(node: Node, defaults: ReceiptDefaults) -> Item | None:
    errors_before = len(node.ctx.errors)
    name = node.text(1030, "name", required="наименование (productName_1030)")
    quantity = node.quantity(1023, "quantity", required="количество (qty_1023)")
    sent_price = node.find(1079)
    if node.ctx.strict or (sent_price is not None and sent_price[1] != ""):
        price = node.money(1079, "price", required="цена (price_1079)")
        amount = node.money(1043, "amount")
    else:  # no price: the WooCommerce shape sends the line total alone
        price, amount = price_from_total(node, quantity)
    vat = node.code(1199, "vat", VatRate)
    method = node.code(1214, "payment_method", PaymentMethod)
    subject = node.code(1212, "payment_object", PaymentObject)
    measure = node.code(2108, "measure", Measure)
    additional = node.text(1191, "additional_info")
    country = node.text(1230, "country_code")
    customs = node.text(1231, "customs_declaration")
    excise = node.money(1229, "excise")
    nomenclature = _hex(node, 1162, "nomenclature_code")
    marking = _marking(node)
    industry = _industry(node, 1260, (*node.logical, "industry"))
    if not industry:
        industry = _industry(node, 1261, (*node.logical, "industry"))
    agent, agent_supplier = _agent(node, (*node.logical, "agent"))
    supplier = _supplier(node, (*node.logical, "supplier")) or agent_supplier
    if len(node.ctx.errors) != errors_before or name is None or price is None or quantity is None:
        return None
    if country is not None and country.isdigit() and len(country) < 3:
        country = country.zfill(3)
    return Item(
        name=name,
        price=price,
        quantity=quantity,
        amount=amount if amount else -1,  # 0 or absent: the demos send 0 and mean "compute it"
        vat=vat if vat is not None else defaults.vat,
        payment_method=method if method is not None else defaults.payment_method,
        payment_object=subject if subject is not None else defaults.payment_object,
        measure=measure if measure is not None else defaults.measure,
        additional_info=additional,
        marking=marking,
        industry=industry,
        country_code=country,
        customs_declaration=customs,
        excise=excise,
        nomenclature_code=nomenclature,
        agent=agent,
        supplier=supplier,
    )


def _payments(node: Node) -> Payments | None:
    """Payments from the `payments` object, or from tags beside the items."""
    hit = node.named("payments")
    source = node
    if hit is not None:
        child = node.child(hit[0], hit[1], (*node.logical, "payments"))
        if child is None:
            return None
        source = child
    else:
        node.ctx.keys[(*node.logical, "payments")] = node.key_path("payments")
    values = {
        "cash": source.money(1031, "cash"),
        "electronic": source.money(1081, "electronic"),
        "prepayment": source.money(1215, "prepayment"),
        "credit": source.money(1216, "credit"),
        "other": source.money(1217, "other"),
    }
    if source is not node:  # keep the logical names under ("payments", …) whichever object held them
        for name in values:
            node.ctx.keys[(*node.logical, "payments", name)] = node.ctx.keys[(*source.logical, name)]
    return Payments(**{name: value or 0 for name, value in values.items()})


def read_cashier(node: Node) -> Cashier | None:
    """Cashier 1021 and 1203 of any command's data; an empty INN ("" in every demo) means none."""
    node.ctx.keys[(*node.logical, "cashier")] = node.path
    name = node.text(1021, None)
    inn = cashier_inn(node)
    node.ctx.keys[(*node.logical, "cashier", "name")] = node.locate(1021, None)[0]
    node.ctx.keys[(*node.logical, "cashier", "inn")] = node.locate(1203, None)[0]
    if name is None and inn is None:
        return None
    return Cashier(name=name or "", inn=inn)


def _buyer(node: Node) -> Buyer | None:
    block = None
    hit = node.named("clientInfo", "client", "buyer") or node.find(1256)
    if hit is not None:
        block = node.child(hit[0], hit[1], (*node.logical, "buyer"))
    sources = [n for n in (block, node) if n is not None]

    def first(tag: int, field: str, digits: bool = False) -> str | None:
        for source in sources:
            if source.find(tag) is not None:
                value = source.text(tag, None, digits=digits)
                node.ctx.keys[(*node.logical, "buyer", field)] = source.locate(tag, None)[0]
                return value
        node.ctx.keys[(*node.logical, "buyer", field)] = sources[0].locate(tag, None)[0]
        return None

    buyer = Buyer(
        contact=first(1008, "contact"),
        name=first(1227, "name"),
        inn=first(1228, "inn", digits=True),
        birth_date=first(1243, "birth_date"),
        citizenship=first(1244, "citizenship"),
        document_code=first(1245, "document_code"),
        document_data=first(1246, "document_data"),
        address=first(1254, "address"),
    )
    return buyer if (buyer.contact or buyer.has_details()) else None


def _electronically(node: Node) -> bool:
    """`printDoc: true` prints; `electronically: true` does not. Both, disagreeing, is an error."""
    printed = node.flag("printDoc")
    electronic = node.flag("electronically")
    if printed and electronic and printed[1] == electronic[1]:
        node.ctx.error(node.key_path(electronic[0]), "conflict",
                       "printDoc и electronically противоречат друг другу",
                       "printDoc and electronically contradict each other")
    if electronic is not None:
        return electronic[1]
    if printed is not None:
        return not printed[1]
    return False


def _industry(node: Node, tag: int, logical: Path, named: tuple[str, ...] = ()) -> tuple[IndustryRequisite, ...]:
    hit = node.find(tag) or (node.named(*named) if named else None)
    if hit is None:
        return ()
    out = []
    for block in node.objects(hit[0], hit[1], logical):
        foiv = block.text(1262, "foiv_id", required="идентификатор ФОИВ (1262)")
        when = block.text(1263, "document_date", required="дата документа основания (1263)")
        number = block.text(1264, "document_number", required="номер документа основания (1264)")
        value = block.text(1265, "value", required="значение отраслевого реквизита (1265)")
        if foiv and when and number and value:
            out.append(IndustryRequisite(foiv.zfill(3) if foiv.isdigit() else foiv, when, number, value))
    return tuple(out)


def _marking(node: Node) -> MarkingCode | None:
    sub = node.named("markirovka", "marking")
    source = node
    if sub is not None:
        child = node.child(sub[0], sub[1], (*node.logical, "marking"))
        if child is not None:
            source = child
    if source.find(2000) is None:
        return None
    code = source.binary(2000, None)
    node.ctx.keys[(*node.logical, "marking", "code")] = source.locate(2000, None)[0]
    code_type = source.integer(2100, None)
    mode = source.integer(2102, None)
    status = source.integer(2003, None)
    fraction = source.text(1291, None)
    if code is None:
        return None
    return MarkingCode(code=code, code_type=code_type, processing_mode=mode or 0, planned_status=status,
                       fraction=fraction)


def _agent(node: Node, logical: Path) -> tuple[AgentInfo | None, Supplier | None]:
    hit = node.named("agent") or node.find(1223)
    agent_type = node.integer(1222, None) or node.integer(1057, None)
    block = node.child(hit[0], hit[1], logical) if hit is not None else None
    if block is not None:
        agent_type = block.integer(1222, "agent_type") or block.integer(1057, "agent_type") or agent_type
    else:
        node.ctx.keys[(*logical, "agent_type")] = node.locate(1222, None)[0]
    if agent_type is None:
        if block is not None:
            node.ctx.error(block.path, "required", "не указан признак агента (agentCode_1222)",
                           "the agent type (agentCode_1222) is missing")
        return None, None
    source = block or node
    try:
        kind = AgentType(agent_type)
    except ValueError:
        node.ctx.error(node.ctx.where((*logical, "agent_type")), "code", "неверный признак агента (1222)",
                       "invalid agent type (1222)")
        return None, None
    agent = AgentInfo(
        agent_type=kind,
        paying_operation=source.text(1044, "paying_operation"),
        paying_phones=source.texts(1073, "paying_phones"),
        operator_phones=source.texts(1074, "operator_phones"),
        transfer_operator_name=source.text(1026, "transfer_operator_name"),
        transfer_operator_address=source.text(1005, "transfer_operator_address"),
        transfer_operator_inn=source.text(1016, "transfer_operator_inn", digits=True),
        transfer_operator_phones=source.texts(1075, "transfer_operator_phones"),
    )
    supplier = None
    if block is not None and any(block.find(t) for t in (1171, 1225, 1226)):
        supplier = Supplier(
            name=block.text(1225, None),
            inn=block.text(1226, None, digits=True),
            phones=block.texts(1171, None),
        )
        supplier_logical = (*logical[:-1], "supplier")
        node.ctx.keys[(*supplier_logical, "inn")] = block.locate(1226, None)[0]
    return agent, supplier


def _supplier(node: Node, logical: Path) -> Supplier | None:
    hit = node.find(1224) or node.named("supplier")
    source = node.child(hit[0], hit[1], logical) if hit is not None else None
    if source is None:
        if not any(node.find(t) for t in (1225, 1226)):
            return None
        source = node
        node.ctx.keys[logical] = node.path
    supplier = Supplier(
        name=source.text(1225, None),
        inn=source.text(1226, None, digits=True),
        phones=source.texts(1171, None) if source is not node else (),
    )
    node.ctx.keys[(*logical, "inn")] = source.locate(1226, None)[0]
    return supplier


def _hex(node: Node, tag: int, field: str) -> bytes | None:
    text = node.text(tag, field)
    if text is None:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        node.ctx.error(node.ctx.keys[(*node.logical, field)], "format", "ожидается шестнадцатеричная строка",
                       "a hex string is expected")
        return None
