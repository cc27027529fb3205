"""`kktbridge emulate arcus --build DIR`: compile the arccom emulator library with the system C compiler.

The library is loaded by the driver like the real arccom (`library = "<path>"` in a [[devices]] table of kind
arcus); it has no process of its own to run. Prints one JSON line with the library's path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...fiscal import BridgeError
from .build import build_library

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--build", metavar="DIR", type=Path, required=True,
                        help="where to put libarccom.so / arccom.dll (rebuilt only when its source changed)")
    parser.add_argument("--cc", metavar="COMPILER", help="the C compiler (default: $CC, cc, gcc or clang)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        library = build_library(args.build, compiler=args.cc)
    except BridgeError as exc:
        print(exc.text(), file=sys.stderr)
        return 1
    print(json.dumps({"kind": "arcus", "library": str(library)}, ensure_ascii=False))
    return 0
