"""Every SQL statement of the cloud: accounts, users, sessions, drivers, devices, and the receipt queue.

One class over one SQLAlchemy async engine serves SQLite (one process) and PostgreSQL (any number of stateless
processes on one database); the few places where they differ are marked. State moves of a receipt follow
`states.TRANSITIONS` and are each one conditional UPDATE, so concurrent nodes cannot both win a move. Every
query that a client's request leads to is scoped by the client's account id: a foreign id simply finds nothing.

The queue API that the driver link uses (issue 13): `claim` (queued → delivered, with a lease), `finish`
(delivered | unknown → done | failed, with the driver's result), `lose_leases` (delivered → unknown when a
lease runs out), `in_doubt` (what a reconnecting driver must report on), and `wait_final` / `wake` for a
request that waits for a result.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ...bitapi import dumps
from ...fiscal import BridgeError
from ..config import engine_url
from ..states import FINAL, State, sources, stamp_column
from .cabinet import CabinetQueries
from .callbacks import CallbackQueries
from .group_commit import GroupCommit
from .links import LinkQueries
from .migrate import upgrade
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
from .schema import accounts, devices, drivers, receipts, sessions, users

__all__ = ["AlreadyExists", "NotFound", "Store", "StoreError", "is_unavailable", "utcnow"]

MAX_ID = 2**31 - 1  # ids are 32-bit; a larger one from a client names nothing


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StoreError(BridgeError):
    pass


class NotFound(StoreError):
    def __init__(self, ru: str, en: str) -> None:
        super().__init__("not_found", ru, en)


class AlreadyExists(StoreError):
    def __init__(self, ru: str, en: str) -> None:
        super().__init__("already_exists", ru, en)


# SQLSTATE classes of a database that cannot serve now: connection (08), credentials (28), no such database (3D),
# out of resources (53), shutting down or starting (57P).
_UNAVAILABLE_STATES = ("08", "28", "3D", "53", "57P")


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached, dropped the connection or cannot serve now (a retry later may work)."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, OSError, ConnectionError,
                        asyncio.TimeoutError)):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return exc.connection_invalidated or (isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES))
    return False


def _valid_id(value: int) -> bool:
    return isinstance(value, int) and 0 < value <= MAX_ID


def _engine(url: str, pool_size: int) -> AsyncEngine:
    full = engine_url(url)
    parsed = sa.engine.make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has one writer anyway, and a single connection never meets "database is locked"
        # from itself; other processes (the operator's CLI) are waited for by the busy timeout.
        engine = create_async_engine(full, pool_size=1, max_overflow=0, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a committed receipt survives a power cut
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(full, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800,
                               connect_args={"timeout": 10, "command_timeout": 60})


_RECEIPT = sa.select(receipts, devices.c.name.label("device_name")).join(devices, devices.c.id == receipts.c.device_id)
_RECEIPT_BY_UUID = _RECEIPT.where(receipts.c.account_id == sa.bindparam("account_id"),
                                  receipts.c.uuid == sa.bindparam("uuid"))
# The same columns as `_RECEIPT`, for the RETURNING of a move: the device's name by a subquery (both engines).
_RECEIPT_RETURNED = (*receipts.c, sa.select(devices.c.name).where(devices.c.id == receipts.c.device_id)
                     .scalar_subquery().label("device_name"))
_SESSION = sa.select(sessions, users.c.login).join(users, users.c.id == sessions.c.user_id)
_ACCOUNT_AND_DEVICE = (
    sa.select(accounts, devices.c.id.label("device_id"), devices.c.driver_id, devices.c.kind,
              devices.c.name.label("device_name"), devices.c.created_at.label("device_created_at"),
              devices.c.status.label("device_status"))
    .select_from(accounts.outerjoin(devices, sa.and_(devices.c.account_id == accounts.c.id,
                                                     devices.c.token_hash == sa.bindparam("token_hash"))))
    .where(accounts.c.id == sa.bindparam("account_id")))
_NEW_COLUMNS = ("uuid", "account_id", "driver_id", "device_id", "order_id", "idempotency_key", "source", "request_hash",
                "packet", "callback_success", "callback_failed", "prog_url", "created_at", "expires_at", "webhook_url")
_UNNESTED = sa.func.unnest(*[sa.bindparam(name, type_=postgresql.ARRAY(receipts.c[name].type))
                             for name in (*_NEW_COLUMNS, "state")]).table_valued(*_NEW_COLUMNS, "state") \
    .render_derived(name="rows")
_INSERT_UNNESTED = (postgresql.insert(receipts)
                    .from_select([*_NEW_COLUMNS, "state"], sa.select(*[_UNNESTED.c[name] for name in
                                                                      (*_NEW_COLUMNS, "state")]))
                    .on_conflict_do_nothing().returning(receipts.c.id, receipts.c.uuid))


class _Move:
    """A state move's conditional UPDATE, built once: the rows its `where` matches that are in a state allowed
    to move to `target` get the target state, its timestamp (the `now` parameter) and `values`, and come back
    as `_RECEIPT` rows. Being one UPDATE, two nodes cannot both win a move."""

    def __init__(self, target: State, *where, **values) -> None:
        self.target = target
        self.statement = (receipts.update()
                          .where(*where, receipts.c.state.in_([s.value for s in sources(target)]))
                          .values(state=target.value, **{stamp_column(target): sa.bindparam("now")}, **values)
                          .returning(*_RECEIPT_RETURNED))


# A materialized CTE: PostgreSQL runs a plain `IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` subquery more than once
# in some plans, each run locking other rows, and so hands out more than `limit`.
_PICKED = (sa.select(receipts.c.id)
           .where(receipts.c.driver_id == sa.bindparam("for_driver"), receipts.c.state == State.QUEUED.value,
                  receipts.c.expires_at > sa.bindparam("now"))
           .order_by(receipts.c.id).limit(sa.bindparam("limit", type_=sa.Integer))
           .with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED"))
_CLAIM = _Move(State.DELIVERED, receipts.c.id.in_(sa.select(_PICKED.c.id)), lease_until=sa.bindparam("leased_until"),
               leased_by=sa.bindparam("node"), deliveries=receipts.c.deliveries + 1)
_FINISH = {target: _Move(target, receipts.c.uuid == sa.bindparam("receipt_uuid"),
                         receipts.c.driver_id == sa.bindparam("for_driver"), lease_until=None,
                         result=sa.bindparam("new_result"), error=sa.bindparam("new_error"))
           for target in (State.DONE, State.FAILED)}
_LOSE_LEASES = _Move(State.UNKNOWN, receipts.c.lease_until < sa.bindparam("now"))
_EXPIRE = _Move(State.EXPIRED, receipts.c.expires_at <= sa.bindparam("now"), error=sa.bindparam("new_error"))

LOOKUP_TTL = 5.0  # seconds an account with a device, once found, is served from memory


class _Waiter:
    """A request waiting for a receipt to become final: woken by `event`, given the record when this process made
    the move."""

    __slots__ = ("account_id", "event", "final")

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.event = asyncio.Event()
        self.final: ReceiptRecord | None = None


class Store(LinkQueries, CallbackQueries, CabinetQueries):
    """The cloud's database. `await Store.open(url)` migrates it and returns a store ready for use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._receipts: GroupCommit[NewReceipt, Submitted] = GroupCommit(
            self._insert_receipts, writers=1 if self.dialect == "sqlite" else 2)
        self._waiters: dict[uuid.UUID, set[_Waiter]] = {}
        self._lookups: TTLCache = TTLCache(maxsize=10_000, ttl=LOOKUP_TTL)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # Reads and single-statement writes: on PostgreSQL in autocommit, one round trip each instead of three
        # (BEGIN, the statement, ROLLBACK or COMMIT). Under READ COMMITTED a transaction gives a read nothing
        # more, as each statement sees its own snapshot anyway. SQLite has one connection: the engine as it is.
        self.reads = self._autocommit if self.dialect == "postgresql" else engine
        self._single = self._autocommit.connect if self.dialect == "postgresql" else engine.begin

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, pool_size: int = 5) -> Store:
        engine = _engine(url, pool_size)
        try:
            if migrate:
                await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self._receipts.close()
        await self.engine.dispose()

    # --- accounts --------------------------------------------------------------------------------------------

    async def create_account(self, name: str, *, integrity_code: str, api_secret: str, webhook_secret: str,
                             allowed_origins: Sequence[str] = (), now: datetime | None = None) -> AccountRecord:
        values = {"name": name, "integrity_code": integrity_code, "api_secret": api_secret,
                  "webhook_secret": webhook_secret, "allowed_origins": json.dumps(list(allowed_origins)),
                  "created_at": now or utcnow()}
        async with self.engine.begin() as c:
            row = (await c.execute(accounts.insert().values(**values).returning(*accounts.c))).one()
        return AccountRecord.from_row(row)

    async def accounts(self) -> list[AccountRecord]:
        async with self.reads.connect() as c:
            rows = (await c.execute(sa.select(accounts).order_by(accounts.c.id))).all()
        return [AccountRecord.from_row(row) for row in rows]

    async def account(self, account_id: int) -> AccountRecord | None:
        if not _valid_id(account_id):
            return None
        async with self.reads.connect() as c:
            row = (await c.execute(sa.select(accounts).where(accounts.c.id == account_id))).one_or_none()
        return AccountRecord.from_row(row) if row else None

    async def known_account(self, account_id: int) -> AccountRecord | None:
        """`account`, remembered like `account_and_device` (for LOOKUP_TTL, forgotten on `account_changed`): the
        signed JSON API's hot path, read on every request."""
        key = (account_id, None)
        found = self._lookups.get(key)
        if found is None:
            found = await self.account(account_id)
            if found is not None:
                self._lookups[key] = found
        return found

    async def account_and_device(self, account_id: int, token_hash: str) -> tuple[AccountRecord | None,
                                                                                  DeviceRecord | None]:
        """The account and its device with this token, in one round trip: the intake's hot path.

        A pair that was found is remembered for `LOOKUP_TTL` seconds. A change of an account's secrets or devices
        is followed by `account_changed`, which makes this process `forget` it at once and other nodes as soon
        as its note reaches them; a node that missed the note (its listening connection was down) sees it within
        LOOKUP_TTL. Misses are not remembered: a device added a moment ago is found by the next request.
        """
        if not _valid_id(account_id):
            return None, None
        key = (account_id, token_hash)
        found = self._lookups.get(key)
        if found is not None:
            return found
        async with self.reads.connect() as c:
            row = (await c.execute(_ACCOUNT_AND_DEVICE, {"account_id": account_id, "token_hash": token_hash})
                   ).one_or_none()
        if row is None:
            return None, None
        m = row._mapping
        device = None
        if m["device_id"] is not None:
            device = DeviceRecord(id=m["device_id"], account_id=account_id, driver_id=m["driver_id"], kind=m["kind"],
                                  name=m["device_name"], created_at=m["device_created_at"],
                                  status=DeviceRecord.parse_status(m["device_status"]))
        pair = (AccountRecord.from_row(row), device)
        if device is not None:
            self._lookups[key] = pair
        return pair

    def forget(self, account_id: int) -> None:
        """Drop what this process remembers of an account (after its secrets or devices change)."""
        for key in [key for key in self._lookups if key[0] == account_id]:
            self._lookups.pop(key, None)

    # --- users and sessions ----------------------------------------------------------------------------------

    async def add_user(self, account_id: int, login: str, password_hash: str, *,
                       now: datetime | None = None) -> UserRecord:
        async with self.engine.begin() as c:
            await self._require_account(c, account_id)
            taken = (await c.execute(sa.select(users.c.id).where(users.c.login == login))).first()
            if taken:
                raise AlreadyExists(f"логин «{login}» уже занят", f"the login '{login}' is taken")
            row = (await c.execute(users.insert().values(account_id=account_id, login=login,
                                                         password_hash=password_hash, created_at=now or utcnow())
                                   .returning(*users.c))).one()
        return UserRecord.from_row(row)

    async def user_by_login(self, login: str) -> UserRecord | None:
        async with self.reads.connect() as c:
            row = (await c.execute(sa.select(users).where(users.c.login == login))).one_or_none()
        return UserRecord.from_row(row) if row else None

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        async with self.engine.begin() as c:
            await c.execute(users.update().where(users.c.id == user_id).values(password_hash=password_hash))

    async def create_session(self, session_hash: str, user: UserRecord, csrf_token: str, *, expires_at: datetime,
                             now: datetime | None = None) -> SessionRecord:
        now = now or utcnow()
        async with self.engine.begin() as c:
            await c.execute(sessions.insert().values(id=session_hash, user_id=user.id, account_id=user.account_id,
                                                     csrf_token=csrf_token, created_at=now, expires_at=expires_at))
        return SessionRecord(user_id=user.id, account_id=user.account_id, login=user.login, created_at=now,
                             expires_at=expires_at, csrf_token=csrf_token)

    async def session(self, session_hash: str, *, now: datetime | None = None) -> SessionRecord | None:
        async with self.reads.connect() as c:
            row = (await c.execute(_SESSION.where(sessions.c.id == session_hash,
                                                  sessions.c.expires_at > (now or utcnow())))).one_or_none()
        return SessionRecord.from_row(row) if row else None

    async def delete_session(self, session_hash: str) -> bool:
        async with self.engine.begin() as c:
            return (await c.execute(sessions.delete().where(sessions.c.id == session_hash))).rowcount > 0

    async def delete_user_sessions(self, user_id: int) -> int:
        async with self.engine.begin() as c:
            return (await c.execute(sessions.delete().where(sessions.c.user_id == user_id))).rowcount

    # --- drivers and devices ---------------------------------------------------------------------------------

    async def add_driver(self, account_id: int, name: str, key_hash: str, *,
                         now: datetime | None = None) -> DriverRecord:
        async with self.engine.begin() as c:
            await self._require_account(c, account_id)
            row = (await c.execute(drivers.insert().values(account_id=account_id, name=name, key_hash=key_hash,
                                                           created_at=now or utcnow())
                                   .returning(*drivers.c))).one()
        return DriverRecord.from_row(row)

    async def drivers(self, account_id: int) -> list[DriverRecord]:
        async with self.reads.connect() as c:
            rows = (await c.execute(sa.select(drivers).where(drivers.c.account_id == account_id)
                                    .order_by(drivers.c.id))).all()
        return [DriverRecord.from_row(row) for row in rows]

    async def driver(self, account_id: int, driver_id: int) -> DriverRecord | None:
        if not _valid_id(driver_id):
            return None
        async with self.reads.connect() as c:
            row = (await c.execute(sa.select(drivers).where(drivers.c.id == driver_id,
                                                            drivers.c.account_id == account_id))).one_or_none()
        return DriverRecord.from_row(row) if row else None

    async def driver_by_key(self, key_hash: str) -> DriverRecord | None:
        """The driver a key belongs to (the link authenticates a driver by its key)."""
        async with self.reads.connect() as c:
            row = (await c.execute(sa.select(drivers).where(drivers.c.key_hash == key_hash))).one_or_none()
        return DriverRecord.from_row(row) if row else None

    async def add_device(self, driver_id: int, kind: str, name: str, token_hash: str, *,
                         now: datetime | None = None) -> DeviceRecord:
        async with self.engine.begin() as c:
            owner = None
            if _valid_id(driver_id):
                owner = (await c.execute(sa.select(drivers.c.account_id).where(drivers.c.id == driver_id))).first()
            if owner is None:
                raise NotFound(f"драйвера {driver_id} нет", f"there is no driver {driver_id}")
            taken = (await c.execute(sa.select(devices.c.id).where(devices.c.token_hash == token_hash))).first()
            if taken:
                raise AlreadyExists("устройство с таким токеном уже есть", "a device with this token exists already")
            row = (await c.execute(devices.insert().values(account_id=owner.account_id, driver_id=driver_id,
                                                           kind=kind, name=name, token_hash=token_hash,
                                                           created_at=now or utcnow())
                                   .returning(*devices.c))).one()
        return DeviceRecord.from_row(row)

    async def devices(self, account_id: int, *, driver_id: int | None = None) -> list[DeviceRecord]:
        query = sa.select(devices).where(devices.c.account_id == account_id)
        if driver_id is not None:
            query = query.where(devices.c.driver_id == driver_id)
        async with self.reads.connect() as c:
            rows = (await c.execute(query.order_by(devices.c.id))).all()
        return [DeviceRecord.from_row(row) for row in rows]

    async def device(self, account_id: int, device_id: int) -> DeviceRecord | None:
        if not _valid_id(device_id):
            return None
        async with self.reads.connect() as c:
            row = (await c.execute(sa.select(devices).where(devices.c.id == device_id,
                                                            devices.c.account_id == account_id))).one_or_none()
        return DeviceRecord.from_row(row) if row else None

    async def _require_account(self, c: AsyncConnection, account_id: int) -> None:
        found = _valid_id(account_id) and (
            await c.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id))).first()
        if not found:
            raise NotFound(f"аккаунта {account_id} нет", f"there is no account {account_id}")

    # --- receipts: intake and reading ------------------------------------------------------------------------

    async def submit(self, new: NewReceipt) -> Submitted:
        """Queue a receipt, committed before this returns; or the stored receipt under the same key."""
        return await self._receipts.submit(new)

    async def _insert_receipts(self, batch: list[NewReceipt]) -> list[Submitted]:
        """One atomic write for the batch: rows whose key is taken are skipped (ON CONFLICT DO NOTHING), then each of
        those finds what holds its key."""
        if self.dialect == "postgresql":
            # One statement over arrays (a third of the CPU of a multi-row VALUES), committed by itself: no BEGIN
            # and COMMIT round trips. The rows that follow only read.
            columns = {name: [getattr(n, name) for n in batch] for name in _NEW_COLUMNS}
            statement, parameters = _INSERT_UNNESTED, {**columns, "state": [State.QUEUED.value] * len(batch)}
        else:
            statement = self._insert(receipts).on_conflict_do_nothing().returning(receipts.c.id, receipts.c.uuid)
            parameters = [{**{name: getattr(n, name) for name in _NEW_COLUMNS}, "state": State.QUEUED.value}
                          for n in batch]
        async with self._single() as c:
            inserted = {row.uuid: row.id for row in await c.execute(statement, parameters)}
            out = []
            for new in batch:
                if new.uuid in inserted:
                    out.append(Submitted(ReceiptRecord.queued(new, inserted[new.uuid]), created=True))
                else:
                    out.append(await self._stored_under_same_key(c, new))
        return out

    async def _stored_under_same_key(self, c: AsyncConnection, new: NewReceipt) -> Submitted:
        same_key = receipts.c.order_id == new.order_id
        if new.idempotency_key is not None:
            same_key = sa.or_(same_key, receipts.c.idempotency_key == new.idempotency_key)
        rows = (await c.execute(_RECEIPT.where(receipts.c.account_id == new.account_id, same_key))).all()
        stored = [ReceiptRecord.from_row(row) for row in rows]
        by_key = next((r for r in stored if new.idempotency_key is not None
                       and r.idempotency_key == new.idempotency_key), None)
        if not stored:  # pragma: no cover - a conflict that left no row: only a uuid collision could do it
            raise StoreError("internal", "конфликт без записи", "a conflict without a stored row", retryable=True)
        record = by_key or stored[0]
        if record.request_hash == new.request_hash:
            return Submitted(record, created=False)
        return Submitted(record, created=False, conflict="idempotency_key" if by_key else "order_id")

    async def receipt(self, account_id: int, receipt_uuid: uuid.UUID) -> ReceiptRecord | None:
        async with self.reads.connect() as c:  # a statement built once: the waiting requests' hot path
            row = (await c.execute(_RECEIPT_BY_UUID, {"account_id": account_id, "uuid": receipt_uuid})).one_or_none()
        return ReceiptRecord.from_row(row) if row else None

    async def receipt_by_order(self, account_id: int, order_id: str) -> ReceiptRecord | None:
        return await self._one_receipt(receipts.c.account_id == account_id, receipts.c.order_id == order_id)

    async def _one_receipt(self, *where) -> ReceiptRecord | None:
        async with self.reads.connect() as c:
            row = (await c.execute(_RECEIPT.where(*where))).one_or_none()
        return ReceiptRecord.from_row(row) if row else None

    async def list_receipts(self, account_id: int, *, states: Iterable[State] = (), device_id: int | None = None,
                            driver_id: int | None = None, created_from: datetime | None = None,
                            created_to: datetime | None = None, before_id: int | None = None,
                            limit: int = 50) -> list[ReceiptRecord]:
        """An account's receipts, newest first; `before_id` (the last id of a page) gives the next page."""
        query = _RECEIPT.where(receipts.c.account_id == account_id)
        states = [state.value for state in states]
        if states:
            query = query.where(receipts.c.state.in_(states))
        if device_id is not None:
            query = query.where(receipts.c.device_id == device_id)
        if driver_id is not None:
            query = query.where(receipts.c.driver_id == driver_id)
        if created_from is not None:
            query = query.where(receipts.c.created_at >= created_from)
        if created_to is not None:
            query = query.where(receipts.c.created_at < created_to)
        if before_id is not None:
            query = query.where(receipts.c.id < before_id)
        async with self.reads.connect() as c:
            rows = (await c.execute(query.order_by(receipts.c.id.desc()).limit(limit))).all()
        return [ReceiptRecord.from_row(row) for row in rows]

    # --- receipts: the queue ---------------------------------------------------------------------------------

    async def claim(self, driver_id: int, *, node: str, lease: timedelta, limit: int = 1,
                    now: datetime | None = None) -> list[ReceiptRecord]:
        """Take up to `limit` of a driver's queued receipts, oldest first, each leased to `node` until now+lease.

        On PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED, so nodes claiming at once take different rows
        without waiting for each other; SQLite runs the statement alone. A receipt past its expiry is not taken.
        """
        now = now or utcnow()
        return await self._move(_CLAIM, now=now, for_driver=driver_id, limit=limit, leased_until=now + lease,
                                node=node)

    async def finish(self, receipt_uuid: uuid.UUID, target: State, *, driver_id: int, result: Any = None,
                     error: dict | None = None, now: datetime | None = None) -> ReceiptRecord | None:
        """A driver's outcome: delivered | unknown → done | failed. None when the receipt is not this driver's or
        is in no state to take it (finished already, or never delivered)."""
        if target not in (State.DONE, State.FAILED):
            raise ValueError(f"finish() moves to done or failed, not {target.value}")
        moved = await self._move(_FINISH[target], now=now, receipt_uuid=receipt_uuid, for_driver=driver_id,
                                 new_result=dumps(result) if result is not None else None,
                                 new_error=dumps(error) if error is not None else None)
        return moved[0] if moved else None

    async def lose_leases(self, *, now: datetime | None = None) -> list[ReceiptRecord]:
        """Delivered receipts whose lease ran out become unknown: they may have reached the register."""
        return await self._move(_LOSE_LEASES, now=now)

    async def expire_queued(self, *, now: datetime | None = None) -> list[ReceiptRecord]:
        """Queued receipts past their expiry become expired (reported as failed); they will never be sent."""
        error = {"code": "expired", "ru": "чек не был передан на кассу вовремя: драйвер не выходил на связь",
                 "en": "the receipt was not delivered in time: its driver did not connect", "retryable": False}
        return await self._move(_EXPIRE, now=now, new_error=dumps(error))

    async def in_doubt(self, driver_id: int) -> list[ReceiptRecord]:
        """A driver's delivered and unknown receipts, oldest first: what it must report on when it reconnects."""
        async with self.reads.connect() as c:
            rows = (await c.execute(_RECEIPT.where(
                receipts.c.driver_id == driver_id,
                receipts.c.state.in_([State.DELIVERED.value, State.UNKNOWN.value])).order_by(receipts.c.id))).all()
        return [ReceiptRecord.from_row(row) for row in rows]

    async def purge_finished(self, *, before: datetime) -> int:
        """Delete finished receipts (done, failed, expired) that finished before `before`: the retention."""
        async with self.engine.begin() as c:
            done = await c.execute(receipts.delete().where(receipts.c.state.in_([s.value for s in FINAL]),
                                                           receipts.c.finished_at < before))
        return done.rowcount

    async def purge_sessions(self, *, now: datetime | None = None) -> int:
        async with self.engine.begin() as c:
            return (await c.execute(sessions.delete().where(sessions.c.expires_at <= (now or utcnow())))).rowcount

    async def _move(self, move: _Move, *, now: datetime | None, **parameters) -> list[ReceiptRecord]:
        """One state move (`_Move`, its statement built once) for every receipt it matches.

        A receipt that becomes final gets the callbacks it owes the shop in the same transaction, so none is lost
        between the move and its delivery; the delivery worker of this process is woken once they are committed."""
        now = now or utcnow()
        target = move.target
        owed = 0
        # A move to a final state writes the callbacks it owes in the same transaction; any other is one statement.
        async with (self.engine.begin() if target.final else self._single()) as c:
            rows = await c.execute(move.statement, {"now": now, **parameters})
            moved = sorted((ReceiptRecord.from_row(row) for row in rows), key=lambda r: r.id)
            if target.final and moved:
                owed = await self._owe_callbacks(c, moved, now)
        if owed:
            self._callbacks_added()
        for record in moved:
            if record.state.final:
                self.wake(record.uuid, record)
        return moved

    # --- waiting for a result --------------------------------------------------------------------------------

    def wake(self, receipt_uuid: uuid.UUID, final: ReceiptRecord | None = None) -> None:
        """Tell the requests waiting on this receipt to look again (a note from another node), or hand them the
        `final` record this process has just committed, which they return without reading it back."""
        for waiter in self._waiters.get(receipt_uuid, ()):
            if final is not None and final.account_id == waiter.account_id:
                waiter.final = final
            waiter.event.set()

    async def wait_final(self, account_id: int, receipt_uuid: uuid.UUID, *, timeout: float,
                         poll: float = 3.0) -> ReceiptRecord | None:
        """The receipt once it is final, or as it stands when `timeout` runs out.

        A move made by this process wakes the wait at once with the moved record, and a driver's result taken by
        another node (the link's `kktbridge_final` note calls `wake`) makes it read again; any other process's
        move is seen by the next poll. The poll is slow on purpose: hundreds of waiting requests must not read
        the database several times a second.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = _Waiter(account_id)
        self._waiters.setdefault(receipt_uuid, set()).add(waiter)
        try:
            while True:
                waiter.event.clear()  # before reading: a wake while we read makes the wait below return at once
                record = await self.receipt(account_id, receipt_uuid)
                left = deadline - loop.time()
                if record is None or record.state.final or left <= 0:
                    return record
                try:
                    await asyncio.wait_for(waiter.event.wait(), min(poll, left))
                except asyncio.TimeoutError:
                    pass
                if waiter.final is not None:
                    return waiter.final
        finally:
            waiters = self._waiters.get(receipt_uuid)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[receipt_uuid]
