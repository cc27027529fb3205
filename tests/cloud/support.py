"""A shop's side of the cloud for the tests: two accounts with their credentials, the vendor's signed form, signed
JSON API calls, and the 1.2 example receipt as the vendor's page holds it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import yarl

from kktbridge.cloud import CloudService
from kktbridge.cloud.credentials import request_signature
from kktbridge.cloud.intake import FORM_PATHS
from kktbridge.cloud.provision import add_device, add_driver, add_user, create_account
from kktbridge.cloud.store import AccountRecord, DeviceRecord, DriverRecord, Store
from kktbridge.cloud.store.schema import metadata
from kktbridge.examples import example_packet

__all__ = ["RECEIPT_TEXT", "CloudProcess", "Shop", "Tenant", "admin", "encode_uri_component", "make_tenant",
           "receipt_packet", "reset_postgres"]

# The 1.2 example without its card payment (a cloud receipt is paid on the site), pretty-printed as a page's textarea.
RECEIPT_TEXT = json.dumps(json.loads(example_packet())[1:], ensure_ascii=False, indent=2) + "\n"


def encode_uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent."""
    return quote(text, safe="-_.!~*'()")


def receipt_packet(price: str = "11.00", name: str = "товар") -> str:
    """A one-line receipt as JSON text (cash, no VAT), with the price as written."""
    return ('[{"name": "чек", "type": "kktReceiptFiscalization", "data": {"purchases": [{"productName_1030": "'
            + name + '", "price_1079": ' + price + ', "qty_1023": 1, "tax_1199": 6}], "payments": {"cash_1031": '
            + price + '}, "receiptType_1054": 1, "taxationType_1055": 1}}]')


async def admin(url: str, *statements: str) -> None:
    """Run statements on a PostgreSQL server directly (create and drop test databases, empty tables)."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def reset_postgres(url: str) -> None:
    """Migrate the test database (on first use) and empty every table."""
    tables = ", ".join(table.name for table in metadata.sorted_tables)

    async def empty() -> None:
        store = await Store.open(url)
        await store.close()
        await admin(url, f"TRUNCATE {tables} RESTART IDENTITY CASCADE")

    asyncio.run(empty())


class CloudProcess:
    """`kktbridge cloud` as a process of its own on a database; `url` once it listens. Its log goes to a file, so a
    chatty process never blocks on a full pipe."""

    def __init__(self, db: str, *args: str) -> None:
        self.args = [sys.executable, "-m", "kktbridge", "cloud", "--db", db, "--listen", "127.0.0.1:0", *args]
        self.process: subprocess.Popen | None = None
        self.url = ""
        self._log = tempfile.TemporaryFile(mode="w+")

    def start(self) -> CloudProcess:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the cloud did not start: {self.log()}")
        self.url = json.loads(line)["url"]
        return self

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> str:
        """SIGTERM (unless it is dead already), then its log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process.stdout.close()
        log = self.log()
        self._log.close()
        return log


@dataclass
class Tenant:
    account: AccountRecord
    driver: DriverRecord
    driver_key: str
    register: DeviceRecord
    token: str
    terminal: DeviceRecord
    terminal_token: str
    login: str | None = None  # a cabinet user, made by `add_user` (an argon2 hash costs a good part of a second)
    password: str | None = None

    @property
    def id(self) -> int:
        return self.account.id

    @property
    def secrets(self) -> list[str]:
        a = self.account
        return [a.integrity_code, a.api_secret, a.webhook_secret, self.driver_key, self.token,
                *([self.password] if self.password else [])]

    async def add_user(self, store: Store) -> Tenant:
        self.login = f"user{self.id}@example.ru"
        _, self.password = await add_user(store, self.id, self.login)
        return self


async def make_tenant(store: Store, name: str, *, user: bool = False) -> Tenant:
    account = (await create_account(store, name)).account
    driver, key = await add_driver(store, account.id, f"ПК {name}")
    register, token = await add_device(store, driver.id, "atol", name=f"Касса {name}")
    terminal, terminal_token = await add_device(store, driver.id, "arcus")
    tenant = Tenant(account, driver, key, register, token, terminal, terminal_token)
    return await tenant.add_user(store) if user else tenant


class Shop:
    def __init__(self, service: CloudService | None, url: str, tenants: list[Tenant]) -> None:
        self.service, self.url, self.tenants = service, url, tenants
        self.store = service.store if service is not None else None
        self.http = aiohttp.ClientSession()
        self.answers: list[str] = []  # every body the cloud answered with, to look for leaked secrets

    @classmethod
    async def create(cls, service: CloudService) -> Shop:
        tenants = [await make_tenant(service.store, name) for name in ("Магазин А", "Магазин Б")]
        return cls(service, service.url, tenants)

    @property
    def a(self) -> Tenant:
        return self.tenants[0]

    @property
    def b(self) -> Tenant:
        return self.tenants[1]

    async def close(self) -> None:
        await self.http.close()

    async def add_users(self) -> None:
        """A cabinet user for each account (for the tests that sign in)."""
        for tenant in self.tenants:
            await tenant.add_user(self.store)

    # --- the vendor's form -------------------------------------------------------------------------------------

    def form(self, tenant: Tenant, order: str, text: str = RECEIPT_TEXT, *, encoding: str = "btoa",
             signed: str = "json", success: str = "", failed: str = "", prog_url: str | None = None,
             names: dict[str, str] | None = None, token: str | None = None, code: str | None = None) -> dict[str, str]:
        """The fields of create-receipt.php, signed as the vendor's pages sign them.

        encoding: btoa (base64 of encodeURIComponent, the vendor's), uri, base64, raw; signed: json (the raw JSON
        text, as the demos hash it) or data (the BIT_DATA value, as the docs word it); names: other spellings."""
        data = {"btoa": lambda: base64.b64encode(encode_uri_component(text).encode()).decode(),
                "uri": lambda: encode_uri_component(text),
                "base64": lambda: base64.b64encode(text.encode()).decode(),
                "raw": lambda: text}[encoding]()
        token = tenant.token if token is None else token
        middle = text if signed == "json" else data
        signature = hashlib.md5((str(tenant.id) + token + order + middle + success + failed
                                 + (tenant.account.integrity_code if code is None else code)).encode()).hexdigest()
        fields = {"BIT_ACCOUNT_ID": str(tenant.id), "BIT_KKT_TOKEN": token, "BIT_ORDER_ID": order, "BIT_DATA": data,
                  "BIT_SIGNATURE": signature}
        if success:
            fields["BIT_CALLBACK_SUCCESS"] = success
        if failed:
            fields["BIT_CALLBACK_FAILED"] = failed
        if prog_url is not None:
            fields["BIT_PROG_URL"] = prog_url
        names = names or {}
        return {names.get(key, key): value for key, value in fields.items()}

    async def post_form(self, fields: dict[str, str] | bytes | str, *, path: str = FORM_PATHS[0],
                        multipart: bool = False, headers: dict[str, str] | None = None):
        if multipart:
            data = aiohttp.FormData()
            for key, value in fields.items():
                data.add_field(key, value)
        else:
            data = fields
        async with self.http.post(self.url + path, data=data, headers=headers) as response:
            text = await response.text()
            self.answers.append(text)
            return response.status, json.loads(text), response.headers

    # --- the JSON API ------------------------------------------------------------------------------------------

    async def api(self, tenant: Tenant | None, method: str, path: str, body: Any = None, *,
                  headers: dict[str, str] | None = None, timestamp: int | None = None, secret: str | None = None,
                  raw: bytes | None = None, cookies: dict[str, str] | None = None):
        """A JSON API call signed with the tenant's API secret (unsigned when tenant is None)."""
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body, ensure_ascii=False).encode())
        out = {"Content-Type": "application/json"} if payload else {}
        if tenant is not None:
            stamp = str(int(time.time()) if timestamp is None else timestamp)
            signature = request_signature(tenant.account.api_secret if secret is None else secret, method, path,
                                          stamp, payload)
            out.update({"X-Kktbridge-Account": str(tenant.id), "X-Kktbridge-Timestamp": stamp,
                        "X-Kktbridge-Signature": f"sha256={signature}"})
        out.update(headers or {})
        async with self.http.request(method, yarl.URL(self.url + path, encoded=True), data=payload or None,
                                     headers=out, cookies=cookies) as response:
            text = await response.text()
            self.answers.append(text)
            return response.status, json.loads(text) if text else None, response.headers

    async def submit(self, tenant: Tenant, order: str, commands: Any = None, **extra):
        body = {"order_id": order, "kkt_token": tenant.token,
                "commands": json.loads(RECEIPT_TEXT) if commands is None else commands, **extra}
        return await self.api(tenant, "POST", "/api/v1/receipts", body)
