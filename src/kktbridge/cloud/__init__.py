"""The cloud service ("режим оплаты в облаке"): accounts, the vendor's signed form and a JSON API feeding one
durable receipt queue, over SQLite or PostgreSQL. Stateless processes: any number may share one database.

The names below are imported when first used, so `kktbridge --help` does not load the database stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["CloudConfig", "CloudService", "State", "Store"]

if TYPE_CHECKING:
    from .app import CloudService
    from .config import CloudConfig
    from .states import State
    from .store import Store

_WHERE = {"CloudService": "app", "CloudConfig": "config", "State": "states", "Store": "store"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
