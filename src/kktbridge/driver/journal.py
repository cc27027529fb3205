"""The driver's journal: every packet and every command, in SQLite (WAL). All SQL of the driver lives here.

The rule that makes "nothing lost, nothing doubled" hold: a command's row says `started` (and, for fiscal
documents, the register's last FD number before the fiscalizing command) *before* the device is told to act,
and `done` with its result after. After a crash, a `started` row is an outcome to ask the device about,
never a command to blindly repeat.

Only the `started` writes must be on disk before the driver goes on, so only they are fsynced
(synchronous=FULL); the others (a new packet, a result) are committed without waiting for the disk
(synchronous=NORMAL: safe against a killed process, and after a power cut they come back with the next fsync or
are rebuilt by asking the device, as the rule above says). In WAL each fsync also makes every earlier commit
durable. One fsync per receipt instead of three keeps the driver's overhead off the disk's latency.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
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
    status text not null,            -- pending | started | done | failed | skipped
    fd_before integer,               -- the register's last FD number just before the fiscalizing command
    result_json text,                -- the command's answer in BIT form
    started_at text,
    finished_at text,
    primary key (packet_id, idx)
);
"""


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


def _now() -> str:
    return datetime.now().isoformat(timespec="milliseconds")


class Journal:
    """One SQLite file; used from the event loop thread (each call is short)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        self._db.execute("pragma wal_autocheckpoint=0")  # folding the WAL into the file waits for the disk: see merge_wal
        self._durable = False
        self._db.execute("pragma busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.merge_wal()
        self._db.close()

    def merge_wal(self) -> None:
        """Fold the WAL into the database file (it fsyncs). The driver calls it from a thread now and then, so no
        request ever waits for it, as SQLite's automatic checkpoint inside a commit would make one wait."""
        with self._lock:
            self._db.execute("pragma wal_checkpoint(truncate)")

    def _write(self, statements: list[tuple[str, tuple]], *, durable: bool = False) -> None:
        """One transaction; `durable`: on disk (fsync) before returning."""
        with self._lock:
            if durable is not self._durable:
                self._db.execute(f"pragma synchronous={'full' if durable else 'normal'}")
                self._durable = durable
            self._db.execute("begin immediate")
            try:
                for sql, params in statements:
                    self._db.execute(sql, params)
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")

    # --- packets ---------------------------------------------------------------------------------------

    def create_packet(self, *, order_id: str | None, fingerprint: str, source: str, origin: str | None,
                      packet_json: str, commands: list[tuple[str, str, str | None]]) -> tuple[int, bool]:
        """A new packet with its commands, all `pending`, in one transaction; returns its id and whether its
        order id was used before for a different packet."""
        reused = bool(order_id) and self._db.execute(
            "select 1 from packets where order_id = ? and fingerprint != ? limit 1", (order_id, fingerprint)
        ).fetchone() is not None
        with self._lock:
            self._db.execute("begin immediate")
            try:
                cursor = self._db.execute(
                    "insert into packets (order_id, fingerprint, source, origin, received_at, status, packet_json,"
                    " order_reused) values (?, ?, ?, ?, ?, 'running', ?, ?)",
                    (order_id, fingerprint, source, origin, _now(), packet_json, int(reused)))
                packet_id = cursor.lastrowid
                self._db.executemany(
                    "insert into commands (packet_id, idx, name, type, device, status) values (?, ?, ?, ?, ?, 'pending')",
                    [(packet_id, idx, name, kind, device) for idx, (name, kind, device) in enumerate(commands)])
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")
        assert packet_id is not None
        return packet_id, reused

    def find(self, order_id: str, fingerprint: str) -> PacketRow | None:
        """The latest packet with this order id and content."""
        row = self._db.execute("select * from packets where order_id = ? and fingerprint = ? order by id desc limit 1",
                               (order_id, fingerprint)).fetchone()
        return _packet(row) if row else None

    def get(self, packet_id: int) -> PacketRow | None:
        row = self._db.execute("select * from packets where id = ?", (packet_id,)).fetchone()
        return _packet(row) if row else None

    def reopen(self, packet_id: int) -> None:
        self._write([("update packets set status = 'running', finished_at = null where id = ?", (packet_id,))])

    def count_replay(self, packet_id: int) -> None:
        self._write([("update packets set replays = replays + 1 where id = ?", (packet_id,))])

    def finish(self, packet_id: int, status: str, response: Any,
               last: tuple[int, str, dict[str, Any]] | None = None) -> None:
        """The packet's answer; with `last` = (idx, status, result), the last command's end in the same commit."""
        statements = [("update packets set status = ?, finished_at = ?, response_json = ? where id = ?",
                       (status, _now(), dumps(response), packet_id))]
        if last is not None:
            statements.insert(0, self._end(packet_id, *last))
        self._write(statements)

    def interrupted(self) -> list[PacketRow]:
        """Packets a crash left running."""
        return [_packet(r) for r in self._db.execute("select * from packets where status = 'running' order by id")]

    def recent(self, limit: int = 50) -> list[PacketRow]:
        return [_packet(r) for r in self._db.execute("select * from packets order by id desc limit ?", (limit,))]

    # --- commands --------------------------------------------------------------------------------------

    def commands(self, packet_id: int) -> list[CommandRow]:
        return [CommandRow(r["packet_id"], r["idx"], r["name"], r["type"], r["device"], r["status"], r["fd_before"],
                           loads(r["result_json"]) if r["result_json"] else None, r["started_at"])
                for r in self._db.execute("select * from commands where packet_id = ? order by idx", (packet_id,))]

    def start_command(self, packet_id: int, idx: int, fd_before: int | None = None) -> None:
        """Written, on disk, before the device acts; with `fd_before` when it is the checkpoint of a fiscal command."""
        self._write([("update commands set status = 'started', started_at = coalesce(started_at, ?),"
                      " fd_before = coalesce(?, fd_before) where packet_id = ? and idx = ?",
                      (_now(), fd_before, packet_id, idx))], durable=True)

    def end_command(self, packet_id: int, idx: int, status: str, result: dict[str, Any]) -> None:
        self._write([self._end(packet_id, idx, status, result)])

    @staticmethod
    def _end(packet_id: int, idx: int, status: str, result: dict[str, Any]) -> tuple[str, tuple]:
        return ("update commands set status = ?, result_json = ?, finished_at = ? where packet_id = ? and idx = ?",
                (status, dumps(result), _now(), packet_id, idx))

    def reset_command(self, packet_id: int, idx: int) -> None:
        """A started command the device says it never carried out: back to pending."""
        self._write([("update commands set status = 'pending', fd_before = null where packet_id = ? and idx = ?",
                      (packet_id, idx))])


def _packet(row: sqlite3.Row) -> PacketRow:
    return PacketRow(row["id"], row["order_id"], row["fingerprint"], row["source"], row["origin"], row["received_at"],
                     row["finished_at"], row["status"], row["packet_json"],
                     loads(row["response_json"]) if row["response_json"] else None, row["replays"],
                     bool(row["order_reused"]))
