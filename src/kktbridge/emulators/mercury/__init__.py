"""An emulated Mercury register behind Incotex's JSON service (`POST /api.json`), over the shared fncore."""

from .server import MercuryEmulator, MercuryService

__all__ = ["MercuryEmulator", "MercuryService"]
