"""Arcus2 bank terminals (Ingenico, VTB and others) through the arccom library's C API."""

from .adapter import APPROVED, OPERATIONS, ArcusTerminal

__all__ = ["APPROVED", "OPERATIONS", "ArcusTerminal"]
