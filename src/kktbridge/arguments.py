"""Command-line values every `kktbridge` command shares, checked by argparse before anything starts.

Rule of this file: a mistake on the command line is one line on stderr, naming the option and what it takes, and
exit code 2; never a traceback. `Parser` prints that one line (no usage block); the types below turn a bad value
into it (`--tcp 127.0.0.1:99999`, `--baudrate abc`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from .devices.transport import parse_address

__all__ = ["Parser", "address", "baudrate", "digits", "number"]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose error is one line: `kktbridge emulate atol: error: argument --tcp: ...`."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def address(default_port: int) -> Callable[[str], tuple[str, int]]:
    """HOST:PORT (or HOST alone, or [::1]:PORT) with a port of 0-65535."""

    def parse(text: str) -> tuple[str, int]:
        try:
            host, port = parse_address(text, default_port)
        except ValueError:
            host, port = "", -1
        if not host or not 0 <= port <= 65535:
            raise argparse.ArgumentTypeError(f"'{text}' is not HOST:PORT with a port of 0-65535 (e.g. 127.0.0.1:"
                                             f"{default_port})")
        return host, port

    return parse


def baudrate(text: str) -> int | str:
    """A serial speed (115200) or `auto`."""
    if text == "auto":
        return text
    if not (text.isascii() and text.isdigit()) or not 300 <= int(text) <= 4_000_000:
        raise argparse.ArgumentTypeError(f"'{text}' is not a serial speed (e.g. 115200) or auto")
    return int(text)


def digits(*lengths: int, most: int | None = None) -> Callable[[str], str]:
    """A string of ASCII digits of one of `lengths` (or of 1..`most`)."""
    allowed = " or ".join(map(str, lengths)) if lengths else f"1 to {most}"

    def parse(text: str) -> str:
        if not (text.isascii() and text.isdigit()) or (len(text) not in lengths if lengths else len(text) > (most or 0)):
            raise argparse.ArgumentTypeError(f"'{text}' is not {allowed} digits")
        return text

    return parse


def number(lowest: int, highest: int) -> Callable[[str], int]:
    """An integer within [lowest, highest]."""

    def parse(text: str) -> int:
        if not (text.isascii() and text.lstrip("-").isdigit()) or not lowest <= int(text) <= highest:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number from {lowest} to {highest}")
        return int(text)

    return parse
