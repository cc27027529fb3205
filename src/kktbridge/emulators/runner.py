"""Running an emulator as a process: the options every emulator shares, the control port, the ready line.

`kktbridge emulate <kind>` parses the common options here; each emulator adds its own and starts its
listeners. When everything listens, one JSON line on stdout tells a script or a test where to connect;
logs go to stderr. SIGINT/SIGTERM stop it cleanly; the `power_loss` switch kills it without cleanup.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from ..process import until_stopped
from .control import serve_control
from .faults import Faults
from .fncore import Registration

__all__ = ["add_common_arguments", "faults_from", "registration_from", "run_until_stopped"]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journal", metavar="FILE", help="append every document as a JSON line / журнал документов")
    parser.add_argument("--state", metavar="FILE",
                        help="fiscal storage state; with it a restart continues the numbering / состояние ФН")
    parser.add_argument("--paper", metavar="FILE", help="append printed documents as text / «чековая лента»")
    parser.add_argument("--control", metavar="HOST:PORT", help="control port for fault switches / порт управления")
    parser.add_argument("--fault", metavar="NAME=VALUE", action="append", default=[],
                        help="start with a fault switch on, e.g. print_latency=0.5, no_paper=true")
    parser.add_argument("--inn", default=Registration.inn, help="the INN the register is registered to")
    parser.add_argument("--fn-number", default=Registration.fn_number, help="the fiscal storage number (16 digits)")
    parser.add_argument("--reg-number", default=Registration.reg_number, help="the register's registration number")
    parser.add_argument("--no-fsync", action="store_true",
                        help="do not fsync the journal and state (faster; a power loss may lose the last document)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")


def registration_from(args: argparse.Namespace) -> Registration:
    return Registration(inn=args.inn, fn_number=args.fn_number, reg_number=args.reg_number)


def faults_from(args: argparse.Namespace) -> Faults:
    faults = Faults()
    changes: dict[str, Any] = {}
    for item in args.fault:
        name, _, value = item.partition("=")
        changes[name.strip()] = json.loads(value) if value else True
    faults.update(changes)
    return faults


def run_until_stopped(start: Callable[[], Awaitable[dict[str, Any]]], control: Callable[[dict], Awaitable[dict]],
                      args: argparse.Namespace, stop: Callable[[], Awaitable[None]]) -> int:
    """Start the emulator, print the ready line, serve until a signal; return the exit code."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main() -> int:
        ready = await start()
        if args.control:
            host, _, port = args.control.rpartition(":")
            server = await serve_control(host or "127.0.0.1", int(port), control)
            bound = server.sockets[0].getsockname()
            ready["control"] = f"{bound[0]}:{bound[1]}"
        print(json.dumps(ready, ensure_ascii=False), flush=True)
        await until_stopped()
        await stop()
        return 0

    try:
        return asyncio.run(main())
    except OSError as exc:
        print(f"kktbridge emulate: {exc}", file=sys.stderr)
        return 1
