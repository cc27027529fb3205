"""The `kktbridge` command line: one sub-command per program (demo, driver, cloud, emulate...).

Each sub-command lives in the package it runs and is only wired here, so this file stays a table. Every parser
is an `arguments.Parser`: a mistake on the command line is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .arguments import Parser

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="kktbridge",
        description="Кассы (54-ФЗ) и банковские терминалы для веб-приложений / "
        "Fiscal registers and bank terminals for web applications",
    )
    parser.add_argument("--version", action="version", version=f"kktbridge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from .cloud.cli import add_arguments as cloud_arguments
    from .driver.cli import add_arguments as driver_arguments
    from .driver.demo import add_arguments as demo_arguments

    demo_arguments(commands.add_parser("demo", help="драйвер с эмуляторами устройств / the driver with emulated devices"))
    driver_arguments(commands.add_parser("driver", help="драйвер ККТ на 127.0.0.1:44735 / the local driver"))
    cloud_arguments(commands.add_parser("cloud", help="облачная очередь чеков / the cloud receipt queue"))

    emulate = commands.add_parser("emulate", help="эмулятор устройства / run a device emulator")
    kinds = emulate.add_subparsers(dest="kind", metavar="KIND", required=True)
    from .emulators.atol.cli import add_arguments as atol_arguments

    atol_arguments(kinds.add_parser("atol", help="ККТ АТОЛ (протокол v3/v2) / ATOL register"))
    from .emulators.mercury.cli import add_arguments as mercury_arguments

    mercury_arguments(kinds.add_parser("mercury", help="служба ККТ Меркурий (JSON по HTTP) / Mercury JSON service"))
    from .emulators.arcus.cli import add_arguments as arcus_arguments

    arcus_arguments(kinds.add_parser("arcus", help="библиотека-эмулятор arccom (Arcus2) / the arccom library emulator"))
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
