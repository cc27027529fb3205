"""Long-running kktbridge processes (the driver, the emulators): they stop cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["until_stopped"]


async def until_stopped() -> None:
    """Return when the process is asked to stop (Ctrl+C, SIGTERM, a service manager)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows has no loop signal handlers
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    await stop.wait()
