"""Benchmark: receipts per second into the cloud queue, and the shop's latency, on PostgreSQL.

Processes, as in production: `--nodes` cloud processes (`kktbridge cloud`) on one PostgreSQL database made for
this run (and dropped after), and this script as the load generator, in a process of its own. It provisions
`--accounts` shops with a driver and a register each, signs `--receipts` forms of the vendor's kind up front
(the 1.2 example receipt, base64 of encodeURIComponent, md5 signature; unique BIT_ORDER_IDs), then posts them
with `--concurrency` requests in flight, spread over the nodes. Every answer must be 201; at the end the
database must hold exactly the receipts that were confirmed. Reports receipts/s over the measured part and the
latency of each POST (p50, p99), after `--warmup` receipts.

    .venv/bin/python bench/cloud_intake.py [--nodes 2] [--receipts 20000] [--concurrency 64]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kktbridge.cloud.provision import add_device, add_driver, create_account  # noqa: E402
from kktbridge.cloud.store import Store  # noqa: E402
from kktbridge.examples import example_packet  # noqa: E402

RECEIPT = json.dumps(json.loads(example_packet())[1:], ensure_ascii=False, indent=2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * share))]


async def admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def signed_form(account, token: str, order: str) -> bytes:
    data = base64.b64encode(quote(RECEIPT, safe="-_.!~*'()").encode()).decode()
    signature = hashlib.md5((str(account.id) + token + order + RECEIPT + account.integrity_code).encode()).hexdigest()
    return urlencode({"BIT_ACCOUNT_ID": account.id, "BIT_KKT_TOKEN": token, "BIT_ORDER_ID": order,
                      "BIT_DATA": data, "BIT_SIGNATURE": signature}).encode()


async def provision(url: str, accounts: int) -> list[tuple]:
    store = await Store.open(url)
    shops = []
    for index in range(accounts):
        account = (await create_account(store, f"Магазин {index}")).account
        driver, _ = await add_driver(store, account.id, "ПК")
        _, token = await add_device(store, driver.id, "atol")
        shops.append((account, token))
    await store.close()
    return shops


def start_nodes(url: str, count: int) -> tuple[list[subprocess.Popen], list[str]]:
    nodes, urls = [], []
    for index in range(count):
        node = subprocess.Popen([sys.executable, "-m", "kktbridge", "cloud", "--db", url, "--listen", "127.0.0.1:0",
                                 "--rate-limit", "1000000/second", "--node", f"bench-{index}"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        nodes.append(node)
        urls.append(json.loads(node.stdout.readline())["url"] + "/api/fiscal/create-receipt.php")
    return nodes, urls


async def backends_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL server process working for this database (its backends)."""
    store = await Store.open(url, migrate=False)
    try:
        async with store.engine.connect() as c:
            rows = await c.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()"))
            pids = [row.pid for row in rows]
    finally:
        await store.close()
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            pass
    return out


async def post_all(urls: list[str], bodies: list[bytes], concurrency: int) -> tuple[list[float], float, int]:
    """(latencies in seconds, elapsed seconds, how many were confirmed with 201)."""
    latencies: list[float] = []
    confirmed = 0
    queue = iter(enumerate(bodies))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker(slot: int) -> None:
            nonlocal confirmed
            target = urls[slot % len(urls)]
            for _, body in queue:
                started = time.perf_counter()
                async with http.post(target, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 201:
                        raise RuntimeError(f"answer {response.status}: {(await response.text())[:300]}")
                latencies.append(time.perf_counter() - started)
                confirmed += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
        return latencies, time.perf_counter() - began, confirmed


async def run(args: argparse.Namespace) -> dict:
    name = f"kktb_bench_{os.getpid()}_{secrets.token_hex(3)}"
    await admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    nodes: list[subprocess.Popen] = []
    try:
        shops = await provision(url, args.accounts)
        total = args.warmup + args.receipts
        bodies = [signed_form(*shops[i % len(shops)], f"bench-{i}") for i in range(total)]
        nodes, urls = start_nodes(url, args.nodes)
        await post_all(urls, bodies[:args.warmup], args.concurrency)
        db_before = await backends_cpu(url)
        nodes_cpu, own_cpu = sum(cpu_seconds(n.pid) for n in nodes), time.process_time()
        latencies, elapsed, confirmed = await post_all(urls, bodies[args.warmup:], args.concurrency)
        nodes_cpu = sum(cpu_seconds(n.pid) for n in nodes) - nodes_cpu
        own_cpu = time.process_time() - own_cpu
        db_after = await backends_cpu(url)
        db_cpu = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in db_after.items())
        store = await Store.open(url, migrate=False)
        async with store.engine.connect() as c:
            stored = (await c.execute(sa.text("SELECT count(*) FROM receipts"))).scalar_one()
        await store.close()
        if stored != total:
            raise RuntimeError(f"{total} receipts confirmed, {stored} in the database")
        return {"nodes": args.nodes, "accounts": args.accounts, "concurrency": args.concurrency,
                "receipts": confirmed, "receipts_per_s": round(confirmed / elapsed),
                "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                "mean_ms": round(statistics.fmean(latencies) * 1000, 2), "stored": stored,
                "cloud_cpu_ms_per_receipt": round(nodes_cpu / confirmed * 1000, 3),
                "generator_cpu_ms_per_receipt": round(own_cpu / confirmed * 1000, 3),
                "postgres_backends_cpu_ms_per_receipt": round(db_cpu / confirmed * 1000, 3),
                "load_average": os.getloadavg()[0]}
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            node.wait(30)
        await admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("KKTBRIDGE_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--receipts", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
