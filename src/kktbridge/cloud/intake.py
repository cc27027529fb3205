"""The vendor's cloud form (spec/bit-api.md §7): `POST /api/fiscal/create-receipt.php` and the 1.0 path.

The rules of this endpoint, in the order they are applied:
- fields are found whatever their letter case and spelling (API 1.0/1.1 `BIT_TRANSACTION_ID`, `BIT_JSON`,
  the 1.1 doc's `BIT_CALBACK_SUCCESSFUL`/`BIT_CALBACK_FAILED`); two spellings of one field must agree;
  unknown fields are ignored (the vendor's own forms send a few);
- `BIT_DATA` is base64 of `encodeURIComponent(json)`, or any of the driver's body encodings, or raw JSON;
- the md5 signature is checked before anything about the packet or the account's devices is said, against
  both inputs the vendor documents (the raw JSON text, as every demo hashes it, and the `BIT_DATA` value, as
  the docs word it), in constant time; forged requests count against the sender's address, not the account;
- then the account's flood limit, the packet (`submission.prepare`), and the queue;
- with `BIT_PROG_URL` the answer waits (bounded) for the result, as the vendor's does; the URL itself is
  recorded and never fetched.
Answers are JSON in the shape the vendor's clients read (`result: true|false`), with real HTTP statuses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ..bitapi import decode_body, loads
from ..fiscal import FieldError, FormatError
from .callbacks import bit_answer
from .config import CloudConfig
from .credentials import digest
from .errors import bad_request, conflict, forbidden, rate_limited
from .http import client_address, json_response
from .ratelimit import Limiter
from .ssrf import submit_problem
from .store import MAX_ID, NewReceipt, ReceiptRecord, Store, Submitted, utcnow
from .submission import FieldNames, ReceiptRequest, check_token_and_order, check_url, prepare
from .views import receipt_links, receipt_view

__all__ = ["FORM_PATHS", "FormIntake"]

log = logging.getLogger("kktbridge.cloud.intake")

FORM_PATHS = ("/api/fiscal/create-receipt.php", "/api/create-receipt.php")

ACCOUNT, TOKEN, BNK_TOKEN, ORDER, DATA, SIGNATURE = (
    "BIT_ACCOUNT_ID", "BIT_KKT_TOKEN", "BIT_BNK_TRM_TOKEN", "BIT_ORDER_ID", "BIT_DATA", "BIT_SIGNATURE")
SUCCESS, FAILED, PROG_URL = "BIT_CALLBACK_SUCCESS", "BIT_CALLBACK_FAILED", "BIT_PROG_URL"

# Every spelling the vendor's documents and clients use, normalised (lower case, `-` as `_`) → the field.
ALIASES = {
    "bit_account_id": ACCOUNT,
    "bit_kkt_token": TOKEN,
    "bit_bnk_trm_token": BNK_TOKEN,
    "bit_order_id": ORDER, "bit_transaction_id": ORDER,
    "bit_data": DATA, "bit_json": DATA,
    "bit_signature": SIGNATURE,
    "bit_callback_success": SUCCESS, "bit_callback_successful": SUCCESS,
    "bit_calback_success": SUCCESS, "bit_calback_successful": SUCCESS,
    "bit_callback_failed": FAILED, "bit_calback_failed": FAILED,
    "bit_prog_url": PROG_URL,
}
REQUIRED = (ACCOUNT, TOKEN, ORDER, DATA, SIGNATURE)


class FormIntake:
    def __init__(self, store: Store, config: CloudConfig, accounts: Limiter, failures: Limiter) -> None:
        self.store = store
        self.config = config
        self.accounts = accounts
        self.failures = failures

    async def handle(self, request: web.Request) -> web.Response:
        submitted, new, headers = await self.accept(request, source="form")
        record = submitted.receipt
        if new.prog_url is not None and not record.state.final and self.config.prog_url_wait > 0:
            record = await self.store.wait_final(record.account_id, record.uuid, timeout=self.config.prog_url_wait,
                                                 poll=self.config.wait_poll) or record
        if new.prog_url is not None:
            return program_answer(record, headers)
        body = {"result": True, "duplicate": not submitted.created, "receipt": receipt_view(record)}
        return json_response(body, status=201 if submitted.created else 200, headers=headers)

    async def accept(self, request: web.Request, *, source: str,
                     commands: Callable[[Any], Any] | None = None) -> tuple[Submitted, NewReceipt, dict[str, str]]:
        """The signed form read, checked and queued: (what the store made of it, the receipt, answer headers).
        The form endpoints and the browser dialogs (`dialogs`) share it; `commands` may rewrite the packet (the
        payment dialog puts the card payment first) before `prepare` judges it."""
        address = client_address(request)
        self.failures.refuse_if_blocked(f"forged:{address}")
        fields, sent_as = await read_form(request, allow_private=self.config.allow_private_callbacks)
        text, value, signed = decode_data(fields[DATA], sent_as[DATA])
        token = fields[TOKEN].strip().lower()
        account, device = await self.store.account_and_device(int(fields[ACCOUNT]), digest(token))
        if account is None or not signature_matches(fields, signed, account.integrity_code):
            self.failures.hit(f"forged:{address}")
            log.warning("form from %s refused: %s for account %s", address,
                        "unknown account" if account is None else "wrong signature", fields[ACCOUNT])
            if account is None:
                raise forbidden(sent_as[ACCOUNT], "unknown_account", f"аккаунта {fields[ACCOUNT]} нет",
                                f"there is no account {fields[ACCOUNT]}")
            raise forbidden(sent_as[SIGNATURE], "bad_signature",
                            "подпись не сходится: md5(BIT_ACCOUNT_ID + BIT_KKT_TOKEN + BIT_ORDER_ID + JSON чека + "
                            "BIT_CALLBACK_SUCCESS + BIT_CALLBACK_FAILED + BIT_DATAINTEGRITY_CODE)",
                            "the signature does not match md5(BIT_ACCOUNT_ID + BIT_KKT_TOKEN + BIT_ORDER_ID + "
                            "receipt JSON + BIT_CALLBACK_SUCCESS + BIT_CALLBACK_FAILED + BIT_DATAINTEGRITY_CODE)")
        wait = self.accounts.hit(f"account:{account.id}")
        if wait is not None:
            raise rate_limited(wait)
        now = utcnow()
        new = prepare(ReceiptRequest(
            account=account, device=device, order_id=fields[ORDER].strip(), token=token,
            commands=commands(value) if commands is not None else value, source=source, names=FieldNames(sent_as[DATA], sent_as[TOKEN], sent_as[ORDER]),
            callback_success=fields.get(SUCCESS) or None, callback_failed=fields.get(FAILED) or None,
            prog_url=fields.get(PROG_URL) or None, packet_text=text if commands is None else None),
            now=now, expire_after=self.config.expire_after)
        submitted = await self.store.submit(new)
        record = submitted.receipt
        if submitted.created:
            await self.store.receipt_queued(record.driver_id)  # the link pushes it at once
        headers = {"Location": receipt_links(record)["self"], "X-Kktbridge-Receipt": str(record.uuid)}
        if submitted.conflict:
            raise conflict("order_conflict",
                           f"заказ «{record.order_id}» уже поставлен в очередь с другим пакетом; новый номер заказа "
                           "нужен для нового чека",
                           f"order '{record.order_id}' was queued already with another packet; a new receipt needs "
                           "a new order id",
                           stored_request_hash=record.request_hash,
                           receipt={"id": str(record.uuid), "state": record.state.value})
        return submitted, new, headers


async def read_form(request: web.Request, *, allow_private: bool) -> tuple[dict[str, str], dict[str, str]]:
    """The BIT_* fields (by canonical name) and the name each was sent under; CloudError lists every problem.
    Callback URLs must pass the SSRF rules (`allow_private`: the config's allow_private_callbacks)."""
    form = await request.post()
    values: dict[str, str] = {}
    sent_as: dict[str, str] = {}
    errors: list[FieldError] = []
    for name, value in form.items():
        field = ALIASES.get(name.strip().lower().replace("-", "_"))
        if field is None:
            continue
        if not isinstance(value, str):
            errors.append(FieldError(name, "type", "поле должно быть текстом, а не файлом",
                                     "the field must be text, not a file"))
            continue
        if field in values and values[field] != value:
            errors.append(FieldError(name, "conflict", f"{sent_as[field]} и {name} переданы с разными значениями",
                                     f"{sent_as[field]} and {name} were sent with different values"))
            continue
        values[field] = value
        sent_as[field] = name
    if not values and not errors:
        raise bad_request([FieldError("body", "form", "ожидается HTML-форма (application/x-www-form-urlencoded или "
                                      "multipart/form-data) с полями BIT_ACCOUNT_ID, BIT_KKT_TOKEN, BIT_ORDER_ID, "
                                      "BIT_DATA, BIT_SIGNATURE",
                                      "an HTML form (application/x-www-form-urlencoded or multipart/form-data) with "
                                      "the fields BIT_ACCOUNT_ID, BIT_KKT_TOKEN, BIT_ORDER_ID, BIT_DATA, "
                                      "BIT_SIGNATURE is expected")], code="bad_form")
    for field in REQUIRED:
        sent_as.setdefault(field, field)
        if not values.get(field, "").strip() and not any(e.path == sent_as[field] for e in errors):
            errors.append(FieldError(field, "required", f"нет поля {field}", f"the field {field} is missing"))
    account = values.get(ACCOUNT, "").strip()
    if account and not (account.isascii() and account.isdigit() and 0 < int(account) <= MAX_ID):
        errors.append(FieldError(sent_as[ACCOUNT], "format", f"номер аккаунта — целое число от 1 до {MAX_ID}",
                                 f"the account id is a whole number 1…{MAX_ID}"))
    signature = values.get(SIGNATURE, "").strip()
    if signature and not (len(signature) == 32 and all(ch in "0123456789abcdefABCDEF" for ch in signature)):
        errors.append(FieldError(sent_as[SIGNATURE], "format", "подпись — md5: 32 шестнадцатеричных символа",
                                 "the signature is an md5: 32 hex characters"))
    names = FieldNames(sent_as.get(DATA, DATA), sent_as[TOKEN], sent_as[ORDER])
    _, _, problems = check_token_and_order(values.get(TOKEN, "").strip() or None,
                                           values.get(ORDER, "").strip() or None, names)
    errors.extend(p for p in problems if p.code != "required")
    for field in (SUCCESS, FAILED, PROG_URL):
        if values.get(field):
            problem = check_url(sent_as[field], values[field])
            if problem is None and field != PROG_URL:  # the program URL is recorded, never fetched
                problem = submit_problem(sent_as[field], values[field], allow_private=allow_private)
            if problem is not None:
                errors.append(problem)
    if errors:
        raise bad_request(errors, code="bad_form", ru="форма отклонена", en="form refused")
    return values, sent_as


def decode_data(value: str, name: str) -> tuple[str, object, list[str]]:
    """(the JSON text inside BIT_DATA, its parsed value, the texts the shop may have signed as the fourth term).

    The vendor's own encoding (base64 of encodeURIComponent) and plain or URI-encoded JSON are undone directly, the
    text kept exactly as the shop's page held it; anything else goes through the driver's body decoder."""
    refused = "форма отклонена", "form refused"
    exact = _vendor_text(value)
    if exact is not None:
        try:
            text = exact.strip().lstrip("\ufeff")
            return text, loads(text), _unique([value, exact, text])
        except FormatError:
            pass  # `+` for spaces (PHP's urlencode), or something else: the general decoder knows more
    try:
        text = decode_body(value.encode("utf-8"))
    except FormatError as exc:
        # A base64 text posted without URL-encoding has its `+` turned into spaces by form decoding.
        if " " not in value.strip():
            raise bad_request([exc.at(name)], code="bad_form", ru=refused[0], en=refused[1]) from None
        try:
            text = decode_body(value.strip().replace(" ", "+").encode("utf-8"))
        except FormatError:
            raise bad_request([exc.at(name)], code="bad_form", ru=refused[0], en=refused[1]) from None
    try:
        return text, loads(text), _unique([value, exact, text])
    except FormatError as exc:
        raise bad_request([exc.at(name)], code="bad_form", ru=refused[0], en=refused[1]) from None


def _vendor_text(value: str) -> str | None:
    """JSON text as sent, URI-decoded, or base64 → URI-decoded (`btoa(encodeURIComponent(json))`), whitespace kept;
    None when the value is none of these."""
    head = value.lstrip()[:1]
    layer = value
    if head not in ("[", "{", "%"):
        try:
            layer = base64.b64decode(value.strip().replace(" ", "+"), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        head = layer.lstrip()[:1]
    if head == "%":
        try:
            return decode_uri_component(layer)
        except UnicodeDecodeError:
            return None
    return layer if head in ("[", "{") else None


_URI_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()%"


def decode_uri_component(text: str) -> str:
    """JavaScript's decodeURIComponent, in C where it can be.

    Cyrillic JSON is mostly `%XX` escapes, which urllib decodes one by one in Python; binascii's quoted-printable
    decoder does the same in C once `%` reads `=`. It is used when the text holds only what encodeURIComponent
    writes (so no `=` of its own), does not end inside an escape, and its output holds no `=` (which would be `%3D`,
    or an escape it could not read): then its answer is exactly urllib's. Anything else goes to urllib."""
    raw = text.encode("ascii", "replace")
    if not raw.translate(None, _URI_UNRESERVED) and b"%" not in raw[-2:]:  # a final `=` is a soft line break
        decoded = binascii.a2b_qp(raw.replace(b"%", b"="))
        if b"=" not in decoded:
            return decoded.decode("utf-8")
    return unquote(text, errors="strict")


def _unique(texts: list[str | None]) -> list[str]:
    out: list[str] = []
    for text in texts:
        if text is not None and text not in out:
            out.append(text)
    return out


def signature_matches(fields: dict[str, str], signed: list[str], integrity_code: str) -> bool:
    """md5(account + token + order + X + success + failed + integrity code), X any of `signed`, in constant time."""
    head = fields[ACCOUNT] + fields[TOKEN] + fields[ORDER]
    tail = fields.get(SUCCESS, "") + fields.get(FAILED, "") + integrity_code
    given = fields[SIGNATURE].strip().lower().encode()
    matched = False
    for middle in signed:
        expected = hashlib.md5((head + middle + tail).encode("utf-8")).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def program_answer(record: ReceiptRecord, headers: dict[str, str]) -> web.Response:
    """The answer to a request with BIT_PROG_URL: the driver's full result, as the vendor returns it, or (not ready in
    time) 202 saying so: the receipt stays queued and the same request asks again without a second receipt."""
    if record.state.final:
        answer = bit_answer(record)
        if isinstance(answer, dict):
            answer["receipt"] = receipt_view(record)
        return json_response(answer, headers=headers)
    ru = ("чек в очереди, результат ещё не готов: касса пробьёт его, когда драйвер выйдет на связь; не отправляйте "
          "новый заказ — этот же запрос вернёт результат, когда он будет")
    en = ("the receipt is queued and its result is not ready yet: the register prints it when its driver connects; do "
          "not send a new order — this same request returns the result once there is one")
    return json_response({"result": False, "error": f"{ru} / {en}", "errorCode": "result_not_ready", "errorRu": ru,
                          "errorEn": en, "retryable": True, "receipt": receipt_view(record)}, status=202,
                         headers=headers)
