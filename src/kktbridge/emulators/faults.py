"""Fault switches shared by every emulator, set from tests or the control port while the emulator runs.

A real register runs out of paper, has its cover opened, prints slowly, loses its link in the middle of a
frame, or loses power. Each switch here makes the emulator behave that way; the emulators read them, the
control server (control.py) and tests write them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["Faults"]


@dataclass
class Faults:
    no_paper: bool = False  # printing fails: "no paper"
    paper_out_at_close: bool = False  # the receipt is fiscalized, then paper runs out while it prints
    cover_open: bool = False
    print_latency: float = 0.0  # seconds each printed document takes
    drop_after_bytes: int | None = None  # close the link after sending this many more bytes
    power_loss_at: str | None = None  # die (os._exit) when this command runs, before ("before:4A") or after it
    documents_unreadable: bool = False  # ATOL: the FN archive gives nothing back by number (its last document does)

    def update(self, changes: dict[str, object]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault switches: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        for name, value in changes.items():
            setattr(self, name, value)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
