"""`kktbridge emulate mercury`: a Mercury register behind Incotex's JSON service on HTTP (default :50010)."""

from __future__ import annotations

import argparse
from typing import Any

from ...devices.mercury.protocol import DEFAULT_PORT, MODELS
from ...arguments import address
from ..runner import add_common_arguments, faults_from, registration_from, run_until_stopped
from .server import MercuryEmulator

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", metavar="HOST:PORT", type=address(DEFAULT_PORT),
                        help=f"listen for POST /api.json (default 127.0.0.1:{DEFAULT_PORT}; port 0 picks a free one)")
    parser.add_argument("--model", choices=MODELS, default=MODELS[0],
                        help="the register behind the service: 185F (115Ф/130Ф/180Ф/185Ф) or 119F")
    add_common_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    emulator: MercuryEmulator | None = None

    async def start() -> dict[str, Any]:
        nonlocal emulator
        registration = registration_from(args)
        emulator = MercuryEmulator(state_path=args.state, journal_path=args.journal, paper_path=args.paper,
                                   registration=registration, faults=faults_from(args), model=args.model,
                                   fsync=not args.no_fsync, exit_on_power_loss=True)
        host, port = args.http or ("127.0.0.1", DEFAULT_PORT)
        await emulator.serve_http(host, port)
        return {"kind": "mercury", "url": emulator.url, "control": None, "journal": args.journal,
                "fn_number": registration.fn_number}

    async def control(request: dict) -> dict:
        assert emulator is not None
        return await emulator.control(request)

    async def stop() -> None:
        if emulator is not None:
            await emulator.close()

    return run_until_stopped(start, control, args, stop)
