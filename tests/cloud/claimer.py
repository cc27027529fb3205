"""A process that claims a driver's receipts from the cloud store until the queue is empty (for test_nodes.py).

    python tests/cloud/claimer.py DATABASE_URL DRIVER_ID NODE

It opens the store, prints `ready`, waits for a line on stdin, then claims batches of 1–5 receipts as fast as it
can and prints one JSON line: the ids it took and how many claims it made.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import timedelta

from kktbridge.cloud.store import Store


async def main(url: str, driver_id: int, node: str) -> None:
    store = await Store.open(url, migrate=False)
    print("ready", flush=True)
    sys.stdin.readline()
    taken: list[str] = []
    claims = 0
    empty = 0
    while empty < 3:
        batch = await store.claim(driver_id, node=node, lease=timedelta(minutes=5), limit=random.randint(1, 5))
        claims += 1
        empty = 0 if batch else empty + 1
        taken.extend(str(r.uuid) for r in batch)
    await store.close()
    print(json.dumps({"taken": taken, "claims": claims}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
