"""SQL of the driver link: presence, device status, leases renewed while a link lives, notes between nodes (issue 13).

A mixin of `Store`: its methods run on `self.engine` like the rest of the store, and live here so that each
concern's statements stay together.

- Presence: `linked` when a driver's link opens (drivers.link/node/seen_at/version), `seen` on every heartbeat,
  `unlinked` when it closes, only if this node still holds it (a driver that moved to another node stays online).
- Device status: `report_status` stores what the driver said of each device (devices.status JSON, status_at).
- Leases: `renew_leases` pushes the deadline of the receipts a live link holds; once the link is gone they run
  out and `lose_leases` (store.py) makes them unknown.
- Notes between nodes (PostgreSQL only): `notify` sends one, `listen` opens the dedicated connection that hears
  them. SQLite is one process, so it needs neither.

`account_changed(account_id)` is how the rest of the cloud says "this account's settings (allowed origins)
changed": every listener registered with `on_account_changed` is called, so the link can push the new
origins to the account's linked drivers at once. `receipt_queued(driver_id)` likewise tells the link that a
driver has a new receipt (the intake and the API call it after a submit is committed).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

__all__ = ["LinkQueries"]

log = logging.getLogger(__name__)

AccountListener = Callable[[int], Awaitable[None]]
QueueListener = Callable[[int], Awaitable[None]]


def _now() -> datetime:
    from .store import utcnow

    return utcnow()


class LinkQueries:
    """Mixed into `Store`."""

    _account_listeners: list[AccountListener]
    _queue_listeners: list[QueueListener]

    # --- signals inside the process --------------------------------------------------------------------------

    def on_account_changed(self, listener: AccountListener) -> None:
        """Call `listener(account_id)` whenever an account's settings change."""
        if not hasattr(self, "_account_listeners"):
            self._account_listeners = []
        self._account_listeners.append(listener)

    async def account_changed(self, account_id: int) -> None:
        """Tell the listeners that the account's settings changed (after the change is committed)."""
        self.forget(account_id)  # type: ignore[attr-defined]
        for listener in list(getattr(self, "_account_listeners", ())):
            try:
                await listener(account_id)
            except Exception:  # a listener's failure must not undo or hide a committed change
                log.exception("a listener of account %d's changes failed", account_id)

    def on_receipt_queued(self, listener: QueueListener) -> None:
        """Call `listener(driver_id)` whenever a receipt for that driver is queued."""
        if not hasattr(self, "_queue_listeners"):
            self._queue_listeners = []
        self._queue_listeners.append(listener)

    async def receipt_queued(self, driver_id: int) -> None:
        """Tell the listeners that a driver has a new queued receipt (after it is committed)."""
        for listener in list(getattr(self, "_queue_listeners", ())):
            try:
                await listener(driver_id)
            except Exception:  # the receipt is queued all the same; the link's rescan finds it
                log.exception("a listener of driver %d's queue failed", driver_id)

    # --- presence and device status --------------------------------------------------------------------------

    async def link_devices(self, driver_id: int, token_hashes: Iterable[str]) -> dict[str, int]:
        """Of the hashes a driver announced, those of its own devices: token hash → device id."""
        from .schema import devices

        hashes = [h for h in token_hashes if isinstance(h, str)]
        if not hashes:
            return {}
        async with self.reads.connect() as c:  # type: ignore[attr-defined]
            rows = (await c.execute(sa.select(devices.c.id, devices.c.token_hash).where(
                devices.c.driver_id == driver_id, devices.c.token_hash.in_(hashes)))).all()
        return {row.token_hash: row.id for row in rows}

    async def linked(self, driver_id: int, *, link: str, node: str, version: str | None,
                     now: datetime | None = None) -> None:
        from .schema import drivers

        async with self.engine.begin() as c:  # type: ignore[attr-defined]
            await c.execute(drivers.update().where(drivers.c.id == driver_id).values(
                link=link, node=node, version=(version or "")[:32] or None, seen_at=now or _now()))

    async def seen(self, driver_ids: Iterable[int], *, now: datetime | None = None) -> None:
        """The drivers' last message was now (one statement for every link of a node that spoke lately)."""
        from .schema import drivers

        ids = list(driver_ids)
        if not ids:
            return
        async with self.engine.begin() as c:  # type: ignore[attr-defined]
            await c.execute(drivers.update().where(drivers.c.id.in_(ids)).values(seen_at=now or _now()))

    async def unlinked(self, driver_id: int, *, node: str, now: datetime | None = None) -> None:
        """The link closed: offline, unless the driver is linked to another node by now."""
        from .schema import drivers

        async with self.engine.begin() as c:  # type: ignore[attr-defined]
            await c.execute(drivers.update().where(drivers.c.id == driver_id, drivers.c.node == node)
                            .values(link=None, seen_at=now or _now()))

    async def unlink_node(self, node: str) -> None:
        """Every driver this node held is offline (the node stops)."""
        from .schema import drivers

        async with self.engine.begin() as c:  # type: ignore[attr-defined]
            await c.execute(drivers.update().where(drivers.c.node == node).values(link=None))

    async def report_status(self, reports: dict[int, dict[str, Any]], *, now: datetime | None = None) -> None:
        """Store each device's last reported status (device id → the status object)."""
        from .schema import devices

        if not reports:
            return
        now = now or _now()
        async with self.engine.begin() as c:  # type: ignore[attr-defined]
            await c.execute(devices.update().where(devices.c.id == sa.bindparam("device")).values(
                status=sa.bindparam("text"), status_at=now),
                [{"device": device_id, "text": json.dumps(status, ensure_ascii=False)}
                 for device_id, status in reports.items()])

    # --- leases ------------------------------------------------------------------------------------------------

    async def renew_leases(self, receipt_uuids: Iterable[uuid.UUID], *, node: str, until: datetime) -> int:
        """Push the lease of receipts this node still holds (delivered, leased by it) to `until`."""
        from ..states import State
        from .schema import receipts

        ids = list(receipt_uuids)
        if not ids:
            return 0
        async with self.engine.begin() as c:  # type: ignore[attr-defined]
            done = await c.execute(receipts.update().where(
                receipts.c.uuid.in_(ids), receipts.c.state == State.DELIVERED.value, receipts.c.leased_by == node)
                .values(lease_until=until))
        return done.rowcount

    async def drivers_with_queued(self) -> set[int]:
        """The drivers that have receipts waiting (the link's rescan, in case a note was missed)."""
        from ..states import State
        from .schema import receipts

        async with self.reads.connect() as c:  # type: ignore[attr-defined]
            rows = (await c.execute(sa.select(receipts.c.driver_id).where(
                receipts.c.state == State.QUEUED.value).distinct())).all()
        return {row.driver_id for row in rows}

    # --- notes between nodes (PostgreSQL) ----------------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        """Send a note to every node listening on `channel` (nothing on SQLite: one process, no one to tell)."""
        if self.dialect != "postgresql":  # type: ignore[attr-defined]
            return
        async with self._autocommit.connect() as c:  # type: ignore[attr-defined]
            await c.execute(sa.select(sa.func.pg_notify(channel, payload)))

    async def listen(self, channels: Iterable[str], on_note: Callable[[str, str], None],
                     on_lost: Callable[[], None]):
        """A dedicated connection hearing `channels` (PostgreSQL only): `on_note(channel, payload)` for each note,
        `on_lost()` when the connection breaks. Returns the connection, to close."""
        import asyncpg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)  # type: ignore
        connection = await asyncpg.connect(url, timeout=10)
        connection.add_termination_listener(lambda _c: on_lost())
        for channel in channels:
            await connection.add_listener(channel, lambda _c, _pid, name, payload: on_note(name, payload))
        return connection
