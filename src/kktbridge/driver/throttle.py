"""Wrong device tokens from another machine: after a few in a row, that address waits before it may try again.

Rules: requests from this computer are never slowed (the cashier's own pages: a typo in a token must not lock
the shop out). From any other address, a request naming an unknown or malformed token counts; after FREE of them
in a row, the address is refused (HTTP 429, Retry-After) for FIRST_WAIT seconds, doubled with every further wrong
token up to MAX_WAIT; a request whose tokens are right clears the count. At most MAX_ADDRESSES addresses are kept
(the one seen longest ago is forgotten first), so a flood from many addresses cannot grow the driver's memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["WRONG_TOKEN_CODES", "WrongTokens"]

WRONG_TOKEN_CODES = frozenset({"unknown_token", "wrong_token", "token"})  # FieldError codes of a wrong token


class WrongTokens:
    FREE = 5
    FIRST_WAIT = 1.0
    MAX_WAIT = 300.0
    MAX_ADDRESSES = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address → (wrong in a row, locked until)

    def wait(self, address: str) -> float:
        """Seconds the address must still wait; 0 when it may send."""
        entry = self._seen.get(address)
        return max(0.0, entry[1] - self.clock()) if entry else 0.0

    def wrong(self, address: str) -> None:
        count, _ = self._seen.pop(address, (0, 0.0))
        count += 1
        locked = 0.0
        if count >= self.FREE:
            locked = self.clock() + min(self.MAX_WAIT, self.FIRST_WAIT * 2 ** min(count - self.FREE, 16))
        self._seen[address] = (count, locked)
        while len(self._seen) > self.MAX_ADDRESSES:
            self._seen.popitem(last=False)

    def right(self, address: str) -> None:
        self._seen.pop(address, None)
