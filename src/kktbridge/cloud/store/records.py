"""What the store hands out and takes in: plain frozen records, never rows or sessions.

A record is built from a row by `from_row`; nothing outside the store sees SQLAlchemy. Secrets appear only on the
records that must carry them (an account's keys, for the code that checks signatures), and `__repr__` hides
them, so a record in a log line or a traceback shows no secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from ...bitapi import loads
from ..states import State

__all__ = [
    "AccountRecord",
    "DeviceRecord",
    "DriverRecord",
    "NewReceipt",
    "ReceiptRecord",
    "SessionRecord",
    "Submitted",
    "UserRecord",
]

_SECRET = {"repr": False}


def _from_row(cls, row: Any, **extra):
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls) if f.name in mapping and f.name not in extra}, **extra)


class _FromRow:
    """A record made from a row whose columns carry its fields' names."""

    @classmethod
    def from_row(cls, row: Any):
        return _from_row(cls, row)


@dataclass(frozen=True)
class AccountRecord:
    id: int
    name: str
    created_at: datetime
    integrity_code: str = field(**_SECRET)
    api_secret: str = field(**_SECRET)
    webhook_secret: str = field(**_SECRET)
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Any) -> AccountRecord:
        return _from_row(cls, row, allowed_origins=tuple(json.loads(row._mapping["allowed_origins"] or "[]")))


@dataclass(frozen=True)
class UserRecord(_FromRow):
    id: int
    account_id: int
    login: str
    created_at: datetime
    password_hash: str = field(**_SECRET)


@dataclass(frozen=True)
class SessionRecord(_FromRow):
    user_id: int
    account_id: int
    login: str
    created_at: datetime
    expires_at: datetime
    csrf_token: str = field(**_SECRET)


@dataclass(frozen=True)
class DriverRecord(_FromRow):
    id: int
    account_id: int
    name: str
    created_at: datetime
    link: str | None = None  # ws | poll while linked, None while offline (written by cloud.link)
    node: str | None = None  # the cloud node holding the link
    seen_at: datetime | None = None  # its last message
    version: str | None = None  # the driver's version, as it said


@dataclass(frozen=True)
class DeviceRecord(_FromRow):
    id: int
    account_id: int
    driver_id: int
    kind: str
    name: str
    created_at: datetime
    status: dict | None = None  # the driver's last report: online, shiftOpen, shiftNumber, fnNumber, fnExpiry, …
    status_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> DeviceRecord:
        return _from_row(cls, row, status=cls.parse_status(row._mapping.get("status")))

    @staticmethod
    def parse_status(text: str | None) -> dict | None:
        """The `status` column (the driver's report as JSON text) as a dict."""
        return loads(text) if text else None

    @property
    def role(self) -> str:
        """`kkt` (a register) or `bnk` (a bank terminal): which commands it runs."""
        return "bnk" if self.kind == "arcus" else "kkt"


@dataclass(frozen=True)
class NewReceipt:
    """A receipt that passed every check at intake, ready to be queued."""

    uuid: UUID
    account_id: int
    driver_id: int
    device_id: int
    device_name: str
    order_id: str
    idempotency_key: str | None
    source: str
    request_hash: str
    packet: str
    callback_success: str | None
    callback_failed: str | None
    prog_url: str | None
    created_at: datetime
    expires_at: datetime
    webhook_url: str | None = None  # the JSON API's webhook: the receipt view is POSTed there when it ends


@dataclass(frozen=True, kw_only=True)
class ReceiptRecord(NewReceipt):
    """A stored receipt: what was submitted, its place in the queue and where it is in its life."""

    id: int  # the queue position
    state: State
    delivered_at: datetime | None = None
    unknown_at: datetime | None = None
    finished_at: datetime | None = None
    lease_until: datetime | None = None
    leased_by: str | None = None
    deliveries: int = 0
    result: Any = None  # the BIT results (a JSON array, numbers as Decimal), once a driver reported them
    error: dict | None = None  # {code, ru, en, retryable} when the receipt failed as a whole

    @classmethod
    def from_row(cls, row: Any) -> ReceiptRecord:
        mapping = row._mapping
        return _from_row(cls, row, state=State(mapping["state"]),
                         result=loads(mapping["result"]) if mapping["result"] else None,
                         error=loads(mapping["error"]) if mapping["error"] else None)

    @classmethod
    def queued(cls, new: NewReceipt, id: int) -> ReceiptRecord:
        return cls(id=id, state=State.QUEUED, **{f.name: getattr(new, f.name) for f in fields(NewReceipt)})


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: a new receipt, the same request again, or a conflict with a stored one."""

    receipt: ReceiptRecord
    created: bool
    conflict: str | None = None  # "order_id" or "idempotency_key": that key holds another request
