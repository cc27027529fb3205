"""Group commit: receipts submitted at about the same moment are written in one transaction, one disk flush.

A shop gets its answer only after its row is committed, and a commit costs a flush of the database's log. Rather
than one flush per receipt, the submissions that arrive while a transaction is being written wait for the next
one, which takes them all (up to `max_batch`). There is no timer: with one request in flight, a batch is that
request alone, so nothing waits for company. If a batch fails as a whole (a deadlock between two nodes, a
constraint a row breaks), each of its receipts is retried in a transaction of its own, so one bad row cannot
fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int = 256,
                 writers: int = 1) -> None:
        self._write = write
        self._max_batch = max_batch
        self._writers = writers
        self._running = 0
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._running < self._writers:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
                await self._commit(batch)
        finally:
            self._running -= 1

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exception=exc)
                return
            for one in batch:
                await self._commit([one])
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, result=outcome)

    async def close(self) -> None:
        """Wait for the batches being written (new submissions after this are not expected)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _settle(future: asyncio.Future, *, result=None, exception: BaseException | None = None) -> None:
    if future.done():  # the submitter was cancelled (client went away); the row is committed all the same
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
