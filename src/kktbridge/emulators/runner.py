"""Running an emulator as a process: the options every emulator shares, the control port, the ready line.

`kktbridge emulate <kind>` parses the common options here; each emulator adds its own and starts its
listeners. Separately started emulators get FN numbers of their own unless `--fn-number` is given. When
everything listens, one JSON line on stdout tells a script or a test where to connect; logs go to stderr. SIGINT/SIGTERM stop it cleanly; the `power_loss` switch kills it without cleanup.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from dataclasses import fields
from typing import Any

from ..arguments import address, digits
from ..fiscal import shown
from ..process import until_stopped
from .control import serve_control
from .faults import Faults
from .fncore import Registration

__all__ = ["add_common_arguments", "fault_switch", "faults_from", "fn_number_for", "registration_from",
           "run_until_stopped"]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journal", metavar="FILE", help="append every document as a JSON line / журнал документов")
    parser.add_argument("--state", metavar="FILE",
                        help="fiscal storage state; with it a restart continues the numbering / состояние ФН")
    parser.add_argument("--paper", metavar="FILE", help="append printed documents as text / «чековая лента»")
    parser.add_argument("--control", metavar="HOST:PORT", type=address(0),
                        help="control port for fault switches / порт управления")
    parser.add_argument("--fault", metavar="NAME=VALUE", action="append", default=[], type=fault_switch,
                        help="start with a fault switch on, e.g. print_latency=0.5, no_paper=true")
    parser.add_argument("--inn", default=Registration.inn, type=digits(10, 12),
                        help="the INN the register is registered to (10 or 12 digits)")
    parser.add_argument("--fn-number", type=digits(16), help="the fiscal storage number, 16 digits (default: one of "
                        "its own, kept for the same --state file, so two emulators never share one)")
    parser.add_argument("--reg-number", default=Registration.reg_number, type=digits(most=20),
                        help="the register's registration number (up to 20 digits)")
    parser.add_argument("--no-fsync", action="store_true",
                        help="do not fsync the journal and state (faster; a power loss may lose the last document)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")


def registration_from(args: argparse.Namespace) -> Registration:
    return Registration(inn=args.inn, fn_number=args.fn_number or fn_number_for(args.state), reg_number=args.reg_number)


def fn_number_for(state: str | None) -> str:
    """An FN number of the emulator's own: from the state file's full path (a restart keeps it), else random.
    The 9999078900 prefix of the emulators' default number keeps it recognisable as an emulator's."""
    seed = str(Path(state).resolve()) if state else secrets.token_hex(16)
    return "99990789" + f"{int(hashlib.sha256(seed.encode('utf-8')).hexdigest(), 16) % 10**8:08d}"


def fault_switch(text: str) -> tuple[str, Any]:
    """`--fault NAME=VALUE` (or NAME alone for true), the value read as the switch's own type."""
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    kinds = {f.name: str(f.type) for f in fields(Faults)}
    if name not in kinds:
        raise argparse.ArgumentTypeError(f"unknown fault switch '{name}'; known: {', '.join(kinds)}")
    kind = kinds[name]
    if not equals:
        value = "true"
    if len(value) >= 2 and value[0] == value[-1] == '"':  # a JSON string, as the docs write them: "after:4A"
        value = value[1:-1]
    if "None" in kind and value.lower() in ("null", "none", ""):
        return name, None
    try:
        if kind == "bool":
            if value.lower() not in _BOOLEANS:
                raise ValueError
            return name, _BOOLEANS[value.lower()]
        if kind.startswith("float"):
            seconds = float(value)
            if not 0 <= seconds <= 3600:
                raise ValueError
            return name, seconds
        if kind.startswith("int"):
            count = int(value)
            if count < 0:
                raise ValueError
            return name, count
        return name, value
    except ValueError:
        what = {"bool": "true or false", "float": "a number of seconds from 0 to 3600",
                "int": "a whole number from 0"}[kind.split(" ")[0]]
        raise argparse.ArgumentTypeError(f"{name}: '{value}' is not {what}") from None


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def faults_from(args: argparse.Namespace) -> Faults:
    faults = Faults()
    faults.update(dict(args.fault))
    return faults


def run_until_stopped(start: Callable[[], Awaitable[dict[str, Any]]], control: Callable[[dict], Awaitable[dict]],
                      args: argparse.Namespace, stop: Callable[[], Awaitable[None]]) -> int:
    """Start the emulator, print the ready line, serve until a signal; return the exit code."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main() -> int:
        ready = await start()
        if args.control:
            host, port = args.control
            server = await serve_control(host, port, control)
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
    except ValueError as exc:  # a state or journal file that is not the emulator's (with -v: the traceback)
        if args.verbose:
            raise
        print(f"kktbridge emulate: cannot start (are --state and --journal this emulator's files?): "
              f"{shown(str(exc), 200)}", file=sys.stderr)
        return 1
