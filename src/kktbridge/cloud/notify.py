"""Notes between cloud nodes: "driver 7 has a new receipt", "account 3's origins changed", "receipt X is final".

A note is handled in this process at once, and on PostgreSQL also sent with NOTIFY to every other node, which
hears it on a dedicated connection (LISTEN). A note carries its sender's node name, so a node ignores the echo
of its own. Notes are hints, never the truth: the store is. A node whose listening connection broke may have
missed some, so after reconnecting it calls `on_resync`, and the link rescans its drivers' queues.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from .store import Store

__all__ = ["CHANNELS", "Notifier"]

log = logging.getLogger("kktbridge.cloud.notify")

QUEUE, ACCOUNT, FINAL = "kktbridge_queue", "kktbridge_account", "kktbridge_final"
CHANNELS = (QUEUE, ACCOUNT, FINAL)

Handler = Callable[[str], Awaitable[None]]


class Notifier:
    def __init__(self, store: Store, node: str, handlers: dict[str, Handler],
                 on_resync: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.node = node
        self.handlers = handlers
        self.on_resync = on_resync
        self._connection = None
        self._task: asyncio.Task | None = None
        self._lost = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    @property
    def shared(self) -> bool:
        return self.store.dialect == "postgresql"

    async def start(self) -> None:
        if self.shared:
            await self._connect()
            self._task = asyncio.get_running_loop().create_task(self._keep())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._connection is not None:
            try:
                await asyncio.wait_for(self._connection.close(), 2)
            except Exception:  # pragma: no cover - a broken connection closes by itself
                self._connection.terminate()
        for task in list(self._tasks):
            task.cancel()

    async def publish(self, channel: str, payload: str) -> None:
        """Handle the note here and tell the other nodes."""
        await self._handle(channel, payload)
        if self.shared:
            try:
                await self.store.notify(channel, f"{payload} {self.node}")
            except Exception as exc:  # the other nodes' rescan finds what this note would have told them
                log.warning("note %s %s not sent: %s", channel, payload, type(exc).__name__)

    # --- hearing ----------------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        self._lost.clear()
        self._connection = await self.store.listen(CHANNELS, self._heard, self._lost.set)

    async def _keep(self) -> None:
        """Reconnect the listening connection when it breaks, then resync (notes may have been missed)."""
        delay = 0.5
        while True:
            await self._lost.wait()
            log.warning("the listening connection to the database broke; reconnecting")
            while True:
                try:
                    await self._connect()
                    break
                except Exception as exc:
                    log.warning("listening connection: %s; next try in %.1f s", type(exc).__name__, delay)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                    delay = min(delay * 2, 30)
            delay = 0.5
            if self.on_resync is not None:
                await self.on_resync()

    def _heard(self, channel: str, text: str) -> None:
        payload, _, sender = text.rpartition(" ")
        if sender == self.node or not payload:
            return
        task = asyncio.get_running_loop().create_task(self._handle(channel, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, channel: str, payload: str) -> None:
        handler = self.handlers.get(channel)
        if handler is None:
            return
        try:
            await handler(payload)
        except Exception:
            log.exception("handling the note %s %s failed", channel, payload)
