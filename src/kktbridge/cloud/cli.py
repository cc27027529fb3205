"""`kktbridge cloud`: run the cloud service, or manage accounts, users, drivers and devices from the shell.

Every command takes `--db URL` (default: a SQLite file in the user's data folder) and prints one JSON line: the
service when it listens, the others what they made, credentials included (they are shown this once). A bad
argument or an unreachable database is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta

from ..fiscal import BridgeError
from .config import DEFAULT_LISTEN, DEVICE_KINDS, CloudConfig, ConfigError, default_database_url, engine_url, \
    parse_listen

__all__ = ["add_arguments"]

log = logging.getLogger("kktbridge.cloud")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _db(parser, None)
    parser.add_argument("--listen", metavar="HOST:PORT", default=DEFAULT_LISTEN,
                        help=f"where the service listens (default {DEFAULT_LISTEN}; port 0: any free port)")
    parser.add_argument("--expire-after", type=float, default=72, metavar="HOURS",
                        help="a queued receipt whose driver never comes back expires after this (default 72)")
    parser.add_argument("--retention-days", type=float, default=365, metavar="DAYS",
                        help="finished receipts are kept this long (default 365)")
    parser.add_argument("--prog-url-wait", type=float, default=10, metavar="SECONDS",
                        help="how long a form with BIT_PROG_URL waits for the result (default 10)")
    parser.add_argument("--wait-poll", type=float, default=3, metavar="SECONDS",
                        help="how often a waiting request reads its receipt again when no note woke it (default 3)")
    parser.add_argument("--rate-limit", default="100/second", metavar="RATE",
                        help="requests per account, e.g. 100/second or 1000/minute (default 100/second)")
    parser.add_argument("--sweep-every", type=float, default=30, metavar="SECONDS",
                        help="how often expiry and retention run (default 30)")
    parser.add_argument("--cookie-secure", action="store_true", help="mark the session cookie Secure (behind TLS)")
    parser.add_argument("--lease", type=float, default=60, metavar="SECONDS",
                        help="how long a receipt sent to a driver is leased; renewed while its link lives (default 60)")
    parser.add_argument("--heartbeat", type=float, default=5, metavar="SECONDS",
                        help="how often linked drivers report their devices (default 5)")
    parser.add_argument("--allow-private-callbacks", action="store_true",
                        help="allow callbacks to loopback and private addresses (for a demo or a closed network)")
    parser.add_argument("--node", default="", help="this process's name in leases (default host:pid)")
    parser.add_argument("--callback-backoff", type=float, default=10, metavar="SECONDS",
                        help="the first retry of a failed callback after this; each next waits twice as long "
                             "(default 10)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.set_defaults(run=_serve)
    commands = parser.add_subparsers(dest="cloud_command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}

    def command(group: str, group_help: str, name: str, text: str, action) -> argparse.ArgumentParser:
        if group not in groups:
            groups[group] = commands.add_parser(group, help=group_help).add_subparsers(
                dest="action", metavar="ACTION", required=True)
        leaf = groups[group].add_parser(name, help=text)
        _db(leaf)
        leaf.set_defaults(run=_command(action))
        return leaf

    accounts = "аккаунты / accounts"
    command("account", accounts, "create", "новый аккаунт с ключами / a new account with its secrets",
            _account_create).add_argument("--name", required=True)
    command("account", accounts, "list", "все аккаунты / every account", _account_list)
    user = command("user", "пользователи кабинета / cabinet users", "add",
                   "новый пользователь с паролем / a new user with a password", _user_add)
    user.add_argument("--account", type=int, required=True, metavar="ID")
    user.add_argument("--login", required=True)
    driver = command("driver", "драйверы / drivers", "add", "новый драйвер с ключом / a new driver with its key",
                     _driver_add)
    driver.add_argument("--account", type=int, required=True, metavar="ID")
    driver.add_argument("--name", required=True)
    device = command("device", "устройства / devices", "add",
                     "устройство драйвера с токеном / a driver's device with a token", _device_add)
    device.add_argument("--driver", type=int, required=True, metavar="ID")
    device.add_argument("--kind", required=True, choices=DEVICE_KINDS)
    device.add_argument("--name")
    device.add_argument("--token", metavar="HEX32",
                        help="the device's token in the driver's config (default: a new one)")


def _db(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    # On the sub-commands the default is SUPPRESS, so `cloud --db X account list` and `cloud account list --db X`
    # both work and neither overwrites the other.
    parser.add_argument("--db", metavar="URL", default=default,
                        help="postgresql://user@host/db or sqlite:///path (default: a SQLite file in the data folder)")


def _fail(message_ru: str, message_en: str, code: int) -> int:
    print(f"kktbridge cloud: {message_ru} / {message_en}", file=sys.stderr)
    return code


def _database_problem(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {orig}".splitlines()[0][:300]


def _command(action: Callable[..., Awaitable[dict]]):
    def run(args: argparse.Namespace) -> int:
        import sqlalchemy as sa

        from .store import Store, is_unavailable

        url = args.db or default_database_url()
        try:
            engine_url(url)
        except ConfigError as exc:
            return _fail(exc.ru, exc.en, 2)

        async def go() -> dict:
            store = await Store.open(url)
            try:
                return await action(store, args)
            finally:
                await store.close()

        try:
            result = asyncio.run(go())
        except BridgeError as exc:
            return _fail(exc.ru, exc.en, 2)
        except Exception as exc:
            if is_unavailable(exc) or isinstance(exc, sa.exc.DBAPIError):
                return _fail(f"база данных {_safe(url)} недоступна ({_database_problem(exc)})",
                             f"the database {_safe(url)} is unreachable ({_database_problem(exc)})", 1)
            raise
        print(json.dumps(result, ensure_ascii=False))
        return 0

    return run


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "?"


async def _account_create(store, args: argparse.Namespace) -> dict:
    from .provision import create_account

    return (await create_account(store, args.name)).to_dict()


async def _account_list(store, args: argparse.Namespace) -> dict:
    from .views import timestamp

    return {"accounts": [{"account_id": a.id, "name": a.name, "created_at": timestamp(a.created_at)}
                         for a in await store.accounts()]}


async def _user_add(store, args: argparse.Namespace) -> dict:
    from .provision import add_user

    user, password = await add_user(store, args.account, args.login)
    return {"user_id": user.id, "account_id": user.account_id, "login": user.login, "password": password}


async def _driver_add(store, args: argparse.Namespace) -> dict:
    from .provision import add_driver

    driver, key = await add_driver(store, args.account, args.name)
    return {"driver_id": driver.id, "account_id": driver.account_id, "name": driver.name, "driver_key": key}


async def _device_add(store, args: argparse.Namespace) -> dict:
    from .provision import add_device

    device, token = await add_device(store, args.driver, args.kind, name=args.name, token=args.token)
    return {"device_id": device.id, "driver_id": device.driver_id, "account_id": device.account_id,
            "kind": device.kind, "name": device.name, "token": token}


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.verbose:  # ours only: the database drivers' debug lines would carry SQL parameters
        logging.getLogger("kktbridge").setLevel(logging.DEBUG)
    try:
        host, port = parse_listen(args.listen)
        config = CloudConfig(database_url=args.db or default_database_url(), host=host, port=port,
                             expire_after=timedelta(hours=args.expire_after),
                             retention=timedelta(days=args.retention_days), prog_url_wait=args.prog_url_wait,
                             wait_poll=args.wait_poll,
                             rate_limit=args.rate_limit, sweep_every=args.sweep_every,
                             cookie_secure=args.cookie_secure, node=args.node,
                             lease=args.lease, heartbeat=args.heartbeat,
                             allow_private_callbacks=args.allow_private_callbacks,
                             callback_backoff=args.callback_backoff)
    except (ConfigError, OverflowError) as exc:
        if isinstance(exc, ConfigError):
            return _fail(exc.ru, exc.en, 2)
        return _fail("слишком большое число в аргументах", "a number in the arguments is too large", 2)
    return asyncio.run(_run_service(config))


async def _run_service(config: CloudConfig) -> int:
    import sqlalchemy as sa

    from ..process import until_stopped
    from .app import CloudService
    from .store import is_unavailable

    service = CloudService(config)
    try:
        url = await service.start()
    except Exception as exc:
        opened = service.store is not None  # the database was reached: listening failed
        if opened:
            await service.store.close()
        if opened and isinstance(exc, OSError):
            return _fail(f"не удалось слушать {config.host}:{config.port}: {exc.strerror}",
                         f"cannot listen on {config.host}:{config.port}: {exc.strerror}", 1)
        if isinstance(exc, BridgeError):
            return _fail(exc.ru, exc.en, 1)
        if not opened and (is_unavailable(exc) or isinstance(exc, sa.exc.DBAPIError)):
            return _fail(f"база данных {_safe(config.database_url)} недоступна ({_database_problem(exc)})",
                         f"the database {_safe(config.database_url)} is unreachable ({_database_problem(exc)})", 1)
        raise
    print(json.dumps({"url": url, "database": _safe(config.database_url), "node": service.node}), flush=True)
    log.info("listening on %s, database %s", url, _safe(config.database_url))
    await until_stopped()
    await service.stop()
    return 0
