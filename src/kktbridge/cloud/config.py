"""The cloud service's settings: where the database is, where to listen, how long receipts wait and are kept.

Every number has a bound checked here, so the rest of the service can trust them. Database URLs are written as
people write them (`postgresql://user@host/db`, `sqlite:///path`); the async driver is chosen here, in one
place (asyncpg for PostgreSQL, aiosqlite for SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import platformdirs

from ..fiscal import BridgeError

__all__ = ["DEFAULT_LISTEN", "DEVICE_KINDS", "CloudConfig", "ConfigError", "default_database_url", "engine_url",
           "parse_listen"]

DEFAULT_LISTEN = "127.0.0.1:8080"
DEVICE_KINDS = ("atol", "mercury", "arcus")


class ConfigError(BridgeError):
    def __init__(self, ru: str, en: str) -> None:
        super().__init__("config", ru, en)


def default_database_url() -> str:
    """A SQLite file in the user's data folder (~/.local/share/kktbridge/cloud.sqlite3 on Linux)."""
    return "sqlite:///" + str(Path(platformdirs.user_data_dir("kktbridge", appauthor=False)) / "cloud.sqlite3")


def engine_url(url: str) -> str:
    """The SQLAlchemy URL with its async driver: postgresql:// → postgresql+asyncpg://, sqlite:// → +aiosqlite."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"адрес базы данных «{url}» не похож на URL (postgresql://… или sqlite:///…)",
                          f"the database address '{url}' is not a URL (postgresql://… or sqlite:///…)")
    base = scheme.split("+", 1)[0].lower()
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ConfigError(f"база данных «{scheme}» не поддерживается: только postgresql:// и sqlite:///",
                      f"the database '{scheme}' is not supported: only postgresql:// and sqlite:///")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT ([::1]:PORT for IPv6) → (host, port); port 0 asks for a free one."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen: ожидается ХОСТ:ПОРТ, получено «{text}»",
                          f"--listen: HOST:PORT is expected, got '{text}'")
    return host, int(port)


def _bounded(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: значение {value} вне пределов {low}…{high}",
                          f"{name}: the value {value} is outside {low}…{high}")


@dataclass(frozen=True)
class CloudConfig:
    database_url: str = field(default_factory=default_database_url)
    host: str = "127.0.0.1"
    port: int = 8080
    expire_after: timedelta = timedelta(hours=72)  # a queued receipt whose driver never comes back
    retention: timedelta = timedelta(days=365)  # finished receipts are kept this long, then deleted
    prog_url_wait: float = 10.0  # seconds the intake waits for a result when BIT_PROG_URL is given
    wait_poll: float = 3.0  # seconds a waiting request (?wait=, BIT_PROG_URL) reads its receipt again when no note
    #                        woke it (a move by a node that could not tell this one); slow: hundreds may wait
    rate_limit: str = "100/second"  # requests per account (the `limits` notation: "100/second", "5/minute")
    sweep_every: float = 30.0  # seconds between expiry and retention passes
    session_lifetime: timedelta = timedelta(hours=12)
    signature_window: int = 300  # seconds a signed JSON API request's timestamp may differ from ours
    cookie_secure: bool = False  # the session cookie's Secure flag (set it behind TLS)
    node: str = ""  # this process's name in leases; host:pid when empty
    lease: float = 60.0  # seconds a delivered receipt is leased; the link's node renews it while the link lives
    heartbeat: float = 5.0  # seconds between a linked driver's status reports (and the link's batched writes)
    # Callbacks to the shop (cloud/callbacks.py, cloud/ssrf.py). Loopback and private addresses are refused unless
    # allowed here (the demo allows them: its shop runs on the same machine).
    allow_private_callbacks: bool = False
    callback_timeout: float = 10.0  # seconds one POST may take, connecting included
    callback_backoff: float = 10.0  # seconds before the first retry; each next one waits twice as long (with jitter)
    callback_backoff_max: float = 3600.0  # the longest wait between two tries
    callback_retry_for: timedelta = timedelta(hours=24)  # a failing callback is retried this long, then given up
    callback_poll: float = 1.0  # seconds between looks for callbacks made by other nodes

    def __post_init__(self) -> None:
        engine_url(self.database_url)
        _bounded("expire_after (hours)", self.expire_after.total_seconds() / 3600, 1 / 3600, 24 * 366)
        _bounded("retention (days)", self.retention.total_seconds() / 86400, 1 / 86400, 3660)
        _bounded("prog_url_wait (s)", self.prog_url_wait, 0, 60)
        _bounded("wait_poll (s)", self.wait_poll, 0.05, 60)
        _bounded("sweep_every (s)", self.sweep_every, 0.01, 3600)
        _bounded("signature_window (s)", self.signature_window, 1, 3600)
        _bounded("callback_timeout (s)", self.callback_timeout, 0.1, 60)
        _bounded("callback_backoff (s)", self.callback_backoff, 0.001, 3600)
        _bounded("callback_backoff_max (s)", self.callback_backoff_max, self.callback_backoff, 86400)
        _bounded("callback_retry_for (hours)", self.callback_retry_for.total_seconds() / 3600, 0, 24 * 31)
        _bounded("callback_poll (s)", self.callback_poll, 0.01, 60)
        _bounded("lease (s)", self.lease, 1, 3600)
        _bounded("heartbeat (s)", self.heartbeat, 0.05, 60)
        if self.lease < 2 * self.heartbeat:
            raise ConfigError("lease: аренда должна быть не короче двух интервалов heartbeat (её продлевают раз в "
                              "heartbeat)", "lease: the lease must be at least two heartbeats (it is renewed once a "
                              "heartbeat)")
        _bounded("session_lifetime (hours)", self.session_lifetime.total_seconds() / 3600, 1 / 60, 24 * 31)
        from limits import parse

        try:
            parse(self.rate_limit)
        except ValueError:
            raise ConfigError(f"rate_limit: «{self.rate_limit}» не в записи «100/second»",
                              f"rate_limit: '{self.rate_limit}' is not like '100/second'") from None
