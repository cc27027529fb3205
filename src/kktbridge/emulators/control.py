"""The control port of an emulator: one JSON object per line in, one per line out, on a TCP socket.

Tests and people flip fault switches of a running emulator process with it:
`{"faults": {"no_paper": true}}`, `{"advance_clock": 90000}`, `{"status": true}`, `{"power_loss": true}`.
What each request does is the emulator's handler; this file only carries the lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["send_control", "serve_control"]

log = logging.getLogger("kktbridge.emulator.control")
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def serve_control(host: str, port: int, handler: Handler) -> asyncio.Server:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a JSON object is expected")
                    answer = await handler(request)
                except (ValueError, TypeError, KeyError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(answer, ensure_ascii=False, default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(client, host, port)


async def send_control(host: str, port: int, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """One request to a control port (for tests and scripts)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        return json.loads(line) if line else {"ok": False, "error": "connection closed"}
    finally:
        writer.close()
