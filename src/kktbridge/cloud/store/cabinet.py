"""SQL of what the cabinet pages change: rotation, settings (issue 14).

A mixin of `Store`: its methods run on `self.engine` like the rest of the store, and live here so that each
concern's statements stay together. Every statement is scoped by the account id, so a foreign id changes nothing
(the method answers False). After a change of the account's settings, keys or devices the caller runs
`store.account_changed(account_id)`: origins reach linked drivers, and every node drops what it remembers of the
account, so an old secret or token stops at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

__all__ = ["CabinetQueries"]


class CabinetQueries:
    """Mixed into `Store`."""

    async def _update_one(self, table: sa.Table, account_id: int, row_id: int, **values) -> bool:
        from .store import MAX_ID

        if not (isinstance(row_id, int) and 0 < row_id <= MAX_ID):
            return False
        owner = table.c.id if table.name == "accounts" else table.c.account_id
        where = [table.c.id == row_id, owner == account_id]
        async with self.engine.begin() as c:  # type: ignore[attr-defined]
            return (await c.execute(table.update().where(*where).values(**values))).rowcount > 0

    async def rotate_driver_key(self, account_id: int, driver_id: int, key_hash: str) -> bool:
        """The driver's key becomes the one hashed here; the old one no longer links."""
        from .schema import drivers

        return await self._update_one(drivers, account_id, driver_id, key_hash=key_hash)

    async def rotate_device_token(self, account_id: int, device_id: int, token_hash: str) -> bool:
        """The device's token becomes the one hashed here; receipts with the old one are refused."""
        from .schema import devices

        return await self._update_one(devices, account_id, device_id, token_hash=token_hash)

    async def set_allowed_origins(self, account_id: int, origins: Sequence[str]) -> bool:
        from .schema import accounts

        return await self._update_one(accounts, account_id, account_id, allowed_origins=json.dumps(list(origins)))

    async def set_integrity_code(self, account_id: int, code: str) -> bool:
        from .schema import accounts

        return await self._update_one(accounts, account_id, account_id, integrity_code=code)

    async def set_webhook_secret(self, account_id: int, secret: str) -> bool:
        from .schema import accounts

        return await self._update_one(accounts, account_id, account_id, webhook_secret=secret)
