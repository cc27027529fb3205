"""Alembic's environment for the cloud schema: always run from `kktbridge.cloud.store.migrate`, on its connection.

There is no alembic.ini: the service migrates its own database at start (and `kktbridge cloud` commands do
before they touch it), so the connection is handed over in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from kktbridge.cloud.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
