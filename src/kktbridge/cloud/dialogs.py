"""The vendor's browser flows (spec/bit-api.md §7, §9.1): the shop's page submits the signed form, the browser
watches the receipt live, and is then sent on to the shop's callback with the result.

- `POST /api/create-receipt-dlg.php`: the signed form of the cloud mode, read, checked and queued exactly as by
  create-receipt.php (`FormIntake.accept`: one decoder, one signature check, one validator).
- `POST /api/payment-dlg.php`: the hosted payment dialog of API 1.0–1.1 (`BIT_TRANSACTION_ID`/`BIT_JSON`, or
  `BIT_ORDER_ID`/`BIT_DATA`). The account's driver must be linked now (a cashier is at the terminal, waiting); the
  packet takes the card payment first (`bnkCardPayment` for the receipt's card sum, unless the packet has one) and
  then the receipt. It is the one source (`dialog`) whose packets may hold bank commands.
- Both answer a progress page (web/dialog.html, static/dialog.js) that polls `GET /api/dialog/{account}/{id}?k=`
  (`k`: an HMAC of the receipt id with the account's webhook secret, so only the browser that submitted it can
  watch) and, once the receipt is final, posts `callbacks.result_fields` to BIT_CALLBACK_SUCCESS or
  BIT_CALLBACK_FAILED as a form: the browser goes there. The server-side callback is separate (`callbacks`).
A refusal is a page in both languages with the reason and the HTTP status, never JSON to a person.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import uuid
from decimal import Decimal
from string import Template
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..bitapi import JsonObject
from ..web import asset
from ..web.routes import asset_version, page_response
from .callbacks import result_fields, succeeded
from .errors import CloudError, forbidden
from .intake import FormIntake
from .store import MAX_ID, Store
from .submission import DIALOG, RECEIPT

__all__ = ["DIALOG_PATHS", "Dialogs", "watch_key"]

DIALOG_PATHS = {"receipt": "/api/create-receipt-dlg.php", "payment": "/api/payment-dlg.php"}
STATUS = "/api/dialog/{account_id}/{receipt_id}"
CARD = "bnkCardPayment"


def watch_key(secret: str, receipt_uuid: uuid.UUID) -> str:
    """The capability to watch one receipt's progress (it is in the progress page's address, nowhere else)."""
    return hmac.new(secret.encode("utf-8"), b"dialog." + str(receipt_uuid).encode(), hashlib.sha256).hexdigest()[:32]


def with_card_payment(value: Any) -> Any:
    """The payment dialog's packet: the card payment, then the receipt. A 1.0/1.1 receipt object gets a
    bnkCardPayment for its card sum (ecash_1081); a command list that holds one already is left as it is."""
    if isinstance(value, JsonObject) and "type" not in value:
        value = [JsonObject([("name", "1"), ("type", RECEIPT), ("data", value)])]
    if not isinstance(value, list) or any(isinstance(c, dict) and c.get("type") == CARD for c in value):
        return value
    card = Decimal(0)
    for command in value:
        data = command.get("data") if isinstance(command, dict) and command.get("type") == RECEIPT else None
        payments = data.get("payments") if isinstance(data, dict) else None
        amount = payments.get("ecash_1081") if isinstance(payments, dict) else None
        if isinstance(amount, (int, Decimal)) and not isinstance(amount, bool):
            card += Decimal(amount)
    if card <= 0:
        return value
    payment = JsonObject([("name", "оплата картой"), ("type", CARD), ("data", JsonObject([("sum", card)]))])
    return [payment, *value]


class Dialogs:
    def __init__(self, store: Store, intake: FormIntake) -> None:
        self.store = store
        self.intake = intake

    def routes(self) -> list[web.RouteDef]:
        return [web.post(DIALOG_PATHS["receipt"], self.receipt_dialog),
                web.post(DIALOG_PATHS["payment"], self.payment_dialog),
                web.get(STATUS, self.status)]

    async def receipt_dialog(self, request: web.Request) -> web.Response:
        try:
            submitted, _, _ = await self.intake.accept(request, source="form")
        except CloudError as error:
            return refusal_page(error)
        return await self._progress(submitted.receipt, payment=False)

    async def payment_dialog(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
            account_text = next((str(v) for k, v in form.items() if k.strip().lower() == "bit_account_id"), "")
            await self._require_linked(account_text.strip())
            submitted, _, _ = await self.intake.accept(request, source=DIALOG, commands=with_card_payment)
        except CloudError as error:
            return refusal_page(error)
        return await self._progress(submitted.receipt, payment=True)

    async def _require_linked(self, account_text: str) -> None:
        """The payment dialog needs a driver online now: the customer stands at the terminal."""
        account_id = int(account_text) if account_text.isascii() and account_text.isdigit() else 0
        drivers = await self.store.drivers(account_id) if 0 < account_id <= MAX_ID else []
        if not any(driver.link for driver in drivers):
            raise forbidden("BIT_ACCOUNT_ID", "driver_offline",
                            "драйвер ККТ этого аккаунта сейчас не на связи с облаком: оплату картой на кассе провести "
                            "нельзя; запустите драйвер на компьютере кассы и повторите",
                            "the account's driver is not linked to the cloud now, so the card cannot be taken at the "
                            "till; start the driver on the till's computer and try again")

    async def _progress(self, record, *, payment: bool) -> web.Response:
        account = await self.store.account(record.account_id)
        status_url = (STATUS.format(account_id=record.account_id, receipt_id=record.uuid)
                      + f"?k={watch_key(account.webhook_secret, record.uuid)}")
        targets = " ".join(sorted({_origin(u) for u in (record.callback_success, record.callback_failed) if u})) \
            or "'none'"
        page = Template(asset("dialog.html")).substitute(
            v=asset_version(), order=html.escape(record.order_id), receipt=record.uuid,
            status=html.escape(status_url), kind="payment" if payment else "receipt")
        return page_response(page, form_action=targets)

    async def status(self, request: web.Request) -> web.Response:
        """The receipt's state for its progress page; once final, where the browser goes and with which fields."""
        text, receipt_text = request.match_info["account_id"], request.match_info["receipt_id"]
        try:
            receipt_uuid = uuid.UUID(receipt_text)
            account_id = int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else 0
        except ValueError:
            account_id = 0
        account = await self.store.account(account_id) if 0 < account_id <= MAX_ID else None
        given = request.query.get("k", "")
        if account is None or not hmac.compare_digest(watch_key(account.webhook_secret, receipt_uuid).encode(),
                                                      given.encode("ascii", "replace")):
            raise forbidden("query.k", "bad_key", "нет такого чека или ключ неверен",
                            "there is no such receipt or the key is wrong")
        record = await self.store.receipt(account_id, receipt_uuid)
        if record is None:
            raise forbidden("query.k", "bad_key", "нет такого чека или ключ неверен",
                            "there is no such receipt or the key is wrong")
        body: dict[str, Any] = {"state": record.state.value, "status": record.state.status,
                                "final": record.state.final, "good": None, "action": None, "fields": None}
        if record.state.final:
            good = succeeded(record)
            body.update(good=good, action=record.callback_success if good else record.callback_failed,
                        fields=result_fields(record), error=record.error)
        return web.json_response(body, headers={"Cache-Control": "no-store"},
                                 dumps=lambda value: json.dumps(value, ensure_ascii=False))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def refusal_page(error: CloudError) -> web.Response:
    """A refused dialog as a page a person reads: the reason in both languages, each field named."""
    items = "".join(f"<li><code>{html.escape(f.path)}</code>: <span lang=\"ru\">{html.escape(f.ru)}</span>"
                    f"<span lang=\"en\">{html.escape(f.en)}</span></li>" for f in error.fields)
    page = Template(asset("dialog_refused.html")).substitute(
        v=asset_version(), ru=html.escape(error.ru), en=html.escape(error.en), code=html.escape(error.code),
        fields=f"<ul>{items}</ul>" if items else "")
    response = page_response(page)
    response.set_status(error.status)
    return response
