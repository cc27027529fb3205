"""The cloud database: one schema for SQLite and PostgreSQL, described once with SQLAlchemy Core.

The Alembic migrations under `migrations/versions/` create exactly these tables; a test compares the two, so
this file and the migrations cannot drift apart. Times are stored in UTC (`UtcDateTime`). Secrets that the
service only has to recognise (passwords, driver keys, device tokens, session ids) are stored as hashes;
secrets it has to use (the form's integrity code, the API secret, the webhook secret) are stored as they are,
because an md5 or HMAC cannot be checked or made without them.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

__all__ = ["UtcDateTime", "accounts", "callback_attempts", "callbacks", "devices", "drivers", "metadata", "receipts",
           "sessions", "users"]


class UtcDateTime(TypeDecorator):
    """An aware datetime in, an aware UTC datetime out, on every database (SQLite keeps no time zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the cloud store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# A 64-bit key that is SQLite's rowid (autoincrementing) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
})

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # BIT_ACCOUNT_ID
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("integrity_code", sa.String(64), nullable=False),  # BIT_DATAINTEGRITY_CODE (md5 form signature)
    sa.Column("api_secret", sa.String(64), nullable=False),  # HMAC-SHA256 of JSON API requests
    sa.Column("webhook_secret", sa.String(64), nullable=False),  # HMAC-SHA256 of callbacks to the shop
    sa.Column("allowed_origins", sa.Text, nullable=False, server_default="[]"),  # JSON list of origins
    sa.Column("created_at", UtcDateTime, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("login", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),  # argon2id
    sa.Column("created_at", UtcDateTime, nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256 of the cookie's value
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
)

drivers = sa.Table(
    "drivers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the driver key
    sa.Column("created_at", UtcDateTime, nullable=False),
)

devices = sa.Table(
    "devices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("driver_id", sa.Integer, sa.ForeignKey("drivers.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # atol | mercury | arcus
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the 32-hex token
    sa.Column("created_at", UtcDateTime, nullable=False),
)

receipts = sa.Table(
    "receipts", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),  # the queue's order: claims go by id
    sa.Column("uuid", sa.Uuid, nullable=False, unique=True),  # the public receipt id
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("driver_id", sa.Integer, sa.ForeignKey("drivers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("order_id", sa.String(128), nullable=False),  # BIT_ORDER_ID / order_id: the shop's key
    sa.Column("idempotency_key", sa.String(255), nullable=True),  # the JSON API's Idempotency-Key
    sa.Column("source", sa.String(16), nullable=False),  # form | api (| courier)
    sa.Column("request_hash", sa.String(64), nullable=False),  # what "the same request" is compared by
    sa.Column("packet", sa.Text, nullable=False),  # the command list, JSON, as the driver will run it
    sa.Column("callback_success", sa.String(1024), nullable=True),
    sa.Column("callback_failed", sa.String(1024), nullable=True),
    sa.Column("prog_url", sa.String(1024), nullable=True),  # recorded, never fetched
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
    sa.Column("unknown_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("leased_by", sa.String(128), nullable=True),
    sa.Column("deliveries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("result", sa.Text, nullable=True),  # JSON: the BIT results, one per command
    sa.Column("error", sa.Text, nullable=True),  # JSON: {code, ru, en, retryable} when it failed as a whole
    sa.UniqueConstraint("account_id", "order_id"),
    sa.UniqueConstraint("account_id", "idempotency_key"),
    sa.Index(None, "driver_id", "state", "id"),  # claims: a driver's queued receipts in order
    sa.Index(None, "account_id", "id"),  # listing, newest first
    sa.Index(None, "state", "expires_at"),  # expiry
    sa.Index(None, "state", "lease_until"),  # leases running out
    sa.Index(None, "finished_at"),  # retention
)

# --- link: driver presence and device status (issue 13) ----------------------------------------------------
# Written by cloud.link as drivers connect and report; read by the cabinet. Columns added to `drivers` and
# `devices` (see migration 0002): drivers.link (ws | poll, NULL while offline), drivers.node (the cloud node that
# holds the link), drivers.seen_at (last message), drivers.version (the driver's version); devices.status (JSON:
# online, shiftOpen, shiftNumber, fnNumber, fnExpiry, ofdUnsent, paper, error) and devices.status_at.

for _table, _columns in (
        (drivers, (sa.Column("link", sa.String(8), nullable=True), sa.Column("node", sa.String(128), nullable=True),
                   sa.Column("seen_at", UtcDateTime, nullable=True),
                   sa.Column("version", sa.String(32), nullable=True))),
        (devices, (sa.Column("status", sa.Text, nullable=True), sa.Column("status_at", UtcDateTime, nullable=True)))):
    for _column in _columns:
        _table.append_column(_column)

# --- callbacks: deliveries to the shop and their attempts (issue 13) ----------------------------------------
# One `callbacks` row per POST the shop is owed (BIT_CALLBACK_SUCCESS / _FAILED, or the JSON API's webhook),
# made in the same transaction as the receipt's final move; each try is a `callback_attempts` row.

receipts.append_column(sa.Column("webhook_url", sa.String(1024), nullable=True))  # the JSON API's webhook

callbacks = sa.Table(
    "callbacks", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("receipt_id", BigId, sa.ForeignKey("receipts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # success | failed | webhook
    sa.Column("url", sa.String(1024), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # exactly what is posted (and signed)
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | delivered | gave_up | refused
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", UtcDateTime, nullable=True),  # when a pending callback is due
    sa.Column("lease_until", UtcDateTime, nullable=True),  # a node is posting it until then
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("resent_at", UtcDateTime, nullable=True),  # the account asked again: retries run 24 h from here
    sa.Index(None, "state", "next_at"),
)

callback_attempts = sa.Table(
    "callback_attempts", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("callback_id", BigId, sa.ForeignKey("callbacks.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("status", sa.Integer, nullable=True),  # the receiver's HTTP status; NULL when none came
    sa.Column("error", sa.Text, nullable=True),  # why it failed (timeout, refused address, status), or NULL
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

# --- cabinet: what the pages need beyond the above (issue 14) -----------------------------------------------
