"""`kktbridge cloud` as an operator runs it: real processes, one JSON line each, clear errors and no tracebacks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from kktbridge.cloud.credentials import check_password, digest
from kktbridge.cloud.store import Store

from .support import CloudProcess, make_tenant


def cloud(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kktbridge", "cloud", *args], capture_output=True, text=True,
                          timeout=timeout)


def all_at_once(runs: list[tuple[str, ...]]) -> list[subprocess.CompletedProcess]:
    """Several commands, each its own process, run side by side (each takes a second to start)."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda args: cloud(*args), runs))


def made(*args: str) -> dict:
    done = cloud(*args)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    return json.loads(line)


async def test_the_operators_commands_make_what_they_print(pg_url):
    db_url = pg_url
    account = made("account", "create", "--name", "Магазин на диване", "--db", db_url)
    assert set(account) == {"account_id", "name", "integrity_code", "api_secret", "webhook_secret", "created_at"}
    listed = made("--db", db_url, "account", "list")  # --db before the command works as well
    assert listed == {"accounts": [{"account_id": account["account_id"], "name": "Магазин на диване",
                                    "created_at": account["created_at"]}]}
    user, driver = (json.loads(done.stdout) for done in all_at_once([
        ("user", "add", "--account", str(account["account_id"]), "--login", "shop@example.ru", "--db", db_url),
        ("driver", "add", "--account", str(account["account_id"]), "--name", "ПК кассира", "--db", db_url)]))
    given = "c751398cbf6f97b912050906923da1d6"
    register = made("device", "add", "--driver", str(driver["driver_id"]), "--kind", "atol", "--token", given.upper(),
                    "--db", db_url)
    terminal = made("device", "add", "--driver", str(driver["driver_id"]), "--kind", "arcus", "--name", "Пинпад",
                    "--db", db_url)
    assert register["token"] == given and len(terminal["token"]) == 32 and terminal["name"] == "Пинпад"
    store = await Store.open(db_url)
    try:
        stored = await store.account(account["account_id"])
        assert stored.integrity_code == account["integrity_code"] and stored.api_secret == account["api_secret"]
        login = await store.user_by_login("shop@example.ru")
        assert (await check_password(login.password_hash, user["password"]))[0]
        assert user["password"] not in login.password_hash
        assert (await store.driver_by_key(digest(driver["driver_key"]))).id == driver["driver_id"]
        _, device = await store.account_and_device(account["account_id"], digest(given))
        assert device.id == register["device_id"] and device.kind == "atol"
    finally:
        await store.close()


async def test_bad_arguments_and_missing_things_are_one_clear_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    store = await Store.open(db)
    tenant = await make_tenant(store, "Магазин")
    await store.close()
    account, driver = {"account_id": tenant.id}, {"driver_id": tenant.driver.id}
    cases = [(("device", "add", "--driver", str(tenant.driver.id), "--kind", "atol", "--token", tenant.token), 2,
              "already")]
    cases += [
        (("device", "add", "--driver", str(driver["driver_id"]), "--kind", "atol", "--token", "xyz"), 2, "32 hex"),
        (("device", "add", "--driver", "999", "--kind", "atol"), 2, "no driver 999"),
        (("device", "add", "--driver", "1", "--kind", "shtrih"), 2, "invalid choice"),
        (("driver", "add", "--account", "999", "--name", "x"), 2, "no account 999"),
        (("user", "add", "--account", str(account["account_id"]), "--login", "has space"), 2, "login"),
        (("account", "create", "--name", ""), 2, "1…200"),
        (("user", "add", "--account", "abc", "--login", "x"), 2, "invalid int"),
    ]
    for (args, code, text), done in zip(cases, all_at_once([(*args, "--db", db) for args, _, _ in cases])):
        assert done.returncode == code and text in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_an_unreachable_or_unknown_database_is_said_plainly(tmp_path):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    cases = [
        (("account", "list", "--db", f"postgresql://postgres:s3cret@127.0.0.1:{port}/x"), 1, "unreachable"),
        (("--db", f"postgresql://postgres:s3cret@127.0.0.1:{port}/x", "--listen", "127.0.0.1:0"), 1, "unreachable"),
        (("account", "list", "--db", "mysql://x/y"), 2, "not supported"),
        (("--db", f"sqlite:///{tmp_path / 'c.sqlite3'}", "--listen", "nowhere"), 2, "HOST:PORT"),
        (("--db", f"sqlite:///{tmp_path / 'c.sqlite3'}", "--rate-limit", "lots"), 2, "rate_limit"),
        (("--db", f"sqlite:///{tmp_path / 'c.sqlite3'}", "--expire-after", "-1"), 2, "expire_after"),
    ]
    for (args, code, text), done in zip(cases, all_at_once([args for args, _, _ in cases])):
        assert done.returncode == code and text in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and "s3cret" not in done.stderr


def test_the_service_says_where_it_listens_and_refuses_a_taken_port(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    node = CloudProcess(db).start()
    try:
        port = node.url.rsplit(":", 1)[1]
        done = cloud("--db", db, "--listen", f"127.0.0.1:{port}")
        assert done.returncode == 1 and "cannot listen" in done.stderr and "Traceback" not in done.stderr
    finally:
        log = node.stop()
    assert "Traceback" not in log
