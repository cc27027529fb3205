"""Mercury fiscal registers (Incotex Меркурий-115Ф/130Ф/180Ф/185Ф, 119Ф) through Incotex's JSON service.

The service ("универсальный драйвер", Inecrman) answers JSON over HTTP at `http://127.0.0.1:50010/api.json`.
`protocol` is the sans-I/O codec of its requests and replies (the emulator uses it too); `adapter` is
`MercuryRegister`, the `FiscalRegister` over it.
"""

from .adapter import MercuryRegister

__all__ = ["MercuryRegister"]
