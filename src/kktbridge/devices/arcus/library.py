"""The arccom C API through ctypes: `CreateITPos`, `ITPosSet`, `ITPosRun`, `ITPosGet`, `ITPosClear`, `DeleteITPos`,
`Stop` (spec/devices.md §3.1 b). Text crosses the boundary in CP1251 both ways.

This file only binds the functions and converts strings; what the keys mean is the adapter's business. Every call
here except `stop` may block (ITPosRun waits for the cardholder): callers run them in a worker thread.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from ..errors import device_error

__all__ = ["ArccomLibrary", "Handle"]

ENCODING = "cp1251"


class ArccomLibrary:
    """A loaded arccom library (arccom.dll / libarccom.so) with its prototypes declared."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._lib = ctypes.CDLL(str(self.path))  # cdecl on every platform
        except OSError as exc:
            raise device_error("link", ru="не удалось загрузить библиотеку банковского терминала",
                               en="cannot load the bank terminal's library",
                               device_text=f"{self.path}: {exc}") from None
        lib = self._lib
        try:
            lib.CreateITPos.restype = ctypes.c_void_p
            lib.CreateITPos.argtypes = []
            lib.DeleteITPos.restype = None
            lib.DeleteITPos.argtypes = [ctypes.c_void_p]
            lib.ITPosSet.restype = ctypes.c_int
            lib.ITPosSet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
            lib.ITPosGet.restype = ctypes.c_int
            lib.ITPosGet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
            lib.ITPosRun.restype = ctypes.c_int
            lib.ITPosRun.argtypes = [ctypes.c_void_p, ctypes.c_int]
            lib.ITPosClear.restype = ctypes.c_int
            lib.ITPosClear.argtypes = [ctypes.c_void_p]
            lib.Stop.restype = None
            lib.Stop.argtypes = [ctypes.c_void_p]
        except AttributeError as exc:
            raise device_error("not_supported", ru="библиотека не похожа на arccom", en="the library is not arccom",
                               device_text=f"{self.path}: {exc}") from None

    def create(self) -> "Handle":
        handle = self._lib.CreateITPos()
        if not handle:
            raise device_error("device_error", device_text="CreateITPos returned NULL")
        return Handle(self._lib, handle)


class Handle:
    """One ITPos object. Not thread-safe except `stop`, which the C API allows from another thread."""

    def __init__(self, lib: ctypes.CDLL, pointer: int) -> None:
        self._lib = lib
        self._pointer = ctypes.c_void_p(pointer)

    def set(self, key: str, value: str) -> int:
        data = value.encode(ENCODING, errors="replace")
        return self._lib.ITPosSet(self._pointer, key.encode("ascii"), data, len(data))

    def get(self, key: str) -> str | None:
        name = key.encode("ascii")
        size = self._lib.ITPosGet(self._pointer, name, None, -1)
        if size <= 0:
            return None
        buffer = ctypes.create_string_buffer(size)
        if self._lib.ITPosGet(self._pointer, name, buffer, size) != 0:
            return None
        return buffer.value.decode(ENCODING, errors="replace")

    def run(self, opcode: int) -> int:
        return self._lib.ITPosRun(self._pointer, opcode)

    def clear(self) -> int:
        return self._lib.ITPosClear(self._pointer)

    def stop(self) -> None:
        self._lib.Stop(self._pointer)

    def delete(self) -> None:
        if self._pointer:
            self._lib.DeleteITPos(self._pointer)
            self._pointer = ctypes.c_void_p(0)


def default_library_name() -> str:
    return "arccom.dll" if sys.platform == "win32" or os.name == "nt" else "libarccom.so"
