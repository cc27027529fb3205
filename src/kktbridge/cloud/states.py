"""The life of a cloud receipt: every state, every allowed move, and the timestamp each move writes.

Everything that decides whether a receipt may change state lives in this table; the store turns a move into
one conditional UPDATE (`WHERE state IN sources(target)`), so two nodes racing for one receipt cannot both
win, and a receipt never leaves a final state.

    queued ──▶ delivered ──▶ done | failed | unknown
    queued ──▶ expired                 unknown ──▶ done | failed

`delivered` means a driver holds a lease on it; `unknown` means the lease ran out after the packet may have
reached the register, so it is never sent again blindly: the driver's report settles it. The public
`status` is ATOL Online's three-valued one (wait / done / fail), which shops' code already understands.
"""

from __future__ import annotations

import enum

__all__ = ["FINAL", "TRANSITIONS", "IllegalTransition", "State", "can_move", "sources", "stamp_column"]


class State(str, enum.Enum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"

    @property
    def status(self) -> str:
        """ATOL Online's status of a receipt in this state."""
        return _STATUS[self]

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({State.DONE, State.FAILED, State.EXPIRED})

# (from, to) → the column that records when the receipt entered `to`.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.QUEUED, State.DELIVERED): "delivered_at",
    (State.QUEUED, State.EXPIRED): "finished_at",
    (State.DELIVERED, State.DONE): "finished_at",
    (State.DELIVERED, State.FAILED): "finished_at",
    (State.DELIVERED, State.UNKNOWN): "unknown_at",
    (State.UNKNOWN, State.DONE): "finished_at",
    (State.UNKNOWN, State.FAILED): "finished_at",
}

_STATUS = {State.QUEUED: "wait", State.DELIVERED: "wait", State.UNKNOWN: "wait", State.DONE: "done",
           State.FAILED: "fail", State.EXPIRED: "fail"}


class IllegalTransition(ValueError):
    """A move the table does not allow (a bug in the caller, never a client's mistake)."""


def can_move(source: State, target: State) -> bool:
    return (source, target) in TRANSITIONS


def sources(target: State) -> tuple[State, ...]:
    """The states a receipt may be in to move to `target`."""
    found = tuple(source for source, to in TRANSITIONS if to is target)
    if not found:
        raise IllegalTransition(f"no state moves to {target.value}")
    return found


def stamp_column(target: State) -> str:
    """The timestamp column a move into `target` writes (the same from every source)."""
    columns = {column for (_, to), column in TRANSITIONS.items() if to is target}
    if len(columns) != 1:
        raise IllegalTransition(f"no single timestamp for {target.value}")
    return columns.pop()
