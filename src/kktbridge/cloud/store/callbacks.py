"""SQL of callbacks to the shop: deliveries, attempts, retries (issue 13).

A mixin of `Store`: its methods run on `self.engine` like the rest of the store, and live here so that each
concern's statements stay together.

The rules: a `callbacks` row is made in the same transaction as the receipt's final move (`_owe_callbacks`, called
by `Store._move`), so a receipt never ends without the POSTs it owes being on record; what each POST carries is
decided by `cloud.callbacks.owed`. A node takes due rows with a lease (`claim_callbacks`: FOR UPDATE SKIP LOCKED on
PostgreSQL, so two nodes never take one row), posts, and records the attempt and the row's next state in one
transaction (`record_attempt`). A row is `pending` (due at `next_at`), `delivered`, `gave_up` or `refused`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .schema import accounts, callback_attempts, callbacks, receipts

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .records import ReceiptRecord

__all__ = ["CallbackJob", "CallbackQueries", "CallbackRecord", "CallbackTry", "PENDING", "DELIVERED", "GAVE_UP",
           "REFUSED"]

PENDING, DELIVERED, GAVE_UP, REFUSED = "pending", "delivered", "gave_up", "refused"


@dataclass(frozen=True)
class CallbackJob:
    """A due callback a node has leased: what to post, where, and the key to sign it with."""

    id: int
    kind: str
    url: str
    body: str
    content_type: str
    attempts: int
    created_at: datetime
    resent_at: datetime | None
    receipt_uuid: uuid.UUID
    order_id: str
    secret: str = field(repr=False)  # the account's webhook secret

    @property
    def window_from(self) -> datetime:
        """Retries are counted from here (the first move, or the account's last resend)."""
        return self.resent_at or self.created_at


@dataclass(frozen=True)
class CallbackTry:
    at: datetime
    status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class CallbackRecord:
    id: int
    kind: str
    url: str
    state: str
    attempts: int
    next_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime
    tries: tuple[CallbackTry, ...] = ()


class CallbackQueries:
    """Mixed into `Store`."""

    engine: Any
    _callback_signal: asyncio.Event | None = None

    # --- made with the final move ----------------------------------------------------------------------------

    async def _owe_callbacks(self, c: AsyncConnection, records: list[ReceiptRecord], now: datetime) -> int:
        """Insert the callbacks these just-finished receipts owe, on the caller's transaction; how many."""
        from ..callbacks import owed  # the bodies are the API's views; imported here, the store stays below them

        rows = [{"receipt_id": record.id, "account_id": record.account_id, "kind": kind, "url": url, "body": body,
                 "content_type": content_type, "state": PENDING, "attempts": 0, "next_at": now, "created_at": now}
                for record in records for kind, url, body, content_type in owed(record)]
        if rows:
            await c.execute(callbacks.insert(), rows)
        return len(rows)

    def callback_signal(self) -> asyncio.Event:
        """Set whenever this process commits new due callbacks: the delivery worker waits on it."""
        if self._callback_signal is None:
            self._callback_signal = asyncio.Event()
        return self._callback_signal

    def _callbacks_added(self) -> None:
        if self._callback_signal is not None:
            self._callback_signal.set()

    # --- the delivery worker ---------------------------------------------------------------------------------

    async def claim_callbacks(self, *, lease: timedelta, limit: int = 16,
                              now: datetime) -> list[CallbackJob]:
        """Lease up to `limit` due callbacks, oldest due first. Rows leased by another node (or locked by one
        claiming right now, on PostgreSQL) are skipped, so no two nodes post one row."""
        due = sa.and_(callbacks.c.state == PENDING, callbacks.c.next_at <= now,
                      sa.or_(callbacks.c.lease_until.is_(None), callbacks.c.lease_until < now))
        pick = (sa.select(callbacks.c.id).where(due).order_by(callbacks.c.next_at, callbacks.c.id).limit(limit)
                .with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED"))
        statement = (callbacks.update().where(callbacks.c.id.in_(sa.select(pick.c.id)), due)
                     .values(lease_until=now + lease).returning(callbacks.c.id))
        async with self.engine.begin() as c:
            ids = [row.id for row in await c.execute(statement)]
            if not ids:
                return []
            rows = (await c.execute(
                sa.select(callbacks, accounts.c.webhook_secret, receipts.c.uuid.label("receipt_uuid"),
                          receipts.c.order_id)
                .join(accounts, accounts.c.id == callbacks.c.account_id)
                .join(receipts, receipts.c.id == callbacks.c.receipt_id)
                .where(callbacks.c.id.in_(ids)).order_by(callbacks.c.next_at, callbacks.c.id))).all()
        return [CallbackJob(id=r.id, kind=r.kind, url=r.url, body=r.body, content_type=r.content_type,
                            attempts=r.attempts, created_at=r.created_at, resent_at=r.resent_at,
                            receipt_uuid=r.receipt_uuid, order_id=r.order_id, secret=r.webhook_secret) for r in rows]

    async def record_attempt(self, callback_id: int, *, at: datetime, status: int | None, error: str | None,
                             duration_ms: int, state: str, next_at: datetime | None) -> None:
        """One try and the row's new state (pending again with `next_at`, or delivered, gave_up, refused)."""
        values: dict[str, Any] = {"attempts": callbacks.c.attempts + 1, "state": state, "next_at": next_at,
                                  "lease_until": None, "last_error": error}
        if state == DELIVERED:
            values["delivered_at"] = at
        async with self.engine.begin() as c:
            await c.execute(callback_attempts.insert().values(callback_id=callback_id, at=at, status=status,
                                                              error=error, duration_ms=duration_ms))
            await c.execute(callbacks.update().where(callbacks.c.id == callback_id).values(**values))

    # --- what the account sees and does ----------------------------------------------------------------------

    async def _receipt_id(self, c: AsyncConnection, account_id: int, receipt_uuid: uuid.UUID) -> int | None:
        row = (await c.execute(sa.select(receipts.c.id).where(receipts.c.account_id == account_id,
                                                              receipts.c.uuid == receipt_uuid))).first()
        return row.id if row else None

    async def callback_history(self, account_id: int, receipt_uuid: uuid.UUID) -> list[CallbackRecord] | None:
        """A receipt's callbacks with every try, oldest first; None when the account has no such receipt."""
        async with self.reads.connect() as c:
            receipt_id = await self._receipt_id(c, account_id, receipt_uuid)
            if receipt_id is None:
                return None
            rows = (await c.execute(sa.select(callbacks).where(callbacks.c.receipt_id == receipt_id)
                                    .order_by(callbacks.c.id))).all()
            tries = (await c.execute(
                sa.select(callback_attempts).where(callback_attempts.c.callback_id.in_([r.id for r in rows]))
                .order_by(callback_attempts.c.id))).all() if rows else []
        by_callback: dict[int, list[CallbackTry]] = {}
        for t in tries:
            by_callback.setdefault(t.callback_id, []).append(CallbackTry(t.at, t.status, t.error, t.duration_ms))
        return [CallbackRecord(id=r.id, kind=r.kind, url=r.url, state=r.state, attempts=r.attempts,
                               next_at=r.next_at, delivered_at=r.delivered_at, last_error=r.last_error,
                               created_at=r.created_at, tries=tuple(by_callback.get(r.id, ())))
                for r in rows]

    async def resend_callbacks(self, account_id: int, receipt_uuid: uuid.UUID, *,
                               now: datetime | None = None) -> int | None:
        """Post a receipt's callbacks again (whatever became of them), due now, with a fresh retry window; how
        many; None when the account has no such receipt."""
        from .store import utcnow

        now = now or utcnow()
        async with self.engine.begin() as c:
            receipt_id = await self._receipt_id(c, account_id, receipt_uuid)
            if receipt_id is None:
                return None
            done = await c.execute(callbacks.update().where(callbacks.c.receipt_id == receipt_id)
                                   .values(state=PENDING, next_at=now, resent_at=now))
        if done.rowcount:
            self._callbacks_added()
        return done.rowcount
