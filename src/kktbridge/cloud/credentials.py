"""Every secret the cloud makes, how each is kept, and how each is checked: the one place for that.

- Passwords: argon2id (argon2-cffi's defaults), hashed and checked in a worker thread (they cost ~50 ms).
- Driver keys, device tokens and session ids are random and long, so a plain SHA-256 is enough to keep them
  unusable if the database leaks; the service finds them by that hash.
- The integrity code, the API secret and the webhook secret stay readable: they key an md5 or an HMAC.
- Every comparison of a secret goes through `hmac.compare_digest`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..driver.config import new_token

__all__ = [
    "check_password",
    "digest",
    "equal",
    "hash_password",
    "new_api_secret",
    "new_csrf_token",
    "new_driver_key",
    "new_integrity_code",
    "new_password",
    "new_session_token",
    "new_token",
    "request_signature",
]

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to check when the login is unknown, so an unknown login costs what a wrong password costs."""
    return _hasher.hash(secrets.token_urlsafe(16))


def digest(secret: str) -> str:
    """SHA-256 in hex: how driver keys, device tokens and session ids are stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_integrity_code() -> str:
    return secrets.token_hex(16)


def new_api_secret() -> str:
    return secrets.token_hex(32)


def new_driver_key() -> str:
    return "kkd_" + secrets.token_urlsafe(32)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def check_password(stored: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs a new hash); `stored` None (no such user) still costs one verification."""

    def verify() -> tuple[bool, bool]:
        try:
            _hasher.verify(stored or _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False, False
        return stored is not None, stored is not None and _hasher.check_needs_rehash(stored)

    return await asyncio.to_thread(verify)


def request_signature(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 (hex) of a JSON API request: METHOD \\n path?query \\n timestamp \\n body."""
    message = f"{method.upper()}\n{path}\n{timestamp}\n".encode("utf-8") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
