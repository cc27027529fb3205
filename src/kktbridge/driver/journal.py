"""The driver's journal: every packet and every command, in SQLite (WAL). All SQL of the driver lives here.

The rule that makes "nothing lost, nothing doubled" hold: a command's row says `started` (with its checkpoint:
the register's last FD number before a fiscal document, the drawer's cash before a cash operation) *before*
the device is told to act, and its end after. A `started` row is an outcome to ask the device about, never a
command to repeat blindly; until it is resolved nothing else runs on that device (driver/reconcile.py). A row
answered with a fiscal document or a terminal operation records it as a claim (table `claims`), unique across the
journal, so one document can never answer two commands. A reversal of a card payment is journaled the same way:
`started` before the terminal is told, its end after.

Row states: pending → started → done | failed | abandoned; pending → skipped (an earlier command failed);
done → reversed (the payment came back, so a resend pays again). `abandoned`: the outcome could not be
established and the command is never repeated; its answer says so.

Writes run in one worker thread with their own connection, so neither SQLite nor an fsync ever blocks the event
loop; reads use a second connection on the loop's thread (WAL readers see every committed write). Only the
`started` writes must be on disk before the driver goes on, so only they are fsynced (synchronous=FULL); the
others are committed without waiting for the disk (synchronous=NORMAL: safe against a killed process; after a
power cut they come back with the next fsync or are rebuilt by asking the device, as the rule above says).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..bitapi import dumps, loads

__all__ = ["CommandRow", "Journal", "PacketRow"]

_SCHEMA = """
create table if not exists packets (
    id integer primary key,
    order_id text,
    fingerprint text not null,
    source text not null,
    origin text,
    received_at text not null,
    finished_at text,
    status text not null,            -- running | done | failed
    packet_json text not null,       -- the command list as sent (for the status page and resumption)
    response_json text,              -- the answer given
    replays integer not null default 0,
    order_reused integer not null default 0
);
create index if not exists packets_order on packets(order_id, fingerprint);
create table if not exists commands (
    packet_id integer not null references packets(id),
    idx integer not null,
    name text not null,
    type text not null,
    device text,
    status text not null,            -- see the module docstring
    fd_before integer,               -- the register's last FD number just before the fiscalizing command
    result_json text,                -- the command's answer in BIT form
    started_at text,
    finished_at text,
    primary key (packet_id, idx)
);
"""
# Versions 2 to 4: what each command would make, the cash checkpoint, claims, reversals, shift counters, and the
# indexes of what is looked for often: rows in doubt, packets left running.
_V2 = [
    "alter table commands add column expect_json text",  # what the command would make, for reconciliation
    "alter table commands add column cash_before integer",  # the drawer's cash just before a cash operation
    "alter table commands add column reversal text",  # started | done | failed: a card payment given back
    "alter table commands add column reversal_json text",
    "alter table commands add column reversal_at text",
    # each fiscal document / terminal operation a row was answered with, once across the journal
    "create table if not exists claims (claim text primary key, packet_id integer not null, idx integer not null)",
    "create index if not exists commands_open on commands(device, status)",
    # version 3: the shift counters beside the FD number, from registers that cannot read documents back
    "alter table commands add column counters_json text",
    # version 4: the rows in doubt by themselves, found on every packet without reading a device's whole history
    # (the index's terms are `_OPEN`'s, so that SQLite uses it; test_reconcile checks the plan)
    "create index if not exists commands_unsettled on commands(device)"
    " where status = 'started' or reversal = 'started'",
    "create index if not exists packets_running on packets(id) where status = 'running'",  # the status page's
    "create index if not exists claims_packet on claims(packet_id)",  # retention deletes a packet's claims
]
_VERSION = 4
_OPEN = "(c.status = 'started' or c.reversal = 'started')"


@dataclass(frozen=True)
class PacketRow:
    id: int
    order_id: str | None
    fingerprint: str
    source: str
    origin: str | None
    received_at: str
    finished_at: str | None
    status: str
    packet_json: str
    response: Any
    replays: int
    order_reused: bool


@dataclass(frozen=True)
class CommandRow:
    packet_id: int
    idx: int
    name: str
    type: str
    device: str | None
    status: str
    fd_before: int | None
    result: dict[str, Any] | None
    started_at: str | None = None
    expect: dict[str, Any] | None = None
    cash_before: int | None = None
    reversal: str | None = None
    reversal_result: dict[str, Any] | None = None
    reversal_at: str | None = None
    counters_before: dict[str, Any] | None = None  # ShiftCounters JSON, where the register cannot read documents


def _now() -> str:
    return datetime.now().isoformat(timespec="milliseconds")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("pragma busy_timeout=5000")
    return db


class Journal:
    """One SQLite file. Writes are coroutines (run in the journal's thread); reads are plain calls."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._writer = _connect(self.path)
        self._writer.execute("pragma journal_mode=wal")
        self._writer.execute("pragma synchronous=normal")
        self._writer.execute("pragma wal_autocheckpoint=0")  # folding the WAL waits for the disk: see merge_wal
        self._durable = False
        self._migrate()
        self._reader = _connect(self.path)
        self._closed = False

    def _migrate(self) -> None:
        db = self._writer
        version = db.execute("pragma user_version").fetchone()[0]
        if version >= _VERSION:
            return
        db.executescript(_SCHEMA)
        present = {row["name"] for row in db.execute("pragma table_info(commands)")}
        for statement in _V2:
            column = statement.split(" add column ")[1].split()[0] if " add column " in statement else None
            if column is None or column not in present:
                db.execute(statement)
        db.execute(f"pragma user_version={_VERSION}")

    def close(self) -> None:
        """Wait for the writes in flight, fold the WAL, close; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._thread.shutdown(wait=True)
        self._merge()
        self._writer.close()
        self._reader.close()

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def _merge(self) -> None:
        self._writer.execute("pragma wal_checkpoint(truncate)")

    async def merge_wal(self) -> None:
        """Fold the WAL into the database file (it fsyncs), in the journal's thread, so no request waits for it
        as SQLite's automatic checkpoint inside a commit would make one wait."""
        await self._run(self._merge)

    def _transaction(self, statements: list[tuple[str, tuple]], durable: bool) -> list[int | None]:
        """One transaction, in the journal's thread; `durable`: on disk (fsync) before returning."""
        db = self._writer
        if durable is not self._durable:
            db.execute(f"pragma synchronous={'full' if durable else 'normal'}")
            self._durable = durable
        db.execute("begin immediate")
        ids: list[int | None] = []
        try:
            for sql, params in statements:
                ids.append(db.execute(sql, params).lastrowid)
        except BaseException:
            db.execute("rollback")
            raise
        db.execute("commit")
        return ids

    async def _write(self, statements: list[tuple[str, tuple]], *, durable: bool = False) -> list[int | None]:
        return await self._run(self._transaction, statements, durable)

    # --- packets ---------------------------------------------------------------------------------------

    async def create_packet(self, *, order_id: str | None, fingerprint: str, source: str, origin: str | None,
                            packet_json: str,
                            commands: list[tuple[str, str, str | None, dict[str, Any] | None]]) -> tuple[int, bool]:
        """A new packet with its commands (name, type, device token, expectation), all `pending`, in one
        transaction; returns its id and whether its order id was used before for a different packet."""
        reused = bool(order_id) and self._reader.execute(
            "select 1 from packets where order_id = ? and fingerprint != ? limit 1", (order_id, fingerprint)
        ).fetchone() is not None
        return await self._run(self._create, order_id, fingerprint, source, origin, packet_json, commands, reused)

    def _create(self, order_id, fingerprint, source, origin, packet_json, commands, reused) -> tuple[int, bool]:
        db = self._writer
        db.execute("begin immediate")
        try:
            cursor = db.execute(
                "insert into packets (order_id, fingerprint, source, origin, received_at, status, packet_json,"
                " order_reused) values (?, ?, ?, ?, ?, 'running', ?, ?)",
                (order_id, fingerprint, source, origin, _now(), packet_json, int(reused)))
            packet_id = cursor.lastrowid
            db.executemany(
                "insert into commands (packet_id, idx, name, type, device, status, expect_json)"
                " values (?, ?, ?, ?, ?, 'pending', ?)",
                [(packet_id, idx, name, kind, device, dumps(expect) if expect is not None else None)
                 for idx, (name, kind, device, expect) in enumerate(commands)])
        except BaseException:
            db.execute("rollback")
            raise
        db.execute("commit")
        assert packet_id is not None
        return packet_id, reused

    def find(self, order_id: str, fingerprint: str) -> PacketRow | None:
        """The latest packet with this order id and content."""
        row = self._reader.execute(
            "select * from packets where order_id = ? and fingerprint = ? order by id desc limit 1",
            (order_id, fingerprint)).fetchone()
        return _packet(row) if row else None

    def get(self, packet_id: int) -> PacketRow | None:
        row = self._reader.execute("select * from packets where id = ?", (packet_id,)).fetchone()
        return _packet(row) if row else None

    async def reopen(self, packet_id: int) -> None:
        await self._write([("update packets set status = 'running', finished_at = null where id = ?", (packet_id,))])

    async def count_replay(self, packet_id: int) -> None:
        await self._write([("update packets set replays = replays + 1 where id = ?", (packet_id,))])

    async def finish(self, packet_id: int, status: str, response: Any, ends: list[tuple] = ()) -> None:
        """The packet's answer, with the ends of its last commands (see `end`) in the same commit."""
        statements = [statement for end in ends for statement in self._end(packet_id, *end)]
        statements.append(("update packets set status = ?, finished_at = ?, response_json = ? where id = ?",
                           (status, _now(), dumps(response), packet_id)))
        await self._write(statements)

    def interrupted(self) -> list[PacketRow]:
        """Packets a crash left running."""
        return [_packet(r) for r in self._reader.execute("select * from packets where status = 'running' order by id")]

    def recent(self, limit: int = 50) -> list[PacketRow]:
        return [_packet(r) for r in self._reader.execute("select * from packets order by id desc limit ?", (limit,))]

    # --- commands --------------------------------------------------------------------------------------

    def commands(self, packet_id: int) -> list[CommandRow]:
        return [_command(r) for r in self._reader.execute(
            "select * from commands where packet_id = ? order by idx", (packet_id,))]

    def open_commands(self, device: str | None = None) -> list[CommandRow]:
        """Commands whose outcome a stop left unknown (or a reversal in flight), oldest first; of one device."""
        where = "" if device is None else " and c.device = ?"
        return [_command(r) for r in self._reader.execute(
            f"select c.* from commands c where {_OPEN}{where} order by c.packet_id, c.idx",
            () if device is None else (device,))]

    def devices_in_doubt(self) -> set[str]:
        return {r[0] for r in self._reader.execute(f"select distinct c.device from commands c where {_OPEN}")
                if r[0] is not None}

    def claimed(self, claims: list[str]) -> set[str]:
        """Which of these documents / operations some row is already answered with."""
        if not claims:
            return set()
        marks = ",".join("?" * len(claims))
        return {r[0] for r in self._reader.execute(f"select claim from claims where claim in ({marks})", claims)}

    async def start_command(self, packet_id: int, idx: int, *, fd_before: int | None = None,
                            cash_before: int | None = None, counters_before: dict[str, Any] | None = None) -> None:
        """Written, on disk, before the device acts; with the checkpoint of a fiscal or cash command."""
        counters = dumps(counters_before) if counters_before is not None else None
        await self._write([("update commands set status = 'started', started_at = coalesce(started_at, ?),"
                            " fd_before = coalesce(?, fd_before), cash_before = coalesce(?, cash_before),"
                            " counters_json = coalesce(?, counters_json) where packet_id = ? and idx = ?",
                            (_now(), fd_before, cash_before, counters, packet_id, idx))], durable=True)

    async def end_command(self, packet_id: int, idx: int, status: str, result: dict[str, Any] | None,
                          claim: str | None = None) -> None:
        await self._write(self._end(packet_id, idx, status, result, claim))

    @staticmethod
    def _end(packet_id: int, idx: int, status: str, result: dict[str, Any] | None,
             claim: str | None = None) -> list[tuple[str, tuple]]:
        """A command's end; `claim`: the document or operation it was answered with (a second claim of the same
        one by another row fails the transaction: one document never answers two commands)."""
        statements = [("update commands set status = ?, result_json = ?, finished_at = ? where packet_id = ? and"
                       " idx = ?", (status, dumps(result) if result is not None else None, _now(), packet_id, idx))]
        if claim is not None:
            statements.append(("insert into claims (claim, packet_id, idx) select ?, ?, ? where not exists (select 1"
                               " from claims where claim = ? and packet_id = ? and idx = ?)",
                               (claim, packet_id, idx, claim, packet_id, idx)))
        return statements

    async def reset_command(self, packet_id: int, idx: int) -> None:
        """A started command the device says it never carried out: back to pending, to run when sent again."""
        await self._write([("update commands set status = 'pending', fd_before = null, cash_before = null,"
                            " counters_json = null, started_at = null where packet_id = ? and idx = ?",
                            (packet_id, idx))])

    # --- reversals -------------------------------------------------------------------------------------

    async def start_reversal(self, packet_id: int, idx: int) -> None:
        """On disk before the terminal is told to give a payment back."""
        await self._write([("update commands set reversal = 'started', reversal_at = ? where packet_id = ? and"
                            " idx = ?", (_now(), packet_id, idx))], durable=True)

    async def end_reversal(self, packet_id: int, idx: int, approved: bool, result: dict[str, Any] | None,
                           claim: str | None = None) -> None:
        """The reversal's end; an approved one turns the payment row `reversed`, so a resend pays again."""
        statements = [("update commands set reversal = ?, reversal_json = ?, status = case when ? then 'reversed'"
                       " else status end where packet_id = ? and idx = ?",
                       ("done" if approved else "failed", dumps(result) if result is not None else None, approved,
                        packet_id, idx))]
        if claim is not None:
            statements.append(("insert into claims (claim, packet_id, idx) values (?, ?, ?)", (claim, packet_id, idx)))
        await self._write(statements)

    # --- retention -------------------------------------------------------------------------------------

    async def prune(self, keep: timedelta) -> int:
        """Forget packets finished longer than `keep` ago; never one with a command in doubt. Returns how many."""
        cutoff = (datetime.now() - keep).isoformat(timespec="milliseconds")
        return await self._run(self._prune, cutoff)

    def _prune(self, cutoff: str) -> int:
        old = (f"select p.id from packets p where p.finished_at is not null and p.finished_at < ? and not exists"
               f" (select 1 from commands c where c.packet_id = p.id and {_OPEN})")
        db = self._writer
        db.execute("begin immediate")
        try:
            ids = [row[0] for row in db.execute(old, (cutoff,))]
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                db.execute(f"delete from commands where packet_id in ({marks})", chunk)
                db.execute(f"delete from claims where packet_id in ({marks})", chunk)
                db.execute(f"delete from packets where id in ({marks})", chunk)
        except BaseException:
            db.execute("rollback")
            raise
        db.execute("commit")
        return len(ids)


def _packet(row: sqlite3.Row) -> PacketRow:
    return PacketRow(row["id"], row["order_id"], row["fingerprint"], row["source"], row["origin"], row["received_at"],
                     row["finished_at"], row["status"], row["packet_json"],
                     loads(row["response_json"]) if row["response_json"] else None, row["replays"],
                     bool(row["order_reused"]))


def _command(r: sqlite3.Row) -> CommandRow:
    return CommandRow(r["packet_id"], r["idx"], r["name"], r["type"], r["device"], r["status"], r["fd_before"],
                      loads(r["result_json"]) if r["result_json"] else None, r["started_at"],
                      loads(r["expect_json"]) if r["expect_json"] else None, r["cash_before"], r["reversal"],
                      loads(r["reversal_json"]) if r["reversal_json"] else None, r["reversal_at"],
                      loads(r["counters_json"]) if r["counters_json"] else None)
