"""The `kktbridge` command line: one sub-command per program (demo, driver, emulate...).

Each sub-command lives in the package it runs and is only wired here, so this file stays a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    """For now: the version and the example packet of API 1.2 as the driver reads it."""
    from .bitapi import PacketError, decode_request
    from .examples import example_packet

    text = example_packet()
    try:
        packet = decode_request({"Action": "command_list"}, text.encode("utf-8"))
    except PacketError as exc:  # the shipped example must always read; say so plainly if it does not
        print(f"kktbridge {__version__}: the example packet does not read: {exc}", file=sys.stderr)
        return 1
    summary = {
        "version": __version__,
        "example": "packet-1.2.json",
        "commands": [_describe(command) for command in packet.commands],
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    return 0


def _describe(command) -> dict:
    from .bitapi import CardOperationCommand, ReceiptCommand
    from .fiscal import format_rubles

    out = {"name": command.name, "type": command.type.wire, "device": command.device}
    if isinstance(command, CardOperationCommand) and command.amount is not None:
        out["sum"] = format_rubles(command.amount)
    if isinstance(command, ReceiptCommand):
        receipt = command.receipt
        out["receipt"] = {
            "type": receipt.type.ru,
            "taxation": receipt.taxation.ru if receipt.taxation else None,
            "total": format_rubles(receipt.total),
            "items": [
                {"name": i.name, "price": format_rubles(i.price), "quantity": str(i.quantity),
                 "sum": format_rubles(i.amount), "vat": i.vat.label if i.vat else None}
                for i in receipt.items
            ],
            "payments": {k.name.lower(): format_rubles(v) for k, v in receipt.payments.by_kind().items()},
            "change": format_rubles(receipt.change),
        }
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kktbridge",
        description="Кассы (54-ФЗ) и банковские терминалы для веб-приложений / "
        "Fiscal registers and bank terminals for web applications",
    )
    parser.add_argument("--version", action="version", version=f"kktbridge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="показать демонстрацию / run the demo")
    demo.set_defaults(run=_demo)

    emulate = commands.add_parser("emulate", help="эмулятор устройства / run a device emulator")
    kinds = emulate.add_subparsers(dest="kind", metavar="KIND", required=True)
    from .emulators.atol.cli import add_arguments as atol_arguments

    atol_arguments(kinds.add_parser("atol", help="ККТ АТОЛ (протокол v3/v2) / ATOL register"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
