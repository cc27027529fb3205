"""`kktbridge emulate atol`: an ATOL register on a TCP port or a pseudo-terminal."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ...arguments import address, number
from ..runner import add_common_arguments, faults_from, registration_from, run_until_stopped
from .server import AtolEmulator

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--tcp", metavar="HOST:PORT", type=address(5555),
                       help="listen on TCP (default 127.0.0.1:5555), protocol v3")
    where.add_argument("--pty", action="store_true", help="create a pseudo-terminal and print its path (serial)")
    parser.add_argument("--protocol", choices=("v3", "v2"), default="v3", help="transport protocol (v2: --pty only)")
    parser.add_argument("--password", type=number(0, 9999), default=0, help="access password (0-9999, default 0)")
    add_common_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.protocol == "v2" and not args.pty:
        print("kktbridge emulate atol: error: protocol v2 runs on a serial line only: add --pty", file=sys.stderr)
        return 2
    if args.pty and os.name != "posix":
        print("kktbridge emulate atol: error: --pty needs a POSIX system; use --tcp", file=sys.stderr)
        return 2
    emulator: AtolEmulator | None = None

    async def start() -> dict[str, Any]:
        nonlocal emulator
        registration = registration_from(args)
        emulator = AtolEmulator(state_path=args.state, journal_path=args.journal, paper_path=args.paper,
                                registration=registration, faults=faults_from(args),
                                password=args.password, fsync=not args.no_fsync, exit_on_power_loss=True)
        ready: dict[str, Any] = {"kind": "atol", "protocol": args.protocol, "journal": args.journal,
                                 "fn_number": registration.fn_number}
        if args.pty:
            ready["pty"] = emulator.open_pty(args.protocol)
        else:
            host, port = args.tcp or ("127.0.0.1", 5555)
            bound = await emulator.serve_tcp(host, port)
            ready["tcp"] = f"{bound[0]}:{bound[1]}"
        return ready

    async def control(request: dict) -> dict:
        assert emulator is not None
        if "faults" in request:
            emulator.faults.update(request["faults"])
        if "advance_clock" in request:
            emulator.core.advance_clock(float(request["advance_clock"]))
        if request.get("power_loss"):
            emulator._power_loss("by the control port")
        return {"ok": True, **emulator.status()}

    async def stop() -> None:
        if emulator is not None:
            await emulator.close()

    return run_until_stopped(start, control, args, stop)
