"""Compiles the arccom emulator (arccom_emu.c, shipped in the wheel next to this file) with the system C compiler.

Linux: ``libarccom.so`` with ``$CC`` or the first of cc, gcc, clang on PATH (tested).
Windows: ``arccom.dll`` with MinGW gcc or MSVC ``cl`` (untested); by hand:

    gcc -std=c99 -Wall -Wextra -O2 -shared -D__USE_MINGW_ANSI_STDIO=1 -static-libgcc -o arccom.dll arccom_emu.c
    cl /nologo /W4 /O2 /utf-8 /LD arccom_emu.c /Fe:arccom.dll

Load the result with ``ctypes.CDLL`` (the functions are cdecl). The library is rebuilt only when the source is
newer than it, or differs from the source it was built from (its SHA-256 is kept next to it in ``<library>.sha256``:
wheels carry fixed timestamps, so after an upgrade the times alone could not tell); a new build replaces the old
file atomically.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

from kktbridge.fiscal.errors import BridgeError

__all__ = ["SOURCE_NAME", "EmulatorBuildError", "build_library", "compile_command", "library_name"]

SOURCE_NAME = "arccom_emu.c"
_CANDIDATES = ("cc", "gcc", "clang")
_TIMEOUT_S = 300


class EmulatorBuildError(BridgeError):
    """The emulator library could not be built; ``output`` holds what the compiler printed."""

    def __init__(self, code: str, ru: str, en: str, *, output: str = "") -> None:
        self.output = output
        super().__init__(code=code, ru=ru, en=en)

    def text(self) -> str:
        base = super().text()
        return f"{base}\n{self.output}" if self.output else base


def library_name(platform: str = sys.platform) -> str:
    """The file name the library gets on this platform: arccom.dll, libarccom.dylib or libarccom.so."""
    if platform.startswith(("win", "cygwin", "msys")):
        return "arccom.dll"
    if platform == "darwin":
        return "libarccom.dylib"
    return "libarccom.so"


def _compiler_argv(compiler: str | None) -> list[str]:
    spec = compiler or os.environ.get("CC", "").strip()
    if spec:
        argv = [spec] if Path(spec).is_file() else shlex.split(spec, posix=os.name != "nt")
        if argv and (Path(argv[0]).is_file() or shutil.which(argv[0])):
            return argv
    else:
        for name in _CANDIDATES:
            if shutil.which(name):
                return [name]
    raise EmulatorBuildError(
        "no_c_compiler",
        f"не найден компилятор C{f' ({spec})' if spec else ''}: установите gcc (apt install gcc) или задайте CC",
        f"no C compiler found{f' ({spec})' if spec else ''}: install gcc (apt install gcc) or set CC",
    )


def compile_command(compiler: list[str], source: Path, target: Path, platform: str = sys.platform) -> list[str]:
    """The command line that builds ``target`` from ``source`` with ``compiler`` (argv, flags included)."""
    if Path(compiler[0]).stem.lower() == "cl":
        return [*compiler, "/nologo", "/W4", "/O2", "/utf-8", "/LD", str(source), f"/Fe:{target}"]
    flags = ["-std=c99", "-Wall", "-Wextra", "-O2", "-shared"]
    if platform.startswith(("win", "cygwin", "msys")):
        return [*compiler, *flags, "-D__USE_MINGW_ANSI_STDIO=1", "-static-libgcc", "-o", str(target), str(source)]
    posix = ["-fPIC", "-fvisibility=hidden", "-D_POSIX_C_SOURCE=200809L"]
    return [*compiler, *flags, *posix, "-o", str(target), str(source), "-pthread"]


def build_library(out_dir: Path, *, compiler: str | None = None) -> Path:
    """Builds the emulator into ``out_dir`` (created if needed) unless an up-to-date build is there; returns its path.

    ``compiler`` is a program name or path, optionally with arguments ("ccache gcc"); by default ``$CC``, else cc,
    gcc or clang from PATH. Raises EmulatorBuildError when no compiler exists or the compilation fails.
    """
    out_dir = Path(out_dir).resolve()  # absolute: the compiler runs in a folder of its own
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / library_name()
    stamp = target.with_name(target.name + ".sha256")
    with resources.as_file(resources.files(__package__) / SOURCE_NAME) as source:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if _up_to_date(target, stamp, source, digest):
            return target
        argv = _compiler_argv(compiler)
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".arccom-build-") as work:
            built = Path(work) / target.name
            command = compile_command(argv, source, built)
            try:
                done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise EmulatorBuildError(
                    "emulator_build_failed",
                    f"не удалось запустить компилятор C: {exc}",
                    f"could not run the C compiler: {exc}",
                ) from exc
            if done.returncode != 0 or not built.exists():
                raise EmulatorBuildError(
                    "emulator_build_failed",
                    f"не удалось собрать эмулятор arccom ({shlex.join(command)})",
                    f"building the arccom emulator failed (exit status {done.returncode})",
                    output=(done.stdout + done.stderr).strip(),
                )
            os.replace(built, target)
            stamp.write_text(digest + "\n", encoding="ascii")
    return target


def _up_to_date(target: Path, stamp: Path, source: Path, digest: str) -> bool:
    try:
        return target.stat().st_mtime >= source.stat().st_mtime and stamp.read_text(encoding="ascii").strip() == digest
    except OSError:
        return False
