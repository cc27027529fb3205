"""Benchmark: from the shop's POST to the receipt done in the cloud, through the link, a driver and a register.

Processes, as in production: one `kktbridge cloud` (SQLite in a temporary directory, or `--postgres URL`: a database
made for this run and dropped after), `--drivers` drivers (`kktbridge driver`, each linked to the cloud by WebSocket)
each with its own zero-latency ATOL emulator (`kktbridge emulate atol`), and this script as the shop, posting the
vendor's form (the 1.2 example receipt, base64 of encodeURIComponent, md5 signature) at `--rate` receipts a second,
open loop (a slow answer does not slow the next post), round robin over the drivers' registers.

The time measured for each receipt: from just before its form POST until the signed JSON API answers
`GET /api/v1/receipts/{id}?wait=…` with the receipt `done` (the wait is woken by the driver's result). It stands in
for the signed callback, which is sent at the same moment by the callbacks' own code (issue 13, another part).
Every receipt must end `done`, and every register's journal must hold exactly the receipts sent to it.

    .venv/bin/python bench/cloud_latency.py --rate 10 --drivers 1 --seconds 30
    .venv/bin/python bench/cloud_latency.py --rate 100 --drivers 10 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloud_intake import admin, cpu_seconds, percentile, signed_form  # noqa: E402

from kktbridge.cloud.credentials import request_signature  # noqa: E402
from kktbridge.cloud.provision import add_device, add_driver, create_account  # noqa: E402
from kktbridge.cloud.store import Store  # noqa: E402
from kktbridge.emulators.fncore import read_journal  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def provision(url: str, drivers: int):
    store = await Store.open(url)
    try:
        account = (await create_account(store, "Магазин")).account
        out = []
        for index in range(drivers):
            driver, key = await add_driver(store, account.id, f"ПК {index}")
            _, token = await add_device(store, driver.id, "atol")
            out.append((key, token))
        return account, out
    finally:
        await store.close()


LOGS: Path | None = None  # --logs: each process's stderr goes to a file there


def spawn(args: list[str], profile: str | None = None) -> subprocess.Popen:
    """A kktbridge process; with `profile`, under cProfile writing there when it stops."""
    python = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else [])]
    log = open(LOGS / f"{args[0]}-{len(list(LOGS.iterdir()))}.log", "w") if LOGS else subprocess.DEVNULL
    return subprocess.Popen([*python, "-m", "kktbridge", *args], stdout=subprocess.PIPE, stderr=log, text=True)


async def linked(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/status") as response:
                    cloud = (await response.json())["cloud"]
                    if cloud and cloud["state"] == "online":
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the driver on port {port} never linked")


async def scratch_database(workdir: Path, postgres: str | None) -> tuple[str, str | None]:
    """(the URL, the PostgreSQL database's name or None): SQLite in `workdir`, or a database made on `postgres`."""
    if not postgres:
        return f"sqlite:///{workdir / 'cloud.sqlite3'}", None
    name = f"kktb_bench_{os.getpid()}_{secrets.token_hex(3)}"
    await admin(postgres, f'CREATE DATABASE "{name}"')
    return sa.engine.make_url(postgres).set(database=name).render_as_string(hide_password=False), name


async def clean_up(processes: list[subprocess.Popen], postgres: str | None, name: str | None) -> None:
    """Stop the processes (last started first) and drop the scratch database."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    if name:
        await admin(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="kktb-latency-"))
    url, name = await scratch_database(workdir, args.postgres)
    processes: list[subprocess.Popen] = []
    try:
        account, drivers = await provision(url, args.drivers)
        cloud = spawn(["cloud", "--db", url, "--listen", "127.0.0.1:0", "--rate-limit", "1000000/second",
                       "--prog-url-wait", "0"], profile=args.profile)
        processes.append(cloud)
        cloud_url = json.loads(cloud.stdout.readline())["url"]
        ports, journals = [], []
        for index, (key, token) in enumerate(drivers):
            journal = workdir / f"atol-{index}.jsonl"
            emulator = spawn(["emulate", "atol", "--tcp", "127.0.0.1:0", "--journal", str(journal), "--no-fsync"])
            processes.append(emulator)
            tcp = json.loads(emulator.stdout.readline())["tcp"]
            port = free_port()
            config = workdir / f"driver-{index}.toml"
            config.write_text(f'[driver]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{(workdir / f"d{index}").as_posix()}"'
                              f'\n\n[[devices]]\nkind = "atol"\ntoken = "{token}"\ntcp = "{tcp}"\nvat = 6\n\n'
                              f'[cloud]\nurl = "{cloud_url}"\nkey = "{key}"\n', encoding="utf-8")
            processes.append(spawn(["driver", "--config", str(config)]))
            ports.append(port)
            journals.append(journal)
        await asyncio.gather(*(linked(port) for port in ports))

        total = args.warmup * len(drivers) + int(args.rate * args.seconds)
        forms = [(i % len(drivers), signed_form(account, drivers[i % len(drivers)][1], f"bench-{i}"))
                 for i in range(total)]
        latencies: list[float] = []
        posts: list[float] = []  # the POST alone: until the receipt is committed and the shop has its answer
        failures: list[str] = []
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            async def one(body: bytes, measured: bool) -> None:
                started = time.perf_counter()
                async with http.post(cloud_url + "/api/fiscal/create-receipt.php", data=body,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
                    answer = await response.json()
                posted = time.perf_counter() - started
                if response.status != 201:
                    failures.append(f"POST {response.status}: {str(answer)[:200]}")
                    return
                path = f"/api/v1/receipts/{answer['receipt']['id']}?wait=30"
                stamp = str(int(time.time()))
                signature = request_signature(account.api_secret, "GET", path, stamp, b"")
                async with http.get(cloud_url + path, headers={
                        "X-Kktbridge-Account": str(account.id), "X-Kktbridge-Timestamp": stamp,
                        "X-Kktbridge-Signature": f"sha256={signature}"}) as response:
                    receipt = await response.json()
                if receipt.get("state") != "done":
                    failures.append(f"receipt {receipt.get('id')}: {receipt.get('state')} {receipt.get('error')}")
                    return
                if measured:
                    latencies.append(time.perf_counter() - started)
                    posts.append(posted)

            warm = args.warmup * len(drivers)  # each register's first receipt also opens its shift
            await asyncio.gather(*(one(body, False) for _, body in forms[:warm]))
            cpu_before = cpu_seconds(cloud.pid)
            began = time.perf_counter()
            tasks = []
            for n, (_, body) in enumerate(forms[warm:]):
                delay = began + n / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(one(body, True)))
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - began
            cloud_cpu = cpu_seconds(cloud.pid) - cpu_before
        per_register = [len([r for r in read_journal(j) if r["doc"] == "receipt"]) for j in journals]
        expected = [len([1 for d, _ in forms if d == index]) for index in range(len(drivers))]
        if failures or per_register != expected:
            raise RuntimeError(f"failures: {failures[:5]}; receipts per register {per_register}, sent {expected}")
        measured = len(latencies)
        return {"database": "postgresql" if name else "sqlite", "drivers": len(drivers), "rate": args.rate,
                "receipts": measured, "achieved_per_s": round(measured / elapsed, 1),
                "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                "max_ms": round(max(latencies) * 1000, 1),
                "post_p50_ms": round(percentile(posts, 0.50) * 1000, 1),
                "post_p99_ms": round(percentile(posts, 0.99) * 1000, 1),
                "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
                "cloud_cpu_ms_per_receipt": round(cloud_cpu / measured * 1000, 2),
                "load_average": os.getloadavg()[0]}
    finally:
        await clean_up(processes, args.postgres, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10, help="receipts a second (default 10)")
    parser.add_argument("--drivers", type=int, default=1, help="linked drivers, each with its register (default 1)")
    parser.add_argument("--seconds", type=float, default=30, help="how long the measured part lasts (default 30)")
    parser.add_argument("--warmup", type=int, default=2, help="receipts per register before measuring (default 2)")
    parser.add_argument("--postgres", metavar="URL", help="run the cloud on PostgreSQL (a database of its own)")
    parser.add_argument("--profile", metavar="FILE", help="profile the cloud process (cProfile) into FILE")
    parser.add_argument("--logs", metavar="DIR", type=Path, help="keep each process's log in DIR")
    args = parser.parse_args()
    global LOGS
    LOGS = args.logs
    if LOGS:
        LOGS.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
