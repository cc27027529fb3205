"""The JSON API v1 for new integrations: receipts (submit, get by id or order id, list), courier receipts (a
signed-in user's, by device id), the account, its drivers and devices, and sessions. The OpenAPI document
(`openapi.py`) describes exactly these routes.

Rules that hold for every handler here: the account comes from `auth` and scopes every query, so another
account's ids find nothing (404, the same as an id that never existed); every parameter is checked and bounded
before it reaches the store, and a bad one is a 400 naming it; a body is JSON with only the keys documented.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ..bitapi import JsonObject, loads
from ..fiscal import FieldError, FormatError
from .auth import SESSION_COOKIE, Authenticator, Principal
from .callbacks import callback_view
from .config import CloudConfig
from .credentials import digest
from .errors import CloudError, bad_request, conflict, forbidden, not_found, rate_limited
from .http import json_response
from .ratelimit import Limiter
from .ssrf import submit_problem
from .states import State
from .store import MAX_ID, NewReceipt, SessionRecord, Store, utcnow
from .submission import FieldNames, ReceiptRequest, check_token_and_order, check_url, prepare
from .views import account_view, device_view, driver_view, receipt_links, receipt_view, timestamp

__all__ = ["COURIER_KEYS", "CURSOR_DIGITS", "MAX_IDEMPOTENCY_KEY", "MAX_PAGE", "MAX_WAIT", "JsonApi"]

log = logging.getLogger("kktbridge.cloud.api")

MAX_PAGE = 200
MAX_WAIT = 30  # seconds a GET may wait for a receipt to finish (?wait=)
MAX_IDEMPOTENCY_KEY = 255
CURSOR_DIGITS = 19
SUBMIT_KEYS = {"order_id", "kkt_token", "commands", "webhook_url", "callback_url"}  # callback_url: webhook_url's
# older name, still taken
RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")
API_NAMES = FieldNames(packet="commands", token="kkt_token", order="order_id")
COURIER_KEYS = {"device_id", "order_id", "commands"}
COURIER_NAMES = FieldNames(packet="commands", token="device_id", order="order_id")


class JsonApi:
    def __init__(self, store: Store, config: CloudConfig, auth: Authenticator, accounts: Limiter) -> None:
        self.store = store
        self.config = config
        self.auth = auth
        self.accounts = accounts

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.post(f"{prefix}/receipts", self.submit),
            web.post(f"{prefix}/courier/receipts", self.courier),
            web.get(f"{prefix}/receipts", self.list_receipts),
            web.get(f"{prefix}/receipts/by-order/{{order_id}}", self.receipt_by_order),
            web.get(f"{prefix}/receipts/{{receipt_id}}", self.receipt),
            web.get(f"{prefix}/receipts/{{receipt_id}}/callbacks", self.callbacks),
            web.post(f"{prefix}/receipts/{{receipt_id}}/callbacks/resend", self.resend_callbacks),
            web.get(f"{prefix}/account", self.account),
            web.get(f"{prefix}/drivers", self.drivers),
            web.get(f"{prefix}/drivers/{{driver_id}}", self.driver),
            web.get(f"{prefix}/devices", self.devices),
            web.get(f"{prefix}/devices/{{device_id}}", self.device),
            web.post(f"{prefix}/session", self.sign_in),
            web.get(f"{prefix}/session", self.session),
            web.delete(f"{prefix}/session", self.sign_out),
        ]

    async def _principal(self, request: web.Request) -> Principal:
        principal = await self.auth.principal(request)
        wait = self.accounts.hit(f"account:{principal.account_id}")
        if wait is not None:
            raise rate_limited(wait)
        return principal

    # --- receipts --------------------------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        key = request.headers.get("Idempotency-Key")
        body = await json_body(request)
        errors = [FieldError(name, "unknown_field", "такого поля нет в API", "the API has no such field")
                  for name in body if name not in SUBMIT_KEYS]
        if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable() and key.isascii()):
            errors.append(FieldError("headers.Idempotency-Key", "format",
                                     f"ключ — от 1 до {MAX_IDEMPOTENCY_KEY} печатных символов ASCII",
                                     f"the key is 1…{MAX_IDEMPOTENCY_KEY} printable ASCII characters"))
        token, order_id = body.get("kkt_token"), body.get("order_id")
        for name, value in (("kkt_token", token), ("order_id", order_id), ("webhook_url", body.get("webhook_url")),
                            ("callback_url", body.get("callback_url"))):
            if value is not None and not isinstance(value, str):
                errors.append(FieldError(name, "type", "нужна строка", "a string is expected"))
        token = token if isinstance(token, str) else None
        order_id = order_id if isinstance(order_id, str) else None
        token, order_id, problems = check_token_and_order(token, order_id, API_NAMES)
        errors.extend(problems)
        if "commands" not in body:
            errors.append(FieldError("commands", "required", "нет списка команд", "the command list is missing"))
        webhook = None
        for name in ("webhook_url", "callback_url"):
            value = body.get(name)
            if not isinstance(value, str):
                continue
            problem = check_url(name, value) or submit_problem(
                name, value, allow_private=self.config.allow_private_callbacks)
            if problem is not None:
                errors.append(problem)
            elif webhook is not None and value != webhook:
                errors.append(FieldError(name, "conflict", "webhook_url и callback_url переданы с разными значениями",
                                         "webhook_url and callback_url were sent with different values"))
            webhook = value
        if errors:
            raise bad_request(errors)
        account, device = await self.store.account_and_device(principal.account_id, digest(token))
        if account is None:  # the account was deleted while its session or key was in use
            raise not_found("аккаунт не найден", "the account was not found")
        new = prepare(ReceiptRequest(account=account, device=device, order_id=order_id, token=token,
                                     commands=body["commands"], source="api", names=API_NAMES, idempotency_key=key,
                                     webhook_url=webhook),
                      now=utcnow(), expire_after=self.config.expire_after)
        return await self._queue(new)

    async def courier(self, request: web.Request) -> web.Response:
        """Courier mode: a signed-in user fiscalizes a packet on one of the account's registers, picked by id.
        The same checks (`prepare`) and the same queue as `submit`, marked with the source `courier`."""
        principal = await self._principal(request)
        if principal.session is None:
            raise forbidden(f"cookies.{SESSION_COOKIE}", "session_required",
                            "режим курьера — для вошедшего в кабинет пользователя, а не для подписи ключом API",
                            "courier mode is for a user signed in to the cabinet, not for the API key's signature")
        body = await json_body(request)
        errors = [FieldError(name, "unknown_field", "такого поля нет в API", "the API has no such field")
                  for name in body if name not in COURIER_KEYS]
        device_id, order_id = body.get("device_id"), body.get("order_id")
        if not (isinstance(device_id, int) and not isinstance(device_id, bool) and 0 < device_id <= MAX_ID):
            errors.append(FieldError("device_id", "required", f"номер кассы — целое от 1 до {MAX_ID}",
                                     f"the register's id is a whole number 1…{MAX_ID}"))
            device_id = None
        if order_id is None:
            order_id = f"courier-{uuid.uuid4().hex}"
        elif not isinstance(order_id, str):
            errors.append(FieldError("order_id", "type", "нужна строка", "a string is expected"))
            order_id = None
        else:  # the placeholder token only lets the one header rule judge the order id alone
            _, order_id, problems = check_token_and_order("0" * 32, order_id, COURIER_NAMES)
            errors.extend(problems)
        if "commands" not in body:
            errors.append(FieldError("commands", "required", "нет списка команд", "the command list is missing"))
        device = await self.store.device(principal.account_id, device_id) if device_id is not None else None
        if device_id is not None and device is None:
            errors.append(FieldError("device_id", "unknown_device", f"в аккаунте нет устройства {device_id}",
                                     f"the account has no device {device_id}"))
        if errors:
            raise bad_request(errors)
        account = await self.store.account(principal.account_id)
        if account is None:
            raise not_found("аккаунт не найден", "the account was not found")
        new = prepare(ReceiptRequest(account=account, device=device, order_id=order_id, token=f"device:{device.id}",
                                     commands=body["commands"], source="courier", names=COURIER_NAMES),
                      now=utcnow(), expire_after=self.config.expire_after)
        return await self._queue(new)

    async def _queue(self, new: NewReceipt) -> web.Response:
        """Commit a prepared receipt, wake the link, and answer: 201 new, 200 the same again, 409 a taken key."""
        submitted = await self.store.submit(new)
        record = submitted.receipt
        if submitted.created:
            await self.store.receipt_queued(record.driver_id)  # the link pushes it at once
        headers = {"Location": receipt_links(record)["self"]}
        if submitted.conflict == "idempotency_key":
            raise conflict("idempotency_conflict",
                           "этот Idempotency-Key уже использован для другого запроса",
                           "this Idempotency-Key was used for another request",
                           stored_request_hash=record.request_hash, receipt_id=str(record.uuid))
        if submitted.conflict == "order_id":
            raise conflict("order_conflict", f"заказ «{record.order_id}» уже поставлен в очередь с другим пакетом",
                           f"order '{record.order_id}' was queued already with another packet",
                           stored_request_hash=record.request_hash, receipt_id=str(record.uuid))
        return json_response(receipt_view(record), status=201 if submitted.created else 200, headers=headers)

    async def receipt(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        text = request.match_info["receipt_id"]
        receipt_uuid = path_uuid(request)
        wait = integer_param(request, "wait", 0, MAX_WAIT, 0)
        if wait:
            record = await self.store.wait_final(principal.account_id, receipt_uuid, timeout=wait,
                                                 poll=self.config.wait_poll)
        else:
            record = await self.store.receipt(principal.account_id, receipt_uuid)
        if record is None:
            raise not_found(f"чека {text} нет", f"there is no receipt {text}")
        return json_response(receipt_view(record))

    async def callbacks(self, request: web.Request) -> web.Response:
        """The receipt's callbacks with every attempt (cloud/callbacks.py)."""
        principal = await self._principal(request)
        history = await self.store.callback_history(principal.account_id, path_uuid(request))
        if history is None:
            raise not_found("такого чека нет", "there is no such receipt")
        return json_response({"callbacks": [callback_view(c) for c in history]})

    async def resend_callbacks(self, request: web.Request) -> web.Response:
        """Post the receipt's callbacks again, due now, with a fresh retry window."""
        principal = await self._principal(request)
        resent = await self.store.resend_callbacks(principal.account_id, path_uuid(request))
        if resent is None:
            raise not_found("такого чека нет", "there is no such receipt")
        return json_response({"resent": resent})

    async def receipt_by_order(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        order_id = request.match_info["order_id"]
        record = await self.store.receipt_by_order(principal.account_id, order_id) if len(order_id) <= 128 else None
        if record is None:
            raise not_found("чека с таким номером заказа нет", "there is no receipt with this order id")
        return json_response(receipt_view(record))

    async def list_receipts(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        errors: list[FieldError] = []
        states: list[State] = []
        for value in request.query.getall("state", []):
            try:
                states.extend(State(part) for part in value.split(","))
            except ValueError:
                errors.append(FieldError("query.state", "code",
                                         "состояния через запятую из: " + ", ".join(s.value for s in State),
                                         "states, comma-separated, of: " + ", ".join(s.value for s in State)))
        limit = integer_param(request, "limit", 1, MAX_PAGE, 50)
        device_id = integer_param(request, "device_id", 1, MAX_ID, None)
        driver_id = integer_param(request, "driver_id", 1, MAX_ID, None)
        created_from = time_param(request, "created_from", errors)
        created_to = time_param(request, "created_to", errors)
        before = cursor_param(request, errors)
        order_id = request.query.get("order_id")
        if order_id is not None and not 0 < len(order_id) <= 128:
            errors.append(FieldError("query.order_id", "too_long", "номер заказа — до 128 символов",
                                     "an order id has up to 128 characters"))
        if errors:
            raise bad_request(errors)
        if order_id is not None:
            record = await self.store.receipt_by_order(principal.account_id, order_id)
            found = [record] if record is not None and _matches(record, states, device_id, driver_id, created_from,
                                                                 created_to, before) else []
        else:
            found = await self.store.list_receipts(principal.account_id, states=states, device_id=device_id,
                                                   driver_id=driver_id, created_from=created_from,
                                                   created_to=created_to, before_id=before, limit=limit + 1)
        page = found[:limit]
        next_cursor = encode_cursor(page[-1].id) if len(found) > limit else None
        return json_response({"items": [receipt_view(r) for r in page], "next_cursor": next_cursor})

    # --- the account, drivers, devices -----------------------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        account = principal.account or await self.store.account(principal.account_id)
        if account is None:
            raise not_found("аккаунт не найден", "the account was not found")
        return json_response(account_view(account))

    async def drivers(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        devices = await self.store.devices(principal.account_id)
        drivers = await self.store.drivers(principal.account_id)
        return json_response({"items": [driver_view(d, [x for x in devices if x.driver_id == d.id]) for d in drivers]})

    async def driver(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        driver_id = path_id(request, "driver_id")
        driver = await self.store.driver(principal.account_id, driver_id)
        if driver is None:
            raise not_found(f"драйвера {driver_id} нет", f"there is no driver {driver_id}")
        devices = await self.store.devices(principal.account_id, driver_id=driver.id)
        return json_response(driver_view(driver, devices))

    async def devices(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        return json_response({"items": [device_view(d) for d in await self.store.devices(principal.account_id)]})

    async def device(self, request: web.Request) -> web.Response:
        principal = await self._principal(request)
        device_id = path_id(request, "device_id")
        device = await self.store.device(principal.account_id, device_id)
        if device is None:
            raise not_found(f"устройства {device_id} нет", f"there is no device {device_id}")
        return json_response(device_view(device))

    # --- sessions --------------------------------------------------------------------------------------------

    async def sign_in(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        errors = [FieldError(name, "unknown_field", "такого поля нет в API", "the API has no such field")
                  for name in body if name not in ("login", "password")]
        for name, limit in (("login", 64), ("password", 256)):
            value = body.get(name)
            if not isinstance(value, str) or not 0 < len(value) <= limit:
                errors.append(FieldError(name, "required", f"нужна строка от 1 до {limit} символов",
                                         f"a string of 1…{limit} characters is expected"))
        if errors:
            raise bad_request(errors)
        session, token = await self.auth.sign_in(request, body["login"], body["password"])
        response = json_response(session_view(session))
        self.auth.set_cookie(response, token, session.expires_at)
        return response

    async def session(self, request: web.Request) -> web.Response:
        principal = await self.auth.principal(request)
        if principal.session is None:
            raise CloudError("no_session", "запрос подписан ключом API, а не сделан из кабинета",
                             "the request is signed with the API key; it has no session", status=404)
        return json_response(session_view(principal.session))

    async def sign_out(self, request: web.Request) -> web.Response:
        principal = await self.auth.principal(request)
        if principal.session is None:
            raise CloudError("no_session", "запрос подписан ключом API, а не сделан из кабинета",
                             "the request is signed with the API key; it has no session", status=404)
        await self.auth.sign_out(request)
        response = json_response({"signed_out": True})
        self.auth.clear_cookie(response)
        return response


def session_view(session: SessionRecord) -> dict[str, Any]:
    return {"login": session.login, "account_id": session.account_id, "csrf_token": session.csrf_token,
            "expires_at": timestamp(session.expires_at)}


async def json_body(request: web.Request) -> JsonObject:
    raw = await request.read()
    try:
        value = loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request([FieldError("body", "body_encoding", "тело не в UTF-8", "the body is not UTF-8")]) from None
    except FormatError as exc:
        raise bad_request([exc.at("body")]) from None
    if not isinstance(value, JsonObject):
        raise bad_request([FieldError("body", "type", "тело — JSON-объект {…}", "the body is a JSON object {…}")])
    return value


def integer_param(request: web.Request, name: str, low: int, high: int, default):
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 12 and low <= int(text) <= high):
        raise bad_request([FieldError(f"query.{name}", "range", f"{name}: целое от {low} до {high}",
                                      f"{name}: a whole number {low}…{high}")])
    return int(text)


def path_id(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not (text.isascii() and text.isdigit() and len(text) <= 12 and 0 < int(text) <= MAX_ID):
        raise bad_request([FieldError(f"path.{name}", "format", f"номер — целое от 1 до {MAX_ID}",
                                      f"an id is a whole number 1…{MAX_ID}")])
    return int(text)


def path_uuid(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["receipt_id"])
    except ValueError:
        raise bad_request([FieldError("path.receipt_id", "format", "номер чека — UUID",
                                      "a receipt id is a UUID")]) from None


def time_param(request: web.Request, name: str, errors: list[FieldError]) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00")) if RFC3339.fullmatch(text) else None
    except ValueError:
        moment = None
    if moment is None:
        errors.append(FieldError(f"query.{name}", "format", "время в ISO 8601 с часовым поясом: 2026-11-23T16:04:05Z",
                                 "an ISO 8601 time with a zone: 2026-11-23T16:04:05Z"))
        return None
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC moment Python has
        return (datetime.min if moment.year < 5000 else datetime.max).replace(tzinfo=timezone.utc)


def encode_cursor(last_id: int) -> str:
    """The next page starts after this queue position (digits; a client treats it as opaque)."""
    return str(last_id)


def cursor_param(request: web.Request, errors: list[FieldError]) -> int | None:
    text = request.query.get("cursor")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= CURSOR_DIGITS):
        errors.append(FieldError("query.cursor", "format", "курсор — значение next_cursor предыдущей страницы",
                                 "the cursor is the next_cursor of the previous page"))
        return None
    return min(int(text), 2**63 - 1)


def _matches(record, states, device_id, driver_id, created_from, created_to, before) -> bool:
    return ((not states or record.state in states) and device_id in (None, record.device_id)
            and driver_id in (None, record.driver_id) and (created_from is None or record.created_at >= created_from)
            and (created_to is None or record.created_at < created_to) and (before is None or record.id < before))
