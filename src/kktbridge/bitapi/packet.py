"""A whole BIT request, headers and body, decoded into commands ready to run, or refused with every reason.

Nothing runs until the whole packet is known to be good: a packet that pays by card and then fiscalizes a
receipt with a wrong sum must be refused before the card is charged. So every command is decoded and every
receipt validated first, and all problems are reported together in one PacketError. What the vendor's own
clients send short or inconsistent is adjusted here, before validation and before anything runs (compat.py), unless
`strict`; each adjustment travels on its command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from ..fiscal import (
    DEFAULT_LIMITS,
    BridgeError,
    FieldError,
    FormatError,
    Limits,
    validate_cash_operation,
    validate_cashier,
    validate_receipt,
)
from ..fiscal.validation import Path
from .body import decode_body
from .compat import CardMoney, complete_payments, register_line_totals
from .commands import (
    CardOperationCommand,
    CashCommand,
    CheckMarkingCommand,
    Command,
    CommandType,
    ReceiptCommand,
    ServiceCommand,
    card_fields,
    cash_operation,
    command_type,
    marking_code,
    read_show_mode,
)
from .headers import RequestHeaders, parse_headers
from .jsontext import Bounds, JsonObject, JsonRefused, loads
from .receipt import ReceiptDefaults, read_cashier, read_receipt
from .tags import Context, Node

__all__ = ["MAX_COMMANDS", "MAX_PROBLEMS", "Packet", "PacketError", "decode_commands", "decode_request"]

MAX_COMMANDS = 64


MAX_PROBLEMS = 100  # listed in one answer; a packet with more gets a last entry counting the rest


class PacketError(BridgeError):
    """The packet cannot run as sent; `fields` lists every problem with the caller's key path (the first
    MAX_PROBLEMS of them, then one `too_many_errors` entry), and the texts name each problem once."""

    def __init__(self, fields: list[FieldError]) -> None:
        listed = list(fields[:MAX_PROBLEMS])
        if len(fields) > MAX_PROBLEMS:
            more = len(fields) - MAX_PROBLEMS
            listed.append(FieldError("body", "too_many_errors", f"и ещё {more} (не показаны)", f"and {more} more "
                                     "(not listed)"))
        super().__init__(code="bad_packet", ru="пакет команд отклонён", en="command packet refused", retryable=False,
                         fields=tuple(listed))


@dataclass(frozen=True, slots=True)
class Packet:
    headers: RequestHeaders
    commands: tuple[Command, ...]
    fingerprint: str  # sha256 of the commands and tokens: equal packets, equal fingerprints
    unread: tuple[str, ...] = ()  # wire paths of the keys no reader looked at (`getVatRate`): ignored

    @property
    def order_id(self) -> str | None:
        return self.headers.order_id

    def device_kinds(self) -> set[str]:
        return {command.device for command in self.commands}


def decode_request(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    *,
    defaults: ReceiptDefaults = ReceiptDefaults(),
    limits: Limits = DEFAULT_LIMITS,
    strict: bool = False,
    today: date | None = None,
) -> Packet:
    """Headers and body of a POST to the driver → Packet, or PacketError naming every bad field.

    `strict`: refuse what the vendor's clients send short or inconsistent instead of adjusting it (compat.py)."""
    parsed_headers, errors = parse_headers(headers)
    try:
        value = loads(decode_body(body), Bounds.for_items(limits.max_items))
    except JsonRefused as exc:
        raise PacketError([*errors, *exc.fields]) from None
    except FormatError as exc:
        raise PacketError([*errors, exc.at("body")]) from None
    unread: list[str] = []
    commands, command_errors = decode_commands(value, defaults=defaults, limits=limits, strict=strict, today=today,
                                               unread=unread)
    errors.extend(command_errors)
    if errors:
        raise PacketError(errors)
    return Packet(parsed_headers, tuple(commands), fingerprint(value, parsed_headers.tokens), tuple(unread))


def decode_commands(
    value: Any,
    *,
    defaults: ReceiptDefaults = ReceiptDefaults(),
    limits: Limits = DEFAULT_LIMITS,
    strict: bool = False,
    today: date | None = None,
    unread: list[str] | None = None,
) -> tuple[list[Command], list[FieldError]]:
    """The parsed JSON of a packet (a list of commands; a single command object is taken as a list of one).

    `unread`, when given, receives the wire paths of the keys that no reader looked at."""
    if isinstance(value, JsonObject) and "type" in value:
        value = [value]
    if not isinstance(value, list):
        return [], [FieldError("body", "type", "пакет должен быть JSON-массивом команд [{name, type, data}, …]",
                               "the packet must be a JSON array of commands [{name, type, data}, …]")]
    if not value:
        return [], [FieldError("body", "required", "пакет не содержит ни одной команды",
                               "the packet holds no commands")]
    if len(value) > MAX_COMMANDS:
        return [], [FieldError("body", "too_many", f"больше {MAX_COMMANDS} команд в одном пакете",
                               f"more than {MAX_COMMANDS} commands in one packet")]
    on_date = today or date.today()
    commands: list[Command] = []
    errors: list[FieldError] = []
    card = CardMoney()
    for index, element in enumerate(value):
        ctx = Context(strict=strict)
        command = _command(index, element, ctx, defaults, limits, on_date, card)
        errors.extend(ctx.errors)
        if unread is not None:
            unread.extend(ctx.unread())
        if command is not None:
            if ctx.warnings:
                command = replace(command, warnings=tuple(ctx.warnings))
            card.note(command)
            commands.append(command)
    return commands, errors


def _command(index: int, element: Any, ctx: Context, defaults: ReceiptDefaults, limits: Limits,
             on_date: date, card: CardMoney) -> Command | None:
    path = f"[{index}]"
    if not isinstance(element, JsonObject):
        ctx.error(path, "type", "команда должна быть объектом {name, type, data}",
                  "a command must be an object {name, type, data}")
        return None
    root = Node(element, path, ("command",), ctx, track=False)
    raw_type = element.get("type")
    kind = command_type(raw_type) if isinstance(raw_type, str) else None
    if kind is None:
        known = ", ".join(member.wire for member in CommandType)
        if raw_type is None:
            ctx.error(f"{path}.type", "required", "не указан тип команды (type)", "the command type (type) is missing")
        else:
            ctx.error(f"{path}.type", "unknown_command", f"неизвестный тип команды «{raw_type}»; известны: {known}",
                      f"unknown command type '{raw_type}'; known: {known}")
        return None
    raw_name = element.get("name")
    name = str(raw_name) if isinstance(raw_name, (str, int)) and not isinstance(raw_name, bool) else ""
    name = name or f"{index + 1}. {kind.wire}"
    show_mode = read_show_mode(root, element, path)

    data: Node | None = None
    raw_data = element.get("data")
    if raw_data is not None:
        if isinstance(raw_data, JsonObject):
            data = Node(raw_data, f"{path}.data", (), ctx)
        elif not (isinstance(raw_data, list) and not raw_data):  # PHP's json_encode writes an empty object as []
            ctx.error(f"{path}.data", "type", "data должна быть объектом {…}", "data must be an object {…}")
            return None
    common = {"index": index, "name": name, "type": kind, "show_mode": show_mode}

    if kind is CommandType.RECEIPT:
        if data is None:
            ctx.error(f"{path}.data", "required", "нет данных чека (data)", "the receipt data (data) is missing")
            return None
        receipt, good, complete = read_receipt(data, defaults)

        def where(logical: Path) -> str:
            return ctx.where(_remap(logical, good))

        if complete and not ctx.strict:  # the totals are known: the register's line totals, then the payments
            if limits.line_total_by_register:
                receipt, notes = register_line_totals(receipt, where)
                ctx.warnings.extend(notes)
            receipt, note = complete_payments(receipt, card.unshown(receipt.type), where)
            if note is not None:
                ctx.warn(note)
        problems = validate_receipt(receipt, limits=limits, on_date=on_date, check_totals=complete, where=where)
        ctx.errors.extend(problems)
        return ReceiptCommand(**common, receipt=receipt) if not ctx.errors else None

    cashier = read_cashier(data) if data is not None else None
    if cashier is not None:
        ctx.errors.extend(validate_cashier(cashier, limits=limits, where=ctx.where))

    if kind in (CommandType.CASH_IN, CommandType.CASH_OUT):
        operation = cash_operation(kind, element, data, path, root, cashier)
        if operation is None:
            return None
        ctx.errors.extend(validate_cash_operation(operation, limits=limits, where=ctx.where))
        return CashCommand(**common, operation=operation) if not ctx.errors else None
    if kind is CommandType.CHECK_MARKING:
        code = marking_code(data, path, root)
        return CheckMarkingCommand(**common, code=code) if code is not None and not ctx.errors else None
    if kind.device == "bnk":
        amount, rrn, ok = card_fields(kind, data, path, root)
        return CardOperationCommand(**common, amount=amount, rrn=rrn) if ok and not ctx.errors else None
    return ServiceCommand(**common, cashier=cashier) if not ctx.errors else None


def _remap(logical: Path, good: list[int]) -> Path:
    """Item k of a partly read receipt is line good[k] of what the caller sent."""
    if len(logical) >= 2 and logical[0] == "items" and isinstance(logical[1], int) and logical[1] < len(good):
        return ("items", good[logical[1]], *logical[2:])
    return logical


def fingerprint(value: Any, tokens: tuple[str, ...]) -> str:
    """A digest of what a packet asks for: the same commands to the same devices give the same digest. A command's
    caption (`name`) is left out: a client that renames "Оплата" to "Оплата картой" on a retry asks for the same
    thing, and must not be charged twice."""
    digest = hashlib.sha256()
    digest.update(",".join(sorted(tokens)).encode())
    digest.update(b"\x00")
    if isinstance(value, list):
        value = [{k: v for k, v in c.items() if k != "name"} if isinstance(c, dict) else c for c in value]
    elif isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "name"}
    _canonical(value, digest)
    return digest.hexdigest()


def _canonical(value: Any, digest: "hashlib._Hash") -> None:
    if isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value):
            digest.update(key.encode("utf-8") + b":")
            _canonical(value[key], digest)
            digest.update(b",")
        digest.update(b"}")
    elif isinstance(value, list):
        digest.update(b"[")
        for element in value:
            _canonical(element, digest)
            digest.update(b",")
        digest.update(b"]")
    elif isinstance(value, Decimal):
        digest.update(b"n" + format(value.normalize(), "f").encode())
    elif isinstance(value, bool) or value is None:
        digest.update(repr(value).encode())
    elif isinstance(value, int):
        digest.update(b"n" + str(value).encode())
    else:
        digest.update(b"s" + str(value).encode("utf-8"))
