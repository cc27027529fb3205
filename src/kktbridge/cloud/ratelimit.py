"""Flood limits: how many requests a key (an account, an address, a login) may make, as a token bucket per key.

A rate is written in the `limits` library's notation ("100/second", "5/minute"): a key may burst that many
requests and then gets them back evenly over the period. A refusal says when one more is allowed (Retry-After,
whole seconds, at least 1). The counting lives in this process's memory: each cloud node limits on its own, so
N nodes behind a balancer admit up to N times the rate, which is what a per-node flood guard is for.

The buckets are kept here rather than in `limits`' own in-memory storage, because that storage expires its
entries from a timer thread started again after every hit: at a thousand requests a second, that thread cost
a twentieth of a node's CPU and fought the event loop for the interpreter. A bucket untouched for a whole period
is full again, so forgetting it (cachetools' TTL cache, lazily) changes nothing.
"""

from __future__ import annotations

import math
import time

from cachetools import TTLCache
from limits import parse

from .errors import rate_limited

__all__ = ["Limiter"]


class Limiter:
    def __init__(self, rate: str, *, keys: int = 100_000) -> None:
        item = parse(rate)
        self.rate = rate
        self.capacity = float(item.amount)
        self.per_second = item.amount / item.get_expiry()
        self._buckets: TTLCache = TTLCache(maxsize=keys, ttl=item.get_expiry())

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - then) * self.per_second)

    def hit(self, key: str) -> int | None:
        """Count one request; None when allowed, else the seconds until one more is."""
        now = time.monotonic()
        tokens = self._level(key, now)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return None
        return self._wait(tokens)

    def blocked(self, key: str) -> int | None:
        """Like `hit`, without counting: None when a request would be allowed now."""
        tokens = self._level(key, time.monotonic())
        return None if tokens >= 1 else self._wait(tokens)

    def refuse_if_blocked(self, key: str) -> None:
        """Raise the 429 (with Retry-After) when `key` has no request left now; count nothing."""
        wait = self.blocked(key)
        if wait is not None:
            raise rate_limited(wait)

    def _wait(self, tokens: float) -> int:
        return max(1, math.ceil((1 - tokens) / self.per_second))
