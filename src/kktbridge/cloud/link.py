"""The cloud's end of the driver link: receipts pushed to a linked driver the moment they are committed.

A driver opens `GET /api/link` (WebSocket) or, where WebSocket is blocked, long-polls `POST /api/link/poll`, both
with `Authorization: Bearer <driver key>`. The messages are the same JSON objects either way (docs/cloud.md has
them all). The rules:
- one link per driver: a new one replaces the old (on any node: the old node's lease renewals stop with it);
- a receipt is claimed (queued → delivered, with a lease) only to be sent at once; oldest first, at most
  `WINDOW` in flight per driver; the driver runs one register's packets one after another, so they print in
  the order they were submitted;
- while the link lives, its node renews the leases of what it delivered; once the link or the node is gone the
  leases run out and the receipts become `unknown`: never sent again blindly;
- on every (re)connect the driver is sent again what it holds in doubt (delivered or unknown, `in_doubt`), marked
  `resend`; its executor, seeing the same order id, answers from its journal or asks the register (it never
  prints twice), and the result settles the receipt;
- a timeout on the cloud's side cancels nothing on the driver; only the driver's result moves a receipt on;
- the account's allowed origins are pushed on connect and whenever they change (`store.account_changed`).
Presence (`drivers.link/node/seen_at/version`) and device status are written in batches, once a heartbeat.
Notes between nodes (a receipt queued at another node, origins changed there) go through notify.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .. import __version__
from ..bitapi import dumps
from ..driver.executor import CLOUD_ORDER_PREFIX
from .credentials import digest
from .errors import bad_request, field_error, unauthorized
from .http import client_address, json_response
from .notify import ACCOUNT, FINAL, QUEUE, Notifier
from .states import State
from .store import DriverRecord, ReceiptRecord, Store, utcnow

if TYPE_CHECKING:
    from .config import CloudConfig
    from .ratelimit import Limiter

__all__ = ["LINK_PATH", "POLL_PATH", "LinkHub", "order_id_of"]

log = logging.getLogger("kktbridge.cloud.link")

LINK_PATH = "/api/link"
POLL_PATH = "/api/link/poll"
WINDOW = 64  # receipts in flight per driver at most
MAX_MESSAGE = 1024 * 1024  # a driver's message (a result of a 100-item receipt fits many times over)
MAX_DEVICES = 256  # token hashes in one hello
POLL_WAIT = 25.0  # longest a poll is held open (below the usual 30–60 s proxy timeouts)


def order_id_of(receipt_uuid: uuid.UUID) -> str:
    """The order id a cloud receipt runs under on the driver: its executor de-duplicates by it."""
    return f"{CLOUD_ORDER_PREFIX}{receipt_uuid}"


def _delivery(record: ReceiptRecord, token_hash: str | None, *, resend: bool) -> dict[str, Any]:
    return {"type": "receipt", "id": str(record.uuid), "orderId": order_id_of(record.uuid),
            "shopOrderId": record.order_id, "device": token_hash, "source": record.source,
            "packet": record.packet, "resend": resend}


def _text(message: dict[str, Any]) -> str:
    """A message as JSON: the C encoder, or bitapi's writer when it carries money (a receipt's result)."""
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    except TypeError:
        return dumps(message)


def _parse(text: str) -> Any:
    """A driver's message: JSON with exact decimals (a result carries money), no NaN or Infinity."""
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Refused(Exception):
    """A message the link refuses: the driver is told why (ru/en) and the link goes on."""

    def __init__(self, code: str, ru: str, en: str) -> None:
        super().__init__(code)
        self.code, self.ru, self.en = code, ru, en


@dataclass(eq=False)
class DriverLink:
    """One linked driver on this node, over one transport (`ws` or `poll`)."""

    hub: LinkHub
    driver: DriverRecord
    via: str
    key_hash: str = ""  # the key it linked with: once the account's driver key is rotated, the link ends
    devices: dict[int, str] = field(default_factory=dict)  # device id → token hash
    hashes: dict[str, int] = field(default_factory=dict)  # token hash → device id
    inflight: set[uuid.UUID] = field(default_factory=set)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    pump: asyncio.Task | None = None
    ws: web.WebSocketResponse | None = None
    # poll: messages not yet taken by the driver, numbered; the driver acknowledges the highest it took
    outbox: deque = field(default_factory=deque)
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    polled_at: float = 0.0
    statuses: dict[int, Any] = field(default_factory=dict)  # the last status stored, per device

    @property
    def id(self) -> int:
        return self.driver.id

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.ws is not None:
            try:
                await self.ws.send_str(_text(message))
            except (ConnectionError, RuntimeError):  # closing: what it carried is resent on the next connect
                self.closed = True
            return
        self.outbox.append((next(self.seq), message))
        self.ready.set()

    def kick(self) -> None:
        self.wakeup.set()

    async def run_pump(self) -> None:
        """Claim and send the driver's queued receipts whenever woken, oldest first, within the window."""
        store, hub = self.hub.store, self.hub
        while not self.closed:
            await self.wakeup.wait()
            self.wakeup.clear()
            while not self.closed:
                room = WINDOW - len(self.inflight)
                if room <= 0:
                    break
                try:
                    batch = await store.claim(self.id, node=hub.node, lease=hub.lease, limit=room)
                except Exception as exc:  # the database is away: the rescan wakes us again
                    log.warning("driver %d: claim failed: %s", self.id, type(exc).__name__)
                    break
                for record in batch:
                    self.inflight.add(record.uuid)
                    await self.send(_delivery(record, self.devices.get(record.device_id), resend=False))
                if len(batch) < room:
                    break

    async def resend_in_doubt(self) -> None:
        for record in await self.hub.store.in_doubt(self.id):
            self.inflight.add(record.uuid)
            await self.send(_delivery(record, self.devices.get(record.device_id), resend=True))

    async def push_origins(self) -> None:
        account = await self.hub.store.account(self.driver.account_id)
        if account is not None:
            await self.send({"type": "origins", "origins": list(account.allowed_origins)})

    # --- what the driver says ----------------------------------------------------------------------------------

    async def hello(self, message: dict[str, Any]) -> None:
        hashes = message.get("devices", [])
        if not isinstance(hashes, list) or len(hashes) > MAX_DEVICES:
            raise _Refused("bad_hello", f"devices: ожидается список до {MAX_DEVICES} хешей токенов",
                           f"devices: a list of up to {MAX_DEVICES} token hashes is expected")
        announced = [d.get("tokenHash") if isinstance(d, dict) else d for d in hashes]
        self.hashes = await self.hub.store.link_devices(self.id, [h for h in announced if isinstance(h, str)])
        self.devices = {device_id: h for h, device_id in self.hashes.items()}
        version = message.get("version") if isinstance(message.get("version"), str) else None
        await self.hub.store.linked(self.id, link=self.via, node=self.hub.node, version=version)
        unknown = [h for h in announced if isinstance(h, str) and h not in self.hashes]
        await self.send({"type": "welcome", "driverId": self.id, "node": self.hub.node, "version": __version__,
                         "heartbeat": self.hub.heartbeat, "lease": self.hub.lease.total_seconds(),
                         "devices": {h: device_id for h, device_id in self.hashes.items()}, "unknownDevices": unknown})
        await self.push_origins()
        await self.status(message)
        await self.resend_in_doubt()
        self.pump = asyncio.get_running_loop().create_task(self.run_pump())
        self.kick()

    async def status(self, message: dict[str, Any]) -> None:
        self.hub.seen.add(self.id)
        for item in message.get("devices", []) if isinstance(message.get("devices"), list) else ():
            if not isinstance(item, dict):
                continue
            device_id = self.hashes.get(item.get("tokenHash"))
            status = item.get("status")
            if device_id is not None and isinstance(status, dict) and self.statuses.get(device_id) != status:
                self.statuses[device_id] = status
                self.hub.statuses[device_id] = status

    async def result(self, message: dict[str, Any]) -> None:
        try:
            receipt_uuid = uuid.UUID(str(message.get("id")))
        except ValueError:
            raise _Refused("bad_result", "id: ожидается идентификатор чека", "id: a receipt id is expected") from None
        outcome = message.get("outcome")
        if outcome not in ("done", "failed"):
            raise _Refused("bad_result", "outcome: ожидается done или failed", "outcome: done or failed is expected")
        result, error = message.get("result"), message.get("error")
        if error is not None and not isinstance(error, dict):
            raise _Refused("bad_result", "error: ожидается объект", "error: an object is expected")
        record = await self.hub.store.finish(receipt_uuid, State.DONE if outcome == "done" else State.FAILED,
                                             driver_id=self.id, result=result, error=error)
        self.inflight.discard(receipt_uuid)
        if record is None:  # finished already (a resend's replay), or not this driver's
            stored = await self.hub.store.receipt(self.driver.account_id, receipt_uuid)
            state = stored.state.value if stored is not None and stored.driver_id == self.id else None
        else:
            state = record.state.value
            log.info("receipt %s (driver %d): %s", receipt_uuid, self.id, state)
            await self.hub.notifier.publish(FINAL, str(receipt_uuid))
        await self.send({"type": "ack", "id": str(receipt_uuid), "state": state})
        if len(self.inflight) == WINDOW - 1:  # the window was full: the queue may hold more
            self.kick()

    async def handle_text(self, text: str) -> None:
        try:
            message = _parse(text)
        except (ValueError, RecursionError):
            await self.send({"type": "error", "code": "bad_message", "ru": "сообщение — не JSON",
                             "en": "the message is not JSON"})
            return
        await self.handle(message)

    async def handle(self, message: Any) -> None:
        """One message from the driver; a refused one is answered with an `error` message."""
        try:
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise _Refused("bad_message", "сообщение — объект JSON с полем type",
                               "a message is a JSON object with a type")
            kind = message["type"]
            if kind == "hello":
                if self.pump is not None:
                    raise _Refused("bad_message", "hello уже был", "hello was sent already")
                await self.hello(message)
            elif self.pump is None:
                raise _Refused("hello_first", "первое сообщение — hello", "the first message is hello")
            elif kind == "status":
                await self.status(message)
            elif kind == "result":
                await self.result(message)
            else:
                raise _Refused("bad_message", f"неизвестный тип сообщения «{kind[:40]}»",
                               f"unknown message type '{kind[:40]}'")
        except _Refused as refused:
            await self.send({"type": "error", "code": refused.code, "ru": refused.ru, "en": refused.en})

    async def close(self) -> None:
        if self.closed and self.pump is None:
            return
        self.closed = True
        self.wakeup.set()
        self.ready.set()
        if self.pump is not None:
            self.pump.cancel()
            await asyncio.gather(self.pump, return_exceptions=True)
            self.pump = None
        if self.ws is not None and not self.ws.closed:
            await self.ws.close(code=4000, message=b"replaced")


class LinkHub:
    """Every driver linked to this node, the WebSocket and poll endpoints, and the work done once a heartbeat."""

    def __init__(self, store: Store, config: CloudConfig, node: str, failures: Limiter) -> None:
        self.store = store
        self.config = config
        self.node = node
        self.failures = failures
        self.lease = timedelta(seconds=config.lease)
        self.heartbeat = config.heartbeat
        self.links: dict[int, DriverLink] = {}
        self.seen: set[int] = set()
        self.statuses: dict[int, Any] = {}
        self.notifier = Notifier(store, node, {QUEUE: self._heard_queue, ACCOUNT: self._heard_account,
                                               FINAL: self._heard_final}, on_resync=self.rescan)
        self._tasks: list[asyncio.Task] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.get(LINK_PATH, self.websocket), web.post(POLL_PATH, self.poll)]

    async def start(self) -> None:
        self.store.on_receipt_queued(self.queued)
        self.store.on_account_changed(self.account_changed)
        await self.notifier.start()
        self._tasks.append(asyncio.get_running_loop().create_task(self._beat()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in list(self.links.values()):
            await link.close()
        self.links.clear()
        await self.notifier.close()
        try:
            await self.store.unlink_node(self.node)
        except Exception as exc:  # the database is away; the drivers' seen_at tells how old the presence is
            log.warning("could not mark this node's drivers offline: %s", type(exc).__name__)

    # --- signals ------------------------------------------------------------------------------------------------

    async def queued(self, driver_id: int) -> None:
        """A receipt for this driver was committed (here): push it if the driver is linked here, else tell the
        other nodes."""
        link = self.links.get(driver_id)
        if link is not None:
            link.kick()
        else:
            await self.notifier.publish(QUEUE, str(driver_id))

    async def account_changed(self, account_id: int) -> None:
        await self._revoke_rotated_keys(account_id)  # here at once, before the change's answer goes out
        await self.notifier.publish(ACCOUNT, str(account_id))

    async def _revoke_rotated_keys(self, account_id: int) -> None:
        """End this node's links of the account whose driver key is no longer the stored one (rotated): a
        rotation is how a leaked key is revoked, so the link made with it must not get another receipt."""
        for link in [link for link in self.links.values() if link.driver.account_id == account_id]:
            current = await self.store.driver_by_key(link.key_hash)
            if current is None or current.id != link.id:
                log.warning("driver %d: its key was rotated; the link made with the old key is closed", link.id)
                await self._drop(link)

    async def _heard_queue(self, payload: str) -> None:
        link = self.links.get(int(payload))
        if link is not None:
            link.kick()

    async def _heard_account(self, payload: str) -> None:
        account_id = int(payload)
        self.store.forget(account_id)  # another node changed its secrets or devices: no remembered lookup stands
        await self._revoke_rotated_keys(account_id)
        for link in list(self.links.values()):
            if link.driver.account_id == account_id:
                await link.push_origins()

    async def _heard_final(self, payload: str) -> None:
        self.store.wake(uuid.UUID(payload))

    async def rescan(self) -> None:
        """Wake every local link whose driver has queued receipts (a note may have been missed)."""
        for driver_id in await self.store.drivers_with_queued():
            link = self.links.get(driver_id)
            if link is not None:
                link.kick()

    async def _beat(self) -> None:
        """Once a heartbeat: presence and statuses in one statement each, leases renewed, leases lost, rescan,
        poll links that stopped polling closed."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                seen, self.seen = self.seen, set()
                statuses, self.statuses = self.statuses, {}
                await self.store.seen(seen)
                await self.store.report_status(statuses)
                holding = [u for link in self.links.values() for u in link.inflight]
                await self.store.renew_leases(holding, node=self.node, until=utcnow() + self.lease)
                for record in await self.store.lose_leases():
                    log.warning("receipt %s (driver %d): lease ran out; unknown until the driver reports",
                                record.uuid, record.driver_id)
                for link in [link for link in self.links.values() if link.via == "poll"
                             and loop.time() - link.polled_at > max(3 * self.heartbeat, POLL_WAIT + 10)]:
                    await self._drop(link)
                await self.rescan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next beat tries again
                log.warning("link heartbeat: %s", type(exc).__name__)

    # --- links ----------------------------------------------------------------------------------------------------

    async def _authenticate(self, request: web.Request) -> tuple[DriverRecord, str]:
        """The driver a request's key names, and the key's hash; 401 (counted against the address) otherwise."""
        address = client_address(request)
        self.failures.refuse_if_blocked(f"forged:{address}")
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        driver, key_hash = None, digest(key.strip())
        if scheme.lower() == "bearer" and 0 < len(key.strip()) <= 200:
            driver = await self.store.driver_by_key(key_hash)
        if driver is None:
            self.failures.hit(f"forged:{address}")
            raise unauthorized("headers.Authorization", "bad_driver_key", "нужен заголовок «Authorization: Bearer "
                               "<ключ драйвера>» с действующим ключом", "an 'Authorization: Bearer <driver key>' "
                               "header with a valid key is needed")
        return driver, key_hash

    async def _attach(self, link: DriverLink) -> None:
        old = self.links.get(link.id)
        self.links[link.id] = link
        if old is not None:
            await old.close()

    async def _drop(self, link: DriverLink) -> None:
        await link.close()
        if self.links.get(link.id) is link:
            del self.links[link.id]
            try:
                await self.store.unlinked(link.id, node=self.node)
            except Exception as exc:
                log.warning("driver %d: could not mark it offline: %s", link.id, type(exc).__name__)
            log.info("driver %d unlinked (%s)", link.id, link.via)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        driver, key_hash = await self._authenticate(request)
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=max(self.heartbeat * 3, 10),
                                   compress=False)
        await ws.prepare(request)
        link = DriverLink(self, driver, "ws", key_hash, ws=ws)
        await self._attach(link)
        log.info("driver %d linked (ws) from %s", driver.id, client_address(request))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    try:
                        await link.handle_text(message.data)
                    except Exception as exc:  # the database is away, or a bug: the driver retries on a new link
                        log.exception("driver %d: a message could not be handled", driver.id)
                        await ws.close(code=1011, message=type(exc).__name__.encode()[:100])
                        break
                elif message.type == WSMsgType.BINARY:
                    await link.send({"type": "error", "code": "bad_message", "ru": "ожидаются текстовые сообщения",
                                     "en": "text messages are expected"})
                if link.closed:
                    break
        finally:
            await self._drop(link)
        return ws

    async def poll(self, request: web.Request) -> web.Response:
        """The long-poll fallback: the driver's messages in, the cloud's out, held up to `wait` seconds."""
        driver, key_hash = await self._authenticate(request)
        try:
            body = _parse(await request.text())
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages", []), list):
            raise bad_request([field_error("body", "format", "ожидается объект JSON с полем messages (список)",
                                           "a JSON object with a messages list is expected")])
        messages = body.get("messages", [])
        link = self.links.get(driver.id)
        session = body.get("session")
        hello = any(isinstance(m, dict) and m.get("type") == "hello" for m in messages)
        if hello:
            link = DriverLink(self, driver, "poll", key_hash)
            await self._attach(link)
            log.info("driver %d linked (poll) from %s", driver.id, client_address(request))
        elif link is None or link.via != "poll" or session != id(link):
            return json_response({"messages": [{"type": "rehello"}]})
        link.polled_at = asyncio.get_running_loop().time()
        ack = body.get("ack", 0)
        if isinstance(ack, int):
            while link.outbox and link.outbox[0][0] <= ack:
                link.outbox.popleft()
        for message in messages:
            await link.handle(message)
        wait = body.get("wait", POLL_WAIT)
        wait = min(float(wait), POLL_WAIT) if isinstance(wait, (int, float)) and wait >= 0 else POLL_WAIT
        if not link.outbox and wait > 0:
            link.ready.clear()
            try:
                await asyncio.wait_for(link.ready.wait(), wait)
            except asyncio.TimeoutError:
                pass
        link.polled_at = asyncio.get_running_loop().time()
        return json_response({"session": id(link), "messages": [{**m, "seq": n} for n, m in link.outbox]})

