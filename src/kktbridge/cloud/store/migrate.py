"""Bring a database to the schema this code needs: Alembic's migrations, run from Python, never by hand.

Several cloud processes may start at once on one PostgreSQL; a transaction-scoped advisory lock makes them
migrate one after another (the second finds nothing to do). SQLite's own write lock does the same there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

from ...fiscal import BridgeError

__all__ = ["current_revision", "head_revision", "upgrade"]

_LOCK = 0x6B6B7462  # "kktb": the advisory lock key of schema migrations


def _config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", "kktbridge.cloud.store:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def upgrade(engine: AsyncEngine) -> None:
    """Migrate to the newest revision (nothing to do when it is there already)."""
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            await connection.run_sync(lambda sync: command.upgrade(_config(sync), "head"))
    except CommandError as exc:  # a database migrated by a newer kktbridge: its revision is unknown here
        raise BridgeError("schema", f"схема базы данных не подходит этой версии kktbridge: {exc}",
                          f"the database's schema does not fit this version of kktbridge: {exc}") from None


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
