"""Making accounts, users, drivers and devices, each with fresh credentials: the operator's commands call these
(and the cabinet will). A credential is returned once, in the clear, to be shown to whoever gets it; the store keeps
only what `credentials` says it keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..fiscal import BridgeError
from .config import DEVICE_KINDS
from .credentials import (
    digest,
    hash_password,
    new_api_secret,
    new_driver_key,
    new_integrity_code,
    new_password,
    new_token,
)
from .store import AccountRecord, DeviceRecord, DriverRecord, Store, UserRecord
from .views import timestamp

__all__ = ["ProvisionError", "add_device", "add_driver", "add_user", "create_account"]

_TOKEN = re.compile(r"[0-9a-f]{32}")
_LOGIN = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


class ProvisionError(BridgeError):
    def __init__(self, ru: str, en: str) -> None:
        super().__init__("bad_argument", ru, en)


def _name(value: str, what_ru: str, what_en: str) -> str:
    value = value.strip()
    if not 0 < len(value) <= 200 or not value.isprintable():
        raise ProvisionError(f"{what_ru}: от 1 до 200 печатных символов", f"{what_en}: 1…200 printable characters")
    return value


@dataclass(frozen=True)
class NewAccount:
    account: AccountRecord

    def to_dict(self) -> dict:
        a = self.account
        return {"account_id": a.id, "name": a.name, "integrity_code": a.integrity_code, "api_secret": a.api_secret,
                "webhook_secret": a.webhook_secret, "created_at": timestamp(a.created_at)}


async def create_account(store: Store, name: str) -> NewAccount:
    account = await store.create_account(_name(name, "имя аккаунта", "the account name"),
                                         integrity_code=new_integrity_code(), api_secret=new_api_secret(),
                                         webhook_secret=new_api_secret())
    return NewAccount(account)


async def add_user(store: Store, account_id: int, login: str) -> tuple[UserRecord, str]:
    """A user with a generated password: (user, the password, shown once)."""
    if not _LOGIN.fullmatch(login):
        raise ProvisionError("логин: 1–64 символа из латинских букв, цифр и . _ @ + -",
                             "a login is 1–64 characters of Latin letters, digits and . _ @ + -")
    password = new_password()
    return await store.add_user(account_id, login, await hash_password(password)), password


async def add_driver(store: Store, account_id: int, name: str) -> tuple[DriverRecord, str]:
    """A driver with its key: (driver, the key, shown once)."""
    key = new_driver_key()
    return await store.add_driver(account_id, _name(name, "имя драйвера", "the driver name"), digest(key)), key


async def add_device(store: Store, driver_id: int, kind: str, *, name: str | None = None,
                     token: str | None = None) -> tuple[DeviceRecord, str]:
    """A device of a driver with its token (the one given, e.g. from the driver's config, or a new one)."""
    if kind not in DEVICE_KINDS:
        raise ProvisionError(f"вид устройства: {', '.join(DEVICE_KINDS)}",
                             f"the device kind is one of {', '.join(DEVICE_KINDS)}")
    token = (token or new_token()).strip().lower()
    if not _TOKEN.fullmatch(token):
        raise ProvisionError("токен — 32 шестнадцатеричных символа", "a token is 32 hex characters")
    label = _name(name or {"atol": "Касса АТОЛ", "mercury": "Касса Меркурий", "arcus": "Терминал Arcus"}[kind],
                  "имя устройства", "the device name")
    return await store.add_device(driver_id, kind, label, digest(token)), token
