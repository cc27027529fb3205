"""Emulator of the Arcus2 bank terminal at the arccom library boundary (spec/devices.md, section 3.1).

The PC <-> terminal protocol of Arcus is not public, so the emulator is a C library with the C API of
``arccom.dll`` (CreateITPos, ITPosSet, ITPosRun, ITPosGet, ITPosClear, Stop, DeleteITPos): the adapter loads it
through ctypes exactly as it would load the real one. ``arccom_emu.c`` documents its settings (``emu_*`` keys
or ``ARCCOM_EMU_*`` environment variables), op-code map and response codes; ``build_library`` compiles it.
"""

from .build import EmulatorBuildError, build_library

__all__ = ["EmulatorBuildError", "build_library"]
