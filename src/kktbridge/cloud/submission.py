"""One way into the queue: a receipt request from either API → the checked packet → a receipt ready to commit.

The vendor's form (`intake`) and the JSON API (`api`) read their own fields and then call `prepare`, so a packet
is judged by one set of rules wherever it came from: the driver's own decoder and validator (`bitapi`), so a
receipt the till would refuse is refused here with the same field paths (prefixed by the field that carried the
packet: `BIT_DATA[1].data.purchases[0].price_1079`, `commands[0]…`), with the receipt defaults and strictness
the register's driver last reported (its config's `vat`, `taxation`, …: what the till fills in is not refused
here); register commands only, since a card payment needs a person at the terminal; and a token that names a
register of this account. What makes two requests "the same" (for de-duplication) is decided here too, in
`request_hash`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..bitapi import JsonObject, ReceiptDefaults, command_type, decode_commands, dumps, parse_headers
from ..bitapi.packet import fingerprint
from ..fiscal import FieldError
from .errors import bad_request
from .store import AccountRecord, DeviceRecord, NewReceipt

__all__ = ["MAX_URL", "FieldNames", "ReceiptRequest", "check_token_and_order", "check_url", "prepare"]

MAX_URL = 1024
DIALOG = "dialog"  # the vendor's payment dialog: a cashier stands at the terminal, so a card payment is allowed
RECEIPT = "kktReceiptFiscalization"


@dataclass(frozen=True)
class FieldNames:
    """How an API names the fields that `prepare` reports on."""

    packet: str  # the field that carries the commands: BIT_DATA, BIT_JSON, commands
    token: str  # BIT_KKT_TOKEN, kkt_token
    order: str  # BIT_ORDER_ID, BIT_TRANSACTION_ID, order_id


@dataclass(frozen=True)
class ReceiptRequest:
    account: AccountRecord
    device: DeviceRecord | None  # the account's device with the request's token, if there is one
    order_id: str
    token: str
    commands: Any  # the parsed JSON: a command list, or (API 1.0/1.1) one receipt object
    source: str  # form | api | dialog
    names: FieldNames
    idempotency_key: str | None = None
    callback_success: str | None = None
    callback_failed: str | None = None
    prog_url: str | None = None
    webhook_url: str | None = None  # the JSON API's: the receipt view is POSTed there when it ends
    packet_text: str | None = None  # the command list's JSON text as sent, kept byte for byte when it is a list


def check_token_and_order(token: str | None, order_id: str | None, names: FieldNames) -> tuple[str | None, str | None,
                                                                                                list[FieldError]]:
    """The token (lower-case) and order id, read by the driver's own header rules; errors name the API's fields."""
    errors: list[FieldError] = []
    if not token:
        errors.append(FieldError(names.token, "required", "не указан токен кассы", "the register's token is missing"))
    if not order_id:
        errors.append(FieldError(names.order, "required", "не указан номер заказа", "the order id is missing"))
    headers, problems = parse_headers({"BIT_KKT_TOKEN": token or "", "BIT_ORDER_ID": order_id or ""})
    rename = {"headers.BIT_KKT_TOKEN": names.token, "headers.BIT_ORDER_ID": names.order}
    for problem in problems:
        errors.append(FieldError(rename.get(problem.path, problem.path), problem.code,
                                 problem.ru.replace("BIT_KKT_TOKEN", names.token).replace("BIT_ORDER_ID", names.order),
                                 problem.en.replace("BIT_KKT_TOKEN", names.token).replace("BIT_ORDER_ID", names.order)))
    if order_id and any(ord(ch) < 32 or ord(ch) == 127 for ch in order_id):
        errors.append(FieldError(names.order, "format", "номер заказа содержит управляющие символы",
                                 "the order id holds control characters"))
    return headers.kkt_token, headers.order_id, errors


def check_url(path: str, value: str) -> FieldError | None:
    """A callback or program address: http(s), a host, at most MAX_URL characters. It is recorded, not fetched."""
    if len(value) > MAX_URL:
        return FieldError(path, "too_long", f"адрес длиннее {MAX_URL} символов", f"the URL is longer than {MAX_URL}")
    try:
        parts = urlsplit(value)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        ok = False
    if not ok or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return FieldError(path, "url", "нужен адрес http:// или https:// с именем хоста",
                          "an http:// or https:// URL with a host name is expected")
    return None


def prepare(request: ReceiptRequest, *, now: datetime, expire_after: timedelta) -> NewReceipt:
    """The receipt to queue, or CloudError (400 `bad_packet`) listing every problem with its path."""
    names = request.names
    value, single = request.commands, False
    if isinstance(value, JsonObject) and "type" not in value:  # API 1.0/1.1: BIT_JSON is one receipt object
        value, single = [JsonObject([("name", "1"), ("type", RECEIPT), ("data", value)])], True

    def where(path: str) -> str:
        if single:
            path = path.removeprefix("[0].data").removeprefix("[0]")
            return names.packet + (path if path[:1] in (".", "[", "") else "." + path)
        return names.packet if path == "body" else names.packet + (path if path.startswith("[") else "." + path)

    reported = (request.device.status or {}) if request.device is not None else {}
    _, problems = decode_commands(value, defaults=ReceiptDefaults.from_json(reported.get("defaults")),
                                  strict=reported.get("strict") is True)
    errors = [FieldError(where(p.path), p.code, p.ru, p.en) for p in problems]
    if isinstance(value, list):
        for index, element in enumerate(value):
            raw_type = element.get("type") if isinstance(element, dict) else None
            kind = command_type(raw_type) if isinstance(raw_type, str) else None
            if kind is not None and kind.device == "bnk" and request.source != DIALOG:
                errors.append(FieldError(
                    where(f"[{index}].type"), "card_in_cloud",
                    f"команда «{kind.wire}» требует человека у банковского терминала, а чек из облака пробивается без "
                    "него: отправьте в облако только команды кассы (оплата уже принята на сайте), а оплату картой "
                    "проводите через локальный драйвер",
                    f"'{kind.wire}' needs a person at the bank terminal, and a cloud receipt is printed with nobody "
                    "there: send the cloud register commands only (the customer paid on the site) and take card "
                    "payments through the local driver"))
    if request.device is None:
        errors.append(FieldError(names.token, "unknown_token",
                                 f"в аккаунте {request.account.id} нет кассы с таким токеном",
                                 f"account {request.account.id} has no register with this token"))
    elif request.device.role != "kkt":
        errors.append(FieldError(names.token, "not_a_register",
                                 "этот токен принадлежит банковскому терминалу, а не кассе",
                                 "this token belongs to a bank terminal, not to a register"))
    if errors:
        raise bad_request(errors, code="bad_packet", ru="пакет команд отклонён", en="command packet refused")
    assert request.device is not None
    packet = request.packet_text if request.packet_text is not None and not single else dumps(value)
    return NewReceipt(
        uuid=uuid.uuid4(), account_id=request.account.id, driver_id=request.device.driver_id,
        device_id=request.device.id, device_name=request.device.name, order_id=request.order_id,
        idempotency_key=request.idempotency_key, source=request.source, request_hash=request_hash(request, value),
        packet=packet, callback_success=request.callback_success, callback_failed=request.callback_failed,
        prog_url=request.prog_url, created_at=now, expires_at=now + expire_after, webhook_url=request.webhook_url)


def request_hash(request: ReceiptRequest, commands: Any) -> str:
    """Two requests are the same when they ask for the same commands on the same register under the same order id,
    with the same callbacks, however their JSON was spelled or encoded."""
    # The webhook stands in both places, as the API's callback_url did before webhook_url had its own column, so a
    # request stored then still matches itself.
    what = {"order_id": request.order_id, "commands": commands,
            "callbacks": [request.callback_success or request.webhook_url or "",
                          request.callback_failed or request.webhook_url or ""]}
    return fingerprint(what, (request.token,))
