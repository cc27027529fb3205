"""The driver's outbound link to the kktbridge cloud: receipts arrive the moment the shop posts them.

The driver connects out (no port forwarding): a WebSocket to `<url>/api/link`, or, where that is blocked, long
polls of `<url>/api/link/poll` (`via = "auto"` tries the WebSocket first), with `Authorization: Bearer <key>`.
It says which devices it has by the SHA-256 of their tokens (the cloud keeps only those hashes), then reports
their status every heartbeat. The rules of what comes in:
- a receipt runs through the same path as an HTTP packet: `admit()` with the register's token, then
  `executor.run(..., source="cloud")` under the order id `cloud:<receipt id>`. The executor journals it before
  the register is touched, and a resend of the same receipt (the cloud resends what it holds in doubt on every
  reconnect) is answered from the journal (a finished one whatever its age: a cloud receipt's id is never reused)
  or settled by asking the register: never printed twice;
- one register's receipts run one after another, in the order they came (one queue and worker per device);
- a receipt left in doubt (the register did not say whether it printed) is not reported: it is run again, which
  settles it, after a pause; the cloud keeps it open meanwhile;
- a receipt its register cannot print now (off or unreachable, out of paper, its cover open, busy) and of which
  nothing was carried out waits and is tried again (2 s doubling to 60 s, for up to a day), as a cashier would
  when the register is switched on in the morning; the register's later receipts wait behind it, in order;
- origins pushed by the cloud are applied at once, on top of the configuration's own.
Reconnects wait a jittered exponential backoff (0.5 s doubling to 30 s); several URLs are tried in turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import aiohttp

from .. import __version__
from ..bitapi import PacketError, dumps, loads
from ..devices.base import FiscalRegister
from ..fiscal import BridgeError, FormatError
from .config import CloudSettings
from .executor import CLOUD_ORDER_PREFIX
from .intake import admit

if TYPE_CHECKING:
    from .app import Driver
    from .registry import DeviceEntry

__all__ = ["CloudLink", "token_hash"]

log = logging.getLogger("kktbridge.driver.cloud")

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
IN_DOUBT_RETRY = 5.0  # seconds before a receipt left in doubt is run again (which settles it)
DEVICE_RETRY_FIRST, DEVICE_RETRY_MAX = 2.0, 60.0  # pauses before a receipt its register cannot print now is retried
DEVICE_PATIENCE = 24 * 3600.0  # seconds a cloud receipt waits for its register before it is reported failed
MAX_MESSAGE = 4 * 1024 * 1024
POLL_WAIT = 25  # seconds (whole: bitapi's writer takes no floats)
_ORIGIN = re.compile(r"https?://[^/\s]{1,253}/?")


def token_hash(token: str) -> str:
    """How the cloud knows a device: SHA-256 (hex) of its token, as cloud/credentials.py `digest` stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Rejected(Exception):
    """The cloud refused the driver's key: retried, slowly."""


class CloudLink:
    def __init__(self, driver: Driver, settings: CloudSettings) -> None:
        self.driver = driver
        self.settings = settings
        self.url = settings.url
        self.state = "connecting"
        self.via: str | None = None
        self.since = _stamp()
        self.last_error: dict[str, str] | None = None
        self.received = 0
        self.reported = 0
        self.origins: tuple[str, ...] = ()
        self.heartbeat = 5.0
        self._tokens = {token_hash(e.token): e.token for e in driver.registry.entries}
        self._queues: dict[str, asyncio.Queue] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._pending: set[str] = set()  # receipt ids queued or running here
        self.waiting: dict[str, dict[str, str]] = {}  # receipt id → why its register cannot print it now
        self._send = None  # the current transport's send, or None while offline
        self._session: aiohttp.ClientSession | None = None

    def describe(self) -> dict[str, Any]:
        """The "cloud" object of the status JSON."""
        return {"url": self.url, "state": self.state, "via": self.via, "since": self.since,
                "lastError": self.last_error, "received": self.received, "reported": self.reported,
                "origins": list(self.origins),
                "waiting": [{"id": receipt_id, **why} for receipt_id, why in self.waiting.items()]}

    def _set_state(self, state: str, error: tuple[str, str] | None = None) -> None:
        if state != self.state:
            self.state, self.since = state, _stamp()
        if error is not None:
            self.last_error = {"ru": error[0], "en": error[1]}
        elif state == "online":
            self.last_error = None

    # --- connecting ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay linked until cancelled."""
        delay = BACKOFF_FIRST
        attempt = 0
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10))
        try:
            while True:
                self.url = self.settings.urls[attempt % len(self.settings.urls)]
                attempt += 1
                self._set_state("connecting")
                started = time.monotonic()
                try:
                    await self._connect_once()
                    error = ("связь с облаком закрыта", "the link to the cloud closed")
                except _Rejected:
                    error = ("облако не приняло ключ драйвера: проверьте [cloud] key",
                             "the cloud refused the driver key: check [cloud] key")
                    delay = BACKOFF_MAX
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
                    error = (f"нет связи с облаком {self.url}: {type(exc).__name__}: {str(exc)[:200]}",
                             f"cannot reach the cloud {self.url}: {type(exc).__name__}: {str(exc)[:200]}")
                finally:
                    self._send = None
                self._set_state("offline", error)
                if time.monotonic() - started > 10:  # it was up a while: start the backoff again
                    delay = BACKOFF_FIRST
                wait = delay * random.uniform(0.5, 1.5)
                log.info("cloud link %s: %s; next try in %.1f s", self.url, error[1], wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, BACKOFF_MAX)
        finally:
            await self._session.close()
            for task in self._workers.values():
                task.cancel()

    async def _connect_once(self) -> None:
        via = self.settings.via
        if via in ("auto", "ws"):
            try:
                await self._websocket()
                return
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401:
                    raise _Rejected() from None
                if via == "ws":
                    raise
                log.info("cloud link %s: WebSocket refused (%s); long polling instead", self.url, exc.status)
        await self._poll()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.key}", "User-Agent": f"kktbridge/{__version__}"}

    def _hello(self) -> dict[str, Any]:
        return {"type": "hello", "version": __version__,
                "devices": [{"tokenHash": h} for h in self._tokens]}

    async def _websocket(self) -> None:
        assert self._session is not None
        async with self._session.ws_connect(self.url + "/api/link", headers=self._headers(), heartbeat=20,
                                            max_msg_size=MAX_MESSAGE, compress=0) as ws:
            async def send(message: dict[str, Any]) -> None:
                await ws.send_str(dumps(message))

            self.via = "ws"
            await send(self._hello())
            beat = asyncio.get_running_loop().create_task(self._beat(send))
            try:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        await self._message(message.data, send)
                    elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
            finally:
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)

    async def _poll(self) -> None:
        """Long polls: the driver's messages go out with each poll; the cloud answers with its own, numbered."""
        assert self._session is not None
        self.via = "poll"
        outgoing: list[dict[str, Any]] = [self._hello()]
        state = {"ack": 0, "session": None}
        flush = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            outgoing.append(message)
            flush.set()

        async def exchange(wait: float) -> None:
            body = {"messages": outgoing[:], "ack": state["ack"], "session": state["session"], "wait": wait}
            del outgoing[:len(body["messages"])]
            try:
                async with self._session.post(self.url + "/api/link/poll", data=dumps(body),
                                              headers={**self._headers(), "Content-Type": "application/json"},
                                              timeout=aiohttp.ClientTimeout(total=wait + 15)) as response:
                    if response.status == 401:
                        raise _Rejected()
                    if response.status != 200:
                        raise aiohttp.ClientResponseError(response.request_info, (), status=response.status,
                                                          message="poll refused")
                    answer = loads(await response.text())
            except BaseException:
                outgoing[:0] = body["messages"]  # not delivered: sent again with the next poll
                raise
            state["session"] = answer.get("session")
            for message in answer.get("messages", []):
                if message.get("type") == "rehello":
                    outgoing.insert(0, self._hello())
                    state["ack"] = 0
                    flush.set()
                    continue
                seq = message.get("seq", 0)
                if seq <= state["ack"]:
                    continue  # taken already by another poll
                state["ack"] = seq
                await self._handle(message, send)

        async def flusher() -> None:
            while True:
                await flush.wait()
                flush.clear()
                if outgoing:
                    await exchange(0)

        await exchange(0)
        beat = asyncio.get_running_loop().create_task(self._beat(send))
        sender = asyncio.get_running_loop().create_task(flusher())
        try:
            while True:
                poll = asyncio.ensure_future(exchange(POLL_WAIT))
                done, _ = await asyncio.wait({poll, sender}, return_when=asyncio.FIRST_COMPLETED)
                if sender in done:
                    poll.cancel()
                    sender.result()  # raises what broke it
                poll.result()
        finally:
            for task in (beat, sender):
                task.cancel()
            await asyncio.gather(beat, sender, return_exceptions=True)

    # --- what the cloud says --------------------------------------------------------------------------------

    async def _message(self, text: str, send) -> None:
        try:
            message = loads(text)
        except FormatError:
            log.warning("cloud link: a message that is not JSON ignored")
            return
        if isinstance(message, dict):
            await self._handle(message, send)

    async def _handle(self, message: dict[str, Any], send) -> None:
        kind = message.get("type")
        if kind == "welcome":
            heartbeat = message.get("heartbeat")
            if isinstance(heartbeat, (int, float)) and 0.05 <= heartbeat <= 60:
                self.heartbeat = float(heartbeat)
            self._send = send
            self._set_state("online")
            unknown = message.get("unknownDevices") or []
            if unknown:
                log.warning("cloud link: %d device(s) of this driver are not registered in the cloud", len(unknown))
            log.info("linked to the cloud %s (%s) as driver %s", self.url, self.via, message.get("driverId"))
        elif kind == "receipt":
            self._receipt(message)
        elif kind == "origins":
            origins = message.get("origins")
            if isinstance(origins, list):
                self.origins = tuple(o.lower().rstrip("/") for o in origins[:1000]
                                     if isinstance(o, str) and _ORIGIN.fullmatch(o))
                self.driver.apply_origins(self.origins)
                log.info("cloud link: allowed origins from the cabinet: %s", ", ".join(self.origins) or "none")
        elif kind == "ack":
            if message.get("state") is not None:
                self.reported += 1
        elif kind == "error":
            log.warning("cloud link: the cloud refused a message: %s", message.get("en"))

    def _receipt(self, message: dict[str, Any]) -> None:
        receipt_id = str(message.get("id", ""))
        self.received += 1
        if receipt_id in self._pending:
            return  # queued or running here already: its result goes out when it ends
        token = self._tokens.get(message.get("device"))
        self._pending.add(receipt_id)
        key = token or ""
        self._queues.setdefault(key, asyncio.Queue()).put_nowait(message)
        worker = self._workers.get(key)
        if worker is None or worker.done():
            self._workers[key] = asyncio.get_running_loop().create_task(self._worker(key))

    async def _worker(self, token: str) -> None:
        queue = self._queues[token]
        while True:
            message = await queue.get()
            receipt_id = str(message.get("id", ""))
            try:
                report = await self._run(message, token)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: the receipt stays open in the cloud and is resent on the next connect
                log.exception("cloud receipt %s failed inside the driver", receipt_id)
                report = None
            finally:
                self._pending.discard(receipt_id)
            if report is not None and self._send is not None:
                try:
                    await self._send(report)
                except Exception as exc:  # the cloud resends it on the next connect; the journal answers then
                    log.info("cloud receipt %s: result not sent (%s)", receipt_id, type(exc).__name__)

    async def _run(self, message: dict[str, Any], token: str) -> dict[str, Any]:
        """Run one cloud receipt through the same path as an HTTP packet; the `result` message to send."""
        receipt_id = str(message.get("id", ""))
        packet_text = message.get("packet")
        if not token:
            error = BridgeError("unknown_device", "этой кассы нет в настройках драйвера",
                                "this register is not in the driver's configuration")
            return _report(receipt_id, "failed", None, error)
        order_id = CLOUD_ORDER_PREFIX + receipt_id
        headers = [("BIT_KKT_TOKEN", token), ("BIT_ORDER_ID", order_id)]
        try:
            admitted = admit(self.driver.registry, headers,
                             packet_text.encode("utf-8") if isinstance(packet_text, str) else b"",
                             token_required=True)
        except PacketError as exc:
            return _report(receipt_id, "failed", None, exc)
        prior = self.driver.journal.find(order_id, admitted.packet.fingerprint)
        if prior is not None and prior.status in ("done", "failed") and not self._open(prior.id) and not (
                prior.status == "failed" and passing_trouble(prior.response)):
            # A finished one (done, or failed for good as the cloud may not have heard) is answered as it ended;
            # the executor would run a failed packet again. One that was waiting for its register waits on.
            log.info("cloud receipt %s answered again from the journal (packet %d)", receipt_id, prior.id)
            return _report(receipt_id, prior.status, prior.response, None)
        started = time.perf_counter()
        pause = DEVICE_RETRY_FIRST
        try:
            while True:
                outcome = await self.driver.executor.run(admitted.packet, admitted.devices, source="cloud")
                if outcome.packet_id is not None and self._open(outcome.packet_id):
                    log.warning("cloud receipt %s: the register left its outcome in doubt; asking again in %g s",
                                receipt_id, IN_DOUBT_RETRY)
                    await asyncio.sleep(IN_DOUBT_RETRY)
                    continue
                why = None if outcome.ok else passing_trouble(outcome.response)
                if why is None or time.perf_counter() - started + pause > DEVICE_PATIENCE:
                    break
                if receipt_id not in self.waiting:
                    log.warning("cloud receipt %s waits for its register (%s); tried again until it prints",
                                receipt_id, why["en"])
                self.waiting[receipt_id] = why
                await asyncio.sleep(pause)
                pause = min(pause * 2, DEVICE_RETRY_MAX)
        finally:
            self.waiting.pop(receipt_id, None)
        log.info("cloud receipt %s: %s%s in %.1f ms (device %.1f ms)", receipt_id, "done" if outcome.ok else "failed",
                 " (from the journal)" if outcome.replayed else "", (time.perf_counter() - started) * 1000,
                 outcome.device_seconds * 1000)
        return _report(receipt_id, "done" if outcome.ok else "failed", outcome.response, None)

    def _open(self, packet_id: int) -> bool:
        """Whether a command of this packet is still in doubt (the register has not said what became of it)."""
        return any(row.packet_id == packet_id for row in self.driver.journal.open_commands())

    # --- heartbeat ----------------------------------------------------------------------------------------------

    async def _beat(self, send) -> None:
        """Every heartbeat: each device's status (a busy one is not asked: its last state is reported)."""
        from .status import _device

        while True:
            devices = []
            for entry in self.driver.registry.entries:
                devices.append({"tokenHash": token_hash(entry.token), "status": device_status(await _device(entry),
                                                                                             entry)})
            await send({"type": "status", "devices": devices})
            await asyncio.sleep(self.heartbeat)


def passing_trouble(response: Any) -> dict[str, str] | None:
    """Why a cloud receipt should wait and be tried again rather than fail: nothing of its packet was carried out,
    and each command that failed failed for a reason that passes (every `retryable` device error: the register off
    or unreachable, out of paper, its cover open, busy). Its code and texts; None when the answer is final."""
    if not isinstance(response, list) or any(isinstance(r, dict) and "success" in r for r in response):
        return None
    failed = [r for r in response if isinstance(r, dict) and "error" in r and not r.get("skipped")]
    if not failed or not all(r.get("retryable") is True for r in failed):
        return None
    first = failed[0]
    return {"code": str(first.get("errorCode", "")), "ru": str(first.get("errorRu", "")),
            "en": str(first.get("errorEn", ""))}


def device_status(info: dict[str, Any], entry: DeviceEntry) -> dict[str, Any]:
    """What the cloud keeps of a device: online, shift, FN with its validity (null when the register does not say:
    Mercury's service does not), unsent OFD documents, paper, the last error; for a register also its receipt
    defaults and strictness from the config, with which the cloud reads the packets it takes for it (so that a
    receipt the till would print is not refused at submit time for a VAT rate the till fills in)."""
    status = info.get("status") or {}
    error = info.get("lastError")
    register = isinstance(entry.adapter, FiscalRegister)
    return {"online": bool(info.get("connected")), "busy": bool(info.get("busy")),
            "shiftOpen": status.get("shiftOpen") if register else None,
            "shiftNumber": status.get("shiftNumber") if register else None,
            "fnNumber": status.get("fnNumber") if register else None,
            "fnExpiry": status.get("fnValidUntil") if register else None,
            "ofdUnsent": status.get("unsentDocuments") if register else None,
            "paper": status.get("paper") if register else None,
            "error": {"code": error.get("code"), "ru": error.get("ru"), "en": error.get("en")} if error else None,
            "defaults": entry.config.defaults.to_json() if register else None,
            "strict": entry.config.strict if register else None}


def _report(receipt_id: str, outcome: str, result: Any, error: BridgeError | None) -> dict[str, Any]:
    return {"type": "result", "id": receipt_id, "outcome": outcome, "result": result,
            "error": None if error is None else {"code": error.code, "ru": error.ru, "en": error.en,
                                                 "retryable": error.retryable}}
