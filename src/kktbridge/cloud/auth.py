"""Who is asking: a shop's server (an HMAC-signed request) or a signed-in user (a session cookie), and for which
account. Every JSON API handler gets its account from here and from nowhere else.

- Signed requests carry `X-Kktbridge-Account`, `X-Kktbridge-Timestamp` (Unix seconds) and
  `X-Kktbridge-Signature: sha256=<hex>`, the HMAC-SHA256 of `METHOD \\n path?query \\n timestamp \\n body` keyed
  with the account's API secret (`credentials.request_signature`). A timestamp outside the window is refused,
  so a captured request cannot be replayed later; within the window a replay changes nothing, since every
  write is idempotent.
- Sessions live in the database (revocable: delete the row), behind an HttpOnly, SameSite=Lax cookie whose
  value is stored only as a hash. A request authenticated by the cookie that changes anything must also carry
  the session's CSRF token (`X-CSRF-Token`, or the `csrf_token` form field), which a foreign page cannot read.
- Failed attempts count against the caller's address; past the limit the address gets 429 until the window
  passes. Answers never say which part of a credential was wrong, and never echo one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from .config import CloudConfig
from .credentials import (
    check_password,
    digest,
    equal,
    hash_password,
    new_csrf_token,
    new_session_token,
    request_signature,
)
from .errors import CloudError, forbidden, unauthorized
from .http import client_address
from .ratelimit import Limiter
from .store import MAX_ID, AccountRecord, SessionRecord, Store, utcnow

__all__ = ["ACCOUNT_HEADER", "CSRF_HEADER", "SESSION_COOKIE", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Authenticator",
           "Principal"]

ACCOUNT_HEADER = "X-Kktbridge-Account"
TIMESTAMP_HEADER = "X-Kktbridge-Timestamp"
SIGNATURE_HEADER = "X-Kktbridge-Signature"
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "kktbridge_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    account_id: int
    account: AccountRecord | None = None  # loaded when the request was signed with its secret
    session: SessionRecord | None = None  # set when the request came with a session cookie


class Authenticator:
    def __init__(self, store: Store, config: CloudConfig, failures: Limiter, logins: Limiter) -> None:
        self.store = store
        self.config = config
        self.failures = failures
        self.logins = logins

    async def principal(self, request: web.Request) -> Principal:
        """The account a JSON API request acts for, or CloudError 401/403/429."""
        address = client_address(request)
        self.failures.refuse_if_blocked(f"auth:{address}")
        try:
            if any(h in request.headers for h in (SIGNATURE_HEADER, ACCOUNT_HEADER, TIMESTAMP_HEADER)):
                return await self._signed(request)
            if SESSION_COOKIE in request.cookies:
                return await self._session(request)
        except CloudError:
            self.failures.hit(f"auth:{address}")
            raise
        self.failures.hit(f"auth:{address}")
        raise unauthorized(
            f"headers.{SIGNATURE_HEADER}", "unauthorized",
            f"нужна подпись запроса ({ACCOUNT_HEADER}, {TIMESTAMP_HEADER}, {SIGNATURE_HEADER}) или вход в кабинет",
            f"the request must be signed ({ACCOUNT_HEADER}, {TIMESTAMP_HEADER}, {SIGNATURE_HEADER}) or signed in")

    async def _signed(self, request: web.Request) -> Principal:
        account_text = request.headers.get(ACCOUNT_HEADER, "").strip()
        stamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        for name, value in ((ACCOUNT_HEADER, account_text), (TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, signature)):
            if not value:
                raise unauthorized(f"headers.{name}", "required", "заголовок не передан", "the header is missing")
        if not (account_text.isascii() and account_text.isdigit() and 0 < int(account_text) <= MAX_ID):
            raise unauthorized(f"headers.{ACCOUNT_HEADER}", "format", f"номер аккаунта — целое от 1 до {MAX_ID}",
                               f"the account id is a whole number 1…{MAX_ID}")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise unauthorized(f"headers.{TIMESTAMP_HEADER}", "format", "время — целое число секунд Unix",
                               "the timestamp is a whole number of Unix seconds")
        skew = abs(time.time() - int(stamp))
        if skew > self.config.signature_window:
            raise unauthorized(f"headers.{TIMESTAMP_HEADER}", "stale_timestamp",
                               f"время запроса расходится с часами облака больше чем на {self.config.signature_window} "
                               "с: проверьте часы сервера магазина или не повторяйте старый запрос",
                               f"the request's time is more than {self.config.signature_window} s off the cloud's "
                               "clock: check the shop server's clock, or do not replay an old request")
        hex_part = signature.removeprefix("sha256=").lower()
        if len(hex_part) != 64 or any(ch not in "0123456789abcdef" for ch in hex_part):
            raise unauthorized(f"headers.{SIGNATURE_HEADER}", "format",
                               "подпись — sha256=<64 шестнадцатеричных символа>",
                               "the signature is sha256=<64 hex characters>")
        account = await self.store.known_account(int(account_text))
        body = await request.read()
        expected = request_signature(account.api_secret, request.method, request.raw_path, stamp, body) \
            if account is not None else request_signature("", request.method, request.raw_path, stamp, body)
        if account is None or not equal(expected, hex_part):
            raise unauthorized(f"headers.{SIGNATURE_HEADER}", "bad_signature",
                               "подпись не сходится (или нет такого аккаунта): HMAC-SHA256 секретом API от "
                               "«МЕТОД\\nпуть?запрос\\nвремя\\nтело»",
                               "the signature does not match (or there is no such account): HMAC-SHA256 with the API "
                               "secret of 'METHOD\\npath?query\\ntimestamp\\nbody'")
        return Principal(account.id, account=account)

    async def _session(self, request: web.Request) -> Principal:
        session = await self.store.session(digest(request.cookies[SESSION_COOKIE]))
        if session is None:
            raise unauthorized(f"cookies.{SESSION_COOKIE}", "session_expired",
                               "сеанс истёк или завершён: войдите снова", "the session expired or was ended: sign in")
        if request.method not in SAFE_METHODS:
            token = request.headers.get(CSRF_HEADER, "")
            if not token and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                token = str((await request.post()).get("csrf_token", ""))
            if not token or not equal(token, session.csrf_token):
                raise forbidden(f"headers.{CSRF_HEADER}", "csrf", "нет CSRF-токена сеанса или он неверный",
                                "the session's CSRF token is missing or wrong")
        return Principal(session.account_id, session=session)

    # --- signing in and out ----------------------------------------------------------------------------------

    async def sign_in(self, request: web.Request, login: str, password: str) -> tuple[SessionRecord, str]:
        """A new session for a correct login and password: (session, the cookie's value)."""
        address = client_address(request)
        for key in (f"login-address:{address}", f"login:{login}"):
            self.logins.refuse_if_blocked(key)
        user = await self.store.user_by_login(login)
        matches, rehash = await check_password(user.password_hash if user else None, password)
        if user is None or not matches:
            self.logins.hit(f"login-address:{address}")
            self.logins.hit(f"login:{login}")
            raise unauthorized("password", "bad_credentials", "неверный логин или пароль",
                               "wrong login or password")
        if rehash:
            await self.store.set_password_hash(user.id, await hash_password(password))
        token = new_session_token()
        now = utcnow()
        session = await self.store.create_session(digest(token), user, new_csrf_token(),
                                                  expires_at=now + self.config.session_lifetime, now=now)
        return session, token

    async def sign_out(self, request: web.Request) -> None:
        await self.store.delete_session(digest(request.cookies.get(SESSION_COOKIE, "")))

    def set_cookie(self, response: web.StreamResponse, token: str, expires_at: datetime) -> None:
        response.set_cookie(SESSION_COOKIE, token, max_age=max(0, int((expires_at - utcnow()).total_seconds())),
                            path="/", httponly=True, samesite="Lax", secure=self.config.cookie_secure)

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/")
