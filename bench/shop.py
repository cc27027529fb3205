"""A shop as real processes, seen from outside: the driver, emulated registers, the answers a client reads, and
the documents the registers' fiscal storage kept.

Every fact here comes from outside the driver: a process is started with the command a person types, killed
with SIGKILL (a crash of the driver, a power cut of a register) and started again on the same port with the same
files; answers are read over HTTP; documents from the emulators' journals; moments from the emulators' control
ports. Each receipt carries its order's marker as the buyer's contact (tag 1008): both emulators keep it in the
document's journal record, and it is no part of what identifies a receipt by content (kind, type, total,
payments, items), so orders with the same basket stay interchangeable for the driver and distinct for the count.

Shared by the crash campaign (bench/crash_campaign.py) and the scenario tests (tests/driver/test_exactly_once.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import tomli_w

from kktbridge.bitapi import dumps, loads
from kktbridge.emulators.control import send_control
from kktbridge.emulators.fncore import read_journal
from kktbridge.fiscal import kopecks_to_decimal

__all__ = [
    "BASKETS",
    "POWER_LOSS_AT_CLOSE",
    "PRINTING_CLOSE",
    "PRINTING_OPEN_SHIFT",
    "PRINTING_TEXT",
    "Driver",
    "Register",
    "Shop",
    "TerminalOperation",
    "Verdict",
    "agrees",
    "basket_total",
    "card_packet",
    "judge",
    "marker",
    "receipt_command",
    "receipts_by_marker",
    "terminal_operations",
    "wait_until",
]

# (name, price in kopecks, quantity) per line. Two baskets share a total (100.00) with different lines, a third
# has another total: many orders share items and totals, as in a shop.
BASKETS: tuple[tuple[tuple[str, int, str], ...], ...] = (
    (("Хлеб", 5000, "2"),),
    (("Молоко", 6000, "1"), ("Сыр", 4000, "1")),
    (("Кофе", 25000, "1"),),
)
FN_NUMBERS = {"atol": "9999078900012345", "mercury": "9999078900054321"}
# what the emulator's status shows as `printing` while a document prints (docs/devices/atol.md, mercury.md)
PRINTING_CLOSE = {"atol": "4a", "mercury": "CloseCheck"}
PRINTING_OPEN_SHIFT = {"atol": "9a", "mercury": "OpenShift"}
PRINTING_TEXT = {"atol": "4c", "mercury": "PrintText"}
POWER_LOSS_AT_CLOSE = {"atol": "4a", "mercury": "CloseCheck"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_until(check: Callable[[], Awaitable[Any] | Any], what: str, timeout: float = 20.0,
                     every: float = 0.01) -> Any:
    """Poll `check` (sync or async) until it returns something true; that value. AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout:g} s: {what}")
        await asyncio.sleep(every)


# --- packets ---------------------------------------------------------------------------------------------


def marker(order_id: str) -> str:
    """The order's marker, sent as the buyer's e-mail (1008)."""
    return f"o{order_id}@campaign.test"


def basket_total(basket: tuple[tuple[str, int, str], ...]) -> int:
    return sum(price * int(quantity) for _, price, quantity in basket)


def receipt_command(order_id: str, basket: tuple[tuple[str, int, str], ...], *, card: bool = False,
                    receipt_type: int = 1) -> dict[str, Any]:
    """kktReceiptFiscalization of this basket, paid in cash (or by card: electronically), printed."""
    total = kopecks_to_decimal(basket_total(basket))
    purchases = [{"productName_1030": name, "price_1079": kopecks_to_decimal(price), "qty_1023": int(quantity),
                  "tax_1199": 6, "paymentFormCode_1214": 4, "productTypeCode_1212": 1, "unit_2108": 0}
                 for name, price, quantity in basket]
    payments = {"ecash_1081": total} if card else {"cash_1031": total}
    return {"name": f"Чек {order_id}", "type": "kktReceiptFiscalization",
            "data": {"purchases": purchases, "payments": payments, "receiptType_1054": receipt_type,
                     "taxationType_1055": 0, "cashierName_1021": "Кассир Кампаниев",
                     "sendToEmail_1008": marker(order_id), "printDoc": True}}


def card_packet(order_id: str, basket: tuple[tuple[str, int, str], ...]) -> list[dict[str, Any]]:
    """A card payment of the basket's total, then its receipt (the API 1.2 example's shape)."""
    return [{"name": f"Оплата {order_id}", "type": "bnkCardPayment",
             "data": {"sum": kopecks_to_decimal(basket_total(basket))}},
            receipt_command(order_id, basket, card=True)]


# --- answers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a client makes of one HTTP exchange.

    outcome: `success` (every command succeeded), `refused` (a definitive failure: `retryable: false`), or
    `retry` (a connection error, an HTTP error, or a retryable error). `internal`: an `internal` error code
    or an HTTP 5xx. `answer`: the BIT JSON (None when there was none).
    """

    outcome: str
    reason: str
    answer: Any = None
    status: int | None = None
    internal: bool = False

    @property
    def definitive(self) -> bool:
        return self.outcome != "retry"

    def element(self, command_type: str) -> dict[str, Any] | None:
        """The answer's element for the first command of this type (e.g. kktReceiptFiscalization)."""
        if isinstance(self.answer, list):
            return next((e for e in self.answer if isinstance(e, dict) and e.get("type") == command_type), None)
        return None


def _internal(answer: Any) -> bool:
    elements = answer if isinstance(answer, list) else [answer]
    return any(isinstance(e, dict) and e.get("errorCode") == "internal" for e in elements)


def judge(status: int, body: bytes) -> Verdict:
    """The verdict on one HTTP answer of the driver (docs/result-format.md)."""
    try:
        answer = loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        answer = None
    internal = status >= 500 or _internal(answer)
    if status != 200 or answer is None:
        return Verdict("retry", f"http {status}", answer, status, internal)
    if isinstance(answer, dict):  # the packet could not run: {"result": false, ...}
        code = str(answer.get("errorCode", "result_false"))
        return Verdict("retry" if answer.get("retryable") else "refused", code, answer, status, internal)
    if not isinstance(answer, list) or not all(isinstance(e, dict) for e in answer):
        return Verdict("retry", "malformed answer", answer, status, internal)
    failed = next((e for e in answer if "success" not in e and not e.get("skipped")), None)
    if failed is None:
        if all("success" in e for e in answer):
            return Verdict("success", "ok", answer, status, internal)
        failed = next(e for e in answer if "success" not in e)
    code = str(failed.get("errorCode", "error"))
    # an error without `retryable` is taken as definitive: a client has nothing telling it to try again
    return Verdict("retry" if failed.get("retryable") else "refused", code, answer, status, internal)


def receipts_by_marker(journal: Path) -> dict[str | None, list[dict[str, Any]]]:
    """The receipts of an emulator's journal, grouped by the buyer contact they carry."""
    out: dict[str | None, list[dict[str, Any]]] = {}
    for record in read_journal(journal):
        if record.get("doc") == "receipt" and record.get("fd") is not None:
            out.setdefault((record.get("buyer") or {}).get("contact"), []).append(record)
    return out


def agrees(element: dict[str, Any] | None, document: dict[str, Any]) -> bool:
    """Does a receipt's answer name this document (FD number, fiscal sign, FN number)?"""
    return (element is not None and element.get("fdNumber_1040") == document["fd"]
            and str(element.get("fiscalSign_1077")) == str(document["fp"])
            and element.get("fnNumber_1041") == document["fn"])


# --- the bank terminal's own record ------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalOperation:
    """One line of the Arcus emulator's state file (arccom_emu.c: `op <seq> <P|R|C> <code> <amount> ...`)."""

    seq: int
    kind: str  # P purchase, R refund, C cancel
    code: str
    amount: int
    original: int
    voided: bool

    @property
    def rrn(self) -> str:
        return f"{self.seq:012d}"

    @property
    def approved(self) -> bool:
        return self.code == "00"


def terminal_operations(state_file: Path) -> list[TerminalOperation]:
    if not state_file.exists():
        return []
    out = []
    for line in state_file.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) >= 11 and parts[0] == "op":
            out.append(TerminalOperation(int(parts[1]), parts[2], parts[3], int(parts[4]), int(parts[5]),
                                         parts[9] == "1"))
    return out


# --- processes -------------------------------------------------------------------------------------------


def _spawn(args: list[str], stdout: Path | None, stderr: Path) -> subprocess.Popen:
    with open(stderr, "ab") as err, open(stdout or os.devnull, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "kktbridge", *args], stdout=out, stderr=err)


def _sigkill(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
    if process is not None:
        process.wait(10)


def _terminate(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            _sigkill(process)


@dataclass
class Register:
    """An emulated register process (`kktbridge emulate atol|mercury`) with its state and journal in `run_dir`.

    The first start takes free ports; every later start reuses them, as a register keeps its address.
    """

    kind: str
    run_dir: Path
    faults: dict[str, Any] = field(default_factory=dict)  # --fault switches at every start
    port: int = 0
    control_port: int = 0
    process: subprocess.Popen | None = None
    power_cuts: int = 0

    @property
    def journal(self) -> Path:
        return self.run_dir / f"{self.kind}.jsonl"

    @property
    def state(self) -> Path:
        return self.run_dir / f"{self.kind}.json"

    @property
    def stderr(self) -> Path:
        return self.run_dir / f"{self.kind}.stderr"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def device(self, token: str) -> dict[str, Any]:
        """The register's [[devices]] table in the driver's configuration."""
        if self.kind == "atol":
            return {"name": "АТОЛ", "kind": "atol", "token": token, "tcp": self.address, "vat": 6}
        return {"name": "Меркурий", "kind": "mercury", "token": token, "url": f"http://{self.address}/api.json",
                "port_name": "COM1", "vat": 6}

    async def start(self) -> None:
        """Start (or restart after a power cut) and wait for its ready line."""
        ready = self.run_dir / f"{self.kind}.ready"
        listen = "--tcp" if self.kind == "atol" else "--http"
        args = ["emulate", self.kind, listen, self.address, "--control", f"127.0.0.1:{self.control_port}",
                "--state", str(self.state), "--journal", str(self.journal), "--fn-number", FN_NUMBERS[self.kind],
                "--no-fsync"]  # a process killed keeps what it wrote in the OS cache: no fsync needed
        for name, value in self.faults.items():
            args += ["--fault", f"{name}={json.dumps(value)}"]
        for _ in range(100):  # a port just freed by a killed process may take a moment to bind again
            self.process = _spawn(args, ready, self.stderr)
            info = await self._ready_line(ready)
            if info is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"the {self.kind} emulator does not start; see {self.stderr}")
        where = info["tcp"] if self.kind == "atol" else urlsplit(info["url"]).netloc
        self.port = int(where.rsplit(":", 1)[1])
        self.control_port = int(info["control"].rsplit(":", 1)[1])

    async def _ready_line(self, ready: Path) -> dict[str, Any] | None:
        assert self.process is not None
        while True:
            text = ready.read_text(encoding="utf-8") if ready.exists() else ""
            if text.endswith("\n"):
                return json.loads(text)
            if self.process.poll() is not None:
                return None
            await asyncio.sleep(0.01)

    def cut_power(self) -> None:
        """SIGKILL: what the state file kept survives, an open receipt is lost."""
        _sigkill(self.process)
        self.power_cuts += 1

    def stop(self) -> None:
        _terminate(self.process)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """One control-port request; the answer carries the register's status."""
        return await send_control("127.0.0.1", self.control_port, request)

    async def printing(self, what: str) -> bool:
        """Is the register printing this document now (its `print_latency` running)?"""
        try:
            return (await self.control({"status": True})).get("printing") == what
        except (OSError, asyncio.TimeoutError):  # off, or starting
            return False

    def receipts(self, order_id: str) -> list[dict[str, Any]]:
        return receipts_by_marker(self.journal).get(marker(order_id), [])

    def documents(self, doc: str | None = None) -> list[dict[str, Any]]:
        return [r for r in read_journal(self.journal) if r.get("fd") is not None and (doc is None or r["doc"] == doc)]


@dataclass
class Driver:
    """`python -m kktbridge driver --config F` on a fixed port; its stderr appended to one file across restarts."""

    config: Path
    port: int
    stderr: Path
    process: subprocess.Popen | None = None
    kills: int = 0
    start_seconds: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def journal(self) -> Path:
        return self.config.parent / "journal.sqlite3"

    async def start(self) -> float:
        """Start and wait until it accepts connections; the seconds that took."""
        began = time.perf_counter()
        self.process = _spawn(["driver", "--config", str(self.config)], None, self.stderr)
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                break
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the driver exited with {self.process.returncode}; see {self.stderr}")
                if time.perf_counter() - began > 30:
                    raise RuntimeError(f"the driver does not listen; see {self.stderr}")
                await asyncio.sleep(0.005)
        seconds = time.perf_counter() - began
        self.start_seconds.append(seconds)
        return seconds

    def kill(self) -> None:
        _sigkill(self.process)
        self.kills += 1

    def stop(self) -> None:
        _terminate(self.process)

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace") if self.stderr.exists() else ""

    def tracebacks(self) -> int:
        return self.log().count("Traceback")

    def log_tail(self, lines: int = 30) -> str:
        """The end of its stderr, for an assertion's message."""
        return "\n".join(self.log().splitlines()[-lines:])

    def command_status(self, order_id: str, index: int | None = None) -> str | None:
        """What the driver's journal (read-only) says of an order: its packet's status, or with `index` that
        command's status; None while there is no row. The one place that knows the journal's tables."""
        query = ("select status from packets where order_id = ? order by id desc limit 1" if index is None else
                 "select c.status from commands c join packets p on p.id = c.packet_id"
                 " where p.order_id = ? and c.idx = ? order by p.id desc limit 1")
        try:
            with sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True, timeout=1) as db:
                row = db.execute(query, (order_id,) if index is None else (order_id, index)).fetchone()
        except sqlite3.OperationalError:  # not created yet, or locked for a moment
            return None
        return row[0] if row else None


class Shop:
    """The driver and its devices as processes in `run_dir`, and an HTTP client posting as a shop's page does."""

    def __init__(self, run_dir: Path, registers: list[Register], *, terminal: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        self.registers = {r.kind: r for r in registers}
        self.tokens = {kind: secrets.token_hex(16) for kind in self.registers}
        self.terminal = terminal
        if terminal is not None:
            self.tokens["arcus"] = secrets.token_hex(16)
        self.driver = Driver(run_dir / "kktbridge.toml", free_port(), run_dir / "driver.stderr")
        self.session: aiohttp.ClientSession | None = None

    @property
    def terminal_state(self) -> Path:
        return self.run_dir / "arcus.txt"

    async def start(self) -> None:
        for register in self.registers.values():
            await register.start()
        devices = [register.device(self.tokens[kind]) for kind, register in self.registers.items()]
        if self.terminal is not None:
            options = dict(self.terminal)
            emulator = {"state_file": str(self.terminal_state), "slip_file": str(self.run_dir / "cheq.out"),
                        **options.pop("emulator", {})}
            devices.append({"name": "Терминал", "kind": "arcus", "token": self.tokens["arcus"],
                            "emulator": emulator, **options})
        config = {"driver": {"listen": f"127.0.0.1:{self.driver.port}", "data_dir": str(self.run_dir)},
                  "devices": devices}
        self.driver.config.write_text(tomli_w.dumps(config), encoding="utf-8")
        await self.driver.start()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        self.driver.stop()
        for register in self.registers.values():
            register.stop()

    def headers(self, order_id: str, register: str, *, card: bool = False) -> dict[str, str]:
        headers = {"BIT_KKT_TOKEN": self.tokens[register], "BIT_ORDER_ID": order_id}
        if card:
            headers["BIT_BNK_TRM_TOKEN"] = self.tokens["arcus"]
        return headers

    async def post(self, order_id: str, packet: list[dict[str, Any]], register: str, *,
                   card: bool = False) -> Verdict:
        """One HTTP exchange; a connection error is a `retry` verdict, never an exception."""
        assert self.session is not None
        try:
            async with self.session.post(self.driver.url, data=dumps(packet).encode("utf-8"),
                                         headers=self.headers(order_id, register, card=card)) as response:
                return judge(response.status, await response.read())
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return Verdict("retry", f"connection: {type(exc).__name__}")

    async def answer(self, order_id: str, packet: list[dict[str, Any]], register: str, *, card: bool = False,
                     timeout: float = 20.0) -> Verdict:
        """The driver's first HTTP answer (connection errors are retried: a driver just started)."""
        deadline = time.monotonic() + timeout
        while True:
            verdict = await self.post(order_id, packet, register, card=card)
            if verdict.status is not None or time.monotonic() > deadline:
                return verdict
            await asyncio.sleep(0.02)

    async def until_definitive(self, order_id: str, packet: list[dict[str, Any]], register: str, *,
                               card: bool = False, timeout: float = 20.0, seen: list[Verdict] | None = None,
                               rng: random.Random | None = None) -> Verdict:
        """Post again (same order id, same packet) after a short pause until the answer is definitive; every
        verdict on the way goes into `seen`. AssertionError when none came within `timeout`."""
        rng = rng or random.Random(0)
        deadline = time.monotonic() + timeout
        while True:
            verdict = await self.post(order_id, packet, register, card=card)
            if seen is not None:
                seen.append(verdict)
            if verdict.definitive:
                return verdict
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id}: no definitive answer within {timeout:g} s; last: "
                                     f"{verdict.reason} {verdict.answer}")
            await asyncio.sleep(rng.uniform(0.02, 0.1))
