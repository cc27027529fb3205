"""The cloud on both databases: SQLite in a temporary file, and the machine's PostgreSQL in a database of its own.

PostgreSQL comes from KKTBRIDGE_TEST_POSTGRES (scripts/test.sh sets the machine's server as the default). Each test
session creates a database with a unique name on that server and drops it at the end, so parallel runs never meet;
tests share it one after another, each starting from empty tables. The PostgreSQL variants skip only when no
server answers, and say why.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from kktbridge.cloud import CloudConfig, CloudService, Store

from .support import Shop, admin, reset_postgres

POSTGRES_ENV = "KKTBRIDGE_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of this session's own PostgreSQL database, or a skip naming why there is none."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (scripts/test.sh sets it to the machine's server)")
    name = f"kktb_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(admin(base, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncio.TimeoutError) as exc:
        pytest.skip(f"no PostgreSQL server answers at {base}: {exc}")
    url = str(sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False))
    yield url
    asyncio.run(admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty cloud database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def pg_url(postgres_url) -> str:
    """This session's PostgreSQL database, emptied (for tests that run on PostgreSQL alone)."""
    reset_postgres(postgres_url)
    return postgres_url


@pytest.fixture
async def store(db_url) -> AsyncIterator[Store]:
    store = await Store.open(db_url)
    yield store
    await store.close()


@pytest.fixture
def cloud_options() -> dict:
    """Override in a test module to run the service with other settings."""
    return {}


@pytest.fixture
async def cloud(store, cloud_options) -> AsyncIterator[Shop]:
    """The cloud service on a free port over `store`, and a shop's client with one account, driver and register."""
    options = {"host": "127.0.0.1", "port": 0, "database_url": "sqlite://", **cloud_options}
    limits = {k: options.pop(k) for k in ("auth_failure_limit", "login_limit") if k in options}
    service = CloudService(CloudConfig(**options), store, **limits)
    await service.start()
    shop = await Shop.create(service)
    yield shop
    await shop.close()
    await service.stop()
