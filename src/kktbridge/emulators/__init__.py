"""Byte-faithful device emulators sharing one fiscal-storage model (fncore)."""
