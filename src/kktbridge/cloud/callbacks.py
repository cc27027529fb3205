"""Callbacks to the shop: what a finished receipt owes, how each POST is signed, and the worker that delivers them.

The rules:
- A receipt that becomes final (done, failed, expired) owes one POST per URL it was given, recorded in the same
  transaction as the move (`owed`, called by the store): the vendor's form → `BIT_CALLBACK_SUCCESS` when it is
  good, `BIT_CALLBACK_FAILED` otherwise, with `result_fields` as a form (the vendor does not document the
  fields: UNVERIFIED, our choice); the JSON API → its `webhook_url`, with the receipt's JSON view.
- Every POST is signed: `X-Kktbridge-Timestamp` (Unix seconds) and `X-Kktbridge-Signature: sha256=<hex
  HMAC-SHA256 of timestamp + "." + raw body, keyed with the account's webhook secret>` (`signature`).
- Every node runs a `CallbackWorker`: it leases due rows, checks the URL (`ssrf`), connects to the addresses it
  checked, follows no redirect, reads at most `MAX_RESPONSE` bytes, and records each attempt (one log line, one
  `callback_attempts` row). A 2xx is delivered; anything else is retried with exponential backoff and jitter for
  `callback_retry_for` (24 h), then given up; a URL the rules refuse is `refused`, with the reason.
- Delivery is at least once: a node that dies between the POST and its record leaves the lease to run out, and
  the POST is made again. `X-Kktbridge-Delivery` (the callback's id) lets a receiver drop a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .. import __version__
from ..bitapi import dumps
from .config import CloudConfig
from .ssrf import PinnedResolver, Refused, resolve
from .states import State
from .store import ReceiptRecord, Store, utcnow
from .store.callbacks import DELIVERED, GAVE_UP, PENDING, REFUSED, CallbackJob, CallbackRecord
from .views import receipt_view, timestamp

__all__ = ["DELIVERY_HEADER", "FORM", "JSON", "MAX_RESPONSE", "CallbackWorker", "bit_answer", "callback_view", "owed",
           "result_fields", "signature", "succeeded"]

log = logging.getLogger("kktbridge.cloud.callbacks")

TIMESTAMP_HEADER = "X-Kktbridge-Timestamp"
SIGNATURE_HEADER = "X-Kktbridge-Signature"
DELIVERY_HEADER = "X-Kktbridge-Delivery"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_RESPONSE = 4096  # bytes of a receiver's answer read (the rest is dropped with the connection)
MAX_ERROR = 300  # characters of a receiver's answer kept with a failed attempt
MAX_IN_FLIGHT = 32  # POSTs one node makes at once
LEASE_MARGIN = 60.0  # seconds a lease outlives the POST's own timeout


def signature(secret: str, stamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body`, keyed with the account's webhook secret."""
    return hmac.new(secret.encode("utf-8"), stamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def succeeded(record: ReceiptRecord) -> bool:
    """Done, and no command of it reported an error: the vendor's "good result"."""
    if record.state is not State.DONE:
        return False
    return not (isinstance(record.result, list)
                and any(isinstance(item, dict) and "error" in item for item in record.result))


def bit_answer(record: ReceiptRecord) -> Any:
    """A final receipt as the vendor's clients read an answer: the driver's result (one object per command, a failed
    one with its `error`), or, when the packet failed as a whole, `{"result": false, "error": …}`."""
    if isinstance(record.result, list):
        return record.result
    error = record.error or {"code": record.state.value, "ru": "чек не пробит", "en": "the receipt failed"}
    body: dict[str, Any] = {"result": False, "error": f"{error.get('ru')} / {error.get('en')}",
                            "errorCode": error.get("code"), "errorRu": error.get("ru"), "errorEn": error.get("en"),
                            "retryable": False}
    return body


def result_fields(record: ReceiptRecord) -> dict[str, str]:
    """The form fields a finished form receipt is reported with, to BIT_CALLBACK_SUCCESS / _FAILED, by the server
    and by the browser at the end of a dialog. UNVERIFIED: the vendor documents no fields; these are our choice."""
    return {"BIT_ACCOUNT_ID": str(record.account_id), "BIT_ORDER_ID": record.order_id,
            "result": "true" if succeeded(record) else "false", "state": record.state.value,
            "receipt_id": str(record.uuid), "data": dumps(bit_answer(record))}


def owed(record: ReceiptRecord) -> list[tuple[str, str, str, str]]:
    """The POSTs a just-finished receipt owes: (kind, url, body, content type) each."""
    out: list[tuple[str, str, str, str]] = []
    good = succeeded(record)
    url = record.callback_success if good else record.callback_failed
    if url:
        out.append(("success" if good else "failed", url, urlencode(result_fields(record)), FORM))
    if record.webhook_url:
        out.append(("webhook", record.webhook_url, dumps(receipt_view(record)), JSON))
    return out


def callback_view(callback: CallbackRecord) -> dict[str, Any]:
    """A callback as the account sees it through the API (and the cabinet's receipt page)."""
    return {"id": callback.id, "kind": callback.kind, "url": callback.url, "state": callback.state,
            "attempts": callback.attempts,
            "nextAt": timestamp(callback.next_at) if callback.state == PENDING else None,
            "deliveredAt": timestamp(callback.delivered_at), "lastError": callback.last_error,
            "tries": [{"at": timestamp(t.at), "status": t.status, "error": t.error, "durationMs": t.duration_ms}
                      for t in callback.tries]}


def backoff(config: CloudConfig, attempt: int) -> float:
    """Seconds before try `attempt + 1`: doubling from `callback_backoff`, capped, with ±25 % jitter so that the
    callbacks of one outage do not come back all at once."""
    delay = min(config.callback_backoff * 2 ** min(attempt - 1, 40), config.callback_backoff_max)
    return delay * random.uniform(0.75, 1.25)


class CallbackWorker:
    """One node's delivery loop (started and stopped by the service)."""

    def __init__(self, store: Store, config: CloudConfig, node: str) -> None:
        self.store = store
        self.config = config
        self.node = node
        self._task: asyncio.Task | None = None
        self._posts: set[asyncio.Task] = set()
        self._next_due: float | None = None  # loop time of the earliest retry this node scheduled
        self._timeout = aiohttp.ClientTimeout(total=config.callback_timeout, connect=config.callback_timeout / 2)
        self._lease = timedelta(seconds=config.callback_timeout + LEASE_MARGIN)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop taking rows; let the POSTs in flight finish (bounded by their timeout) and record them."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._posts:
            await asyncio.wait(list(self._posts), timeout=self.config.callback_timeout + 1)
        for task in list(self._posts):
            task.cancel()

    async def _run(self) -> None:
        signal = self.store.callback_signal()
        loop = asyncio.get_running_loop()
        while True:
            signal.clear()  # before looking: a row committed while we look sets it again
            room = MAX_IN_FLIGHT - len(self._posts)
            jobs: list[CallbackJob] = []
            if room > 0:
                try:
                    jobs = await self.store.claim_callbacks(lease=self._lease, limit=room, now=utcnow())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database is away: the rows wait, nothing is lost
                    log.warning("callbacks: cannot claim due callbacks: %s", type(exc).__name__)
            for job in jobs:
                task = loop.create_task(self._deliver(job))
                self._posts.add(task)
                task.add_done_callback(self._posted)
            if jobs and len(jobs) == room:
                continue  # there may be more due: look again at once
            wait = self.config.callback_poll
            if self._next_due is not None:
                wait = max(0.0, min(wait, self._next_due - loop.time()))
                if self._next_due <= loop.time() + wait:
                    self._next_due = None
            try:
                await asyncio.wait_for(signal.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _posted(self, task: asyncio.Task) -> None:
        self._posts.discard(task)
        self.store.callback_signal().set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            log.error("callbacks: a delivery failed unexpectedly: %r", task.exception())

    async def _deliver(self, job: CallbackJob) -> None:
        started = time.monotonic()
        at = utcnow()
        status: int | None = None
        error: str | None = None
        target, refused = None, False
        try:
            target = await resolve(job.url, allow_private=self.config.allow_private_callbacks)
        except Refused as why:
            error, refused = why.text(), True
        except OSError as exc:  # the name did not resolve: perhaps a moment's trouble; retried
            error = f"DNS: {exc}"[:MAX_ERROR]
        if target is not None:
            try:
                status, error = await self._post(job, target)
            except asyncio.TimeoutError:
                error = f"no answer within {self.config.callback_timeout:g} s"
            except (aiohttp.ClientError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        if refused:
            state, next_at = REFUSED, None
        else:
            state, next_at = self._next(job, status, error)
        duration = int((time.monotonic() - started) * 1000)
        log.info("callback %d %s receipt %s order %r → %s: try %d, %s, %d ms%s", job.id, job.kind, job.receipt_uuid,
                 job.order_id, job.url, job.attempts + 1, status if status is not None else error, duration,
                 f", next at {next_at.isoformat(timespec='seconds')}" if next_at else f", {state}")
        try:
            await self.store.record_attempt(job.id, at=at, status=status, error=error, duration_ms=duration,
                                            state=state, next_at=next_at)
        except Exception as exc:  # its lease runs out and it is posted again: at least once
            log.warning("callback %d: the attempt could not be recorded (%s); it will be posted again",
                        job.id, type(exc).__name__)

    def _next(self, job: CallbackJob, status: int | None, error: str | None) -> tuple[str, datetime | None]:
        if status is not None and 200 <= status < 300:
            return DELIVERED, None
        now = utcnow()
        if now >= job.window_from + self.config.callback_retry_for:
            return GAVE_UP, None
        delay = backoff(self.config, job.attempts + 1)
        due = asyncio.get_running_loop().time() + delay
        self._next_due = due if self._next_due is None else min(self._next_due, due)
        return PENDING, now + timedelta(seconds=delay)

    async def _post(self, job: CallbackJob, target) -> tuple[int, str | None]:
        """One signed POST to the checked addresses: (status, why it is not a success or None)."""
        body = job.body.encode("utf-8")
        stamp = str(int(time.time()))
        headers = {"Content-Type": job.content_type, "User-Agent": f"kktbridge/{__version__}",
                   TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=" + signature(job.secret, stamp, body),
                   DELIVERY_HEADER: str(job.id), "X-Kktbridge-Receipt": str(job.receipt_uuid),
                   "X-Kktbridge-Event": job.kind}
        connector = aiohttp.TCPConnector(resolver=PinnedResolver(target), use_dns_cache=False, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False,
                                         auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()) as session:
            async with session.post(target.url, data=body, headers=headers, allow_redirects=False) as response:
                text = (await response.content.read(MAX_RESPONSE)).decode("utf-8", "replace")
                status = response.status
                if 200 <= status < 300:
                    return status, None
                if 300 <= status < 400:
                    where = response.headers.get("Location", "")[:200]
                    return status, f"HTTP {status}: redirect to {where!r} not followed"
                snippet = " ".join(text.split())[:MAX_ERROR]
                return status, f"HTTP {status}" + (f": {snippet}" if snippet else "")
