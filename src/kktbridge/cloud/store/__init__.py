"""The cloud's storage: the schema, its migrations and every SQL statement (SQLite by default, PostgreSQL to scale)."""

from .migrate import current_revision, head_revision, upgrade
from .records import (
    AccountRecord,
    DeviceRecord,
    DriverRecord,
    NewReceipt,
    ReceiptRecord,
    SessionRecord,
    Submitted,
    UserRecord,
)
from .store import MAX_ID, AlreadyExists, NotFound, Store, StoreError, is_unavailable, utcnow

__all__ = [
    "MAX_ID",
    "AccountRecord",
    "AlreadyExists",
    "DeviceRecord",
    "DriverRecord",
    "NewReceipt",
    "NotFound",
    "ReceiptRecord",
    "SessionRecord",
    "Store",
    "StoreError",
    "Submitted",
    "UserRecord",
    "current_revision",
    "head_revision",
    "is_unavailable",
    "upgrade",
    "utcnow",
]
