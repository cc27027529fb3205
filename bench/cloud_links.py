"""Benchmark: idle linked drivers held by one cloud node, and that node's memory.

One `kktbridge cloud` process (SQLite in a temporary directory, or `--postgres URL`: a database made for this run and
dropped after) and `--clients` client processes (this script with `--client`), which together open `--links`
WebSocket links, each authenticated with a driver key of its own, and speak the link protocol as an idle driver
does: `hello`, then a `status` every heartbeat the cloud asks for. Once every link is welcomed and a few
heartbeats have passed, the node's resident memory (VmRSS, and its peak VmHWM) is read from /proc, and the
database must show every driver linked. The open-file limit is raised to its hard limit (the children inherit it).

    .venv/bin/python bench/cloud_links.py --links 10000 --clients 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloud_latency import clean_up, scratch_database  # noqa: E402

from kktbridge.cloud.credentials import digest, new_driver_key  # noqa: E402
from kktbridge.cloud.store import Store, utcnow  # noqa: E402
from kktbridge.cloud.store.schema import drivers  # noqa: E402


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


async def provision(url: str, count: int) -> list[str]:
    """One account with `count` drivers; their keys (only the hashes are stored, as the cloud does)."""
    from kktbridge.cloud.provision import create_account

    store = await Store.open(url)
    try:
        account = (await create_account(store, "Магазин")).account
        keys = [new_driver_key() for _ in range(count)]
        now = utcnow()
        async with store.engine.begin() as c:  # one statement: add_driver would commit 10 000 times
            await c.execute(drivers.insert(), [{"account_id": account.id, "name": f"ПК {i}",
                                                "key_hash": digest(key), "created_at": now}
                                               for i, key in enumerate(keys)])
        return keys
    finally:
        await store.close()


# --- a client process -------------------------------------------------------------------------------------------

async def client(url: str, keys: list[str], concurrency: int) -> None:
    """Link every key, say so on stdout, stay idle (a status per heartbeat) until stdin closes."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    session = aiohttp.ClientSession(connector=connector)
    gate = asyncio.Semaphore(concurrency)
    welcomed = 0
    failed: list[str] = []

    async def one(key: str) -> None:
        nonlocal welcomed
        try:
            async with gate:
                ws = await session.ws_connect(url + "/api/link", headers={"Authorization": f"Bearer {key}"},
                                              autoping=True, compress=0)
                await ws.send_str(json.dumps({"type": "hello", "version": "bench", "devices": []}))
                heartbeat = 5.0
                while True:
                    message = json.loads((await ws.receive(timeout=120)).data)
                    if message["type"] == "welcome":
                        heartbeat = float(message["heartbeat"])
                        break
            welcomed += 1
            while True:
                try:
                    await ws.receive(timeout=heartbeat)
                except asyncio.TimeoutError:
                    pass
                if ws.closed:
                    failed.append("closed")
                    return
                await ws.send_str('{"type":"status","devices":[]}')
        except Exception as exc:  # counted: the main process fails the run when a link is missing
            failed.append(f"{type(exc).__name__}: {exc}")

    tasks = [asyncio.ensure_future(one(key)) for key in keys]
    while welcomed + len(failed) < len(keys):
        await asyncio.sleep(0.2)
    print(json.dumps({"welcomed": welcomed, "failed": failed[:3], "failures": len(failed)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    await session.close()


# --- the run -------------------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> dict:
    limit = raise_open_files()
    workdir = Path(tempfile.mkdtemp(prefix="kktb-links-"))
    url, name = await scratch_database(workdir, args.postgres)
    processes: list[subprocess.Popen] = []
    try:
        keys = await provision(url, args.links)
        cloud = subprocess.Popen([sys.executable, "-m", "kktbridge", "cloud", "--db", url, "--listen", "127.0.0.1:0",
                                  "--heartbeat", str(args.heartbeat), "--lease", str(max(60, 3 * args.heartbeat))],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(cloud)
        cloud_url = json.loads(cloud.stdout.readline())["url"]
        idle = memory(cloud.pid)
        began = time.monotonic()
        share = -(-len(keys) // args.clients)
        clients = []
        for index in range(args.clients):
            part = keys[index * share:(index + 1) * share]
            keyfile = workdir / f"keys-{index}.json"
            keyfile.write_text(json.dumps(part))
            clients.append(subprocess.Popen([sys.executable, __file__, "--client", cloud_url, str(keyfile),
                                             str(args.concurrency)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            text=True))
        processes.extend(clients)
        reports = [json.loads(c.stdout.readline()) for c in clients]
        linked_in = time.monotonic() - began
        welcomed = sum(r["welcomed"] for r in reports)
        if welcomed != len(keys):
            raise RuntimeError(f"{welcomed} of {len(keys)} links welcomed: {reports}")
        await asyncio.sleep(args.heartbeat * 3)  # idle: statuses come and presence is written
        held = memory(cloud.pid)
        store = await Store.open(url, migrate=False)
        try:
            async with store.engine.connect() as c:
                online = (await c.execute(sa.select(sa.func.count()).select_from(drivers)
                                          .where(drivers.c.link == "ws"))).scalar_one()
        finally:
            await store.close()
        if online != len(keys):
            raise RuntimeError(f"{online} drivers online in the database, {len(keys)} linked")
        for c in clients:
            c.stdin.close()
        return {"database": "postgresql" if name else "sqlite", "links": len(keys), "clients": args.clients,
                "open_files_limit": limit, "linked_in_s": round(linked_in, 1),
                "node_rss_mib": round(held["VmRSS"] / 1024, 1), "node_peak_mib": round(held["VmHWM"] / 1024, 1),
                "node_rss_before_mib": round(idle["VmRSS"] / 1024, 1),
                "kib_per_link": round((held["VmRSS"] - idle["VmRSS"]) / len(keys), 1),
                "online_in_database": online}
    finally:
        await clean_up(processes, args.postgres, name)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        raise_open_files()
        asyncio.run(client(sys.argv[2], json.loads(Path(sys.argv[3]).read_text()), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=10_000, help="idle linked drivers (default 10000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes holding them (default 4)")
    parser.add_argument("--concurrency", type=int, default=100, help="links being opened at once per client")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="the cloud's heartbeat in seconds (default 5)")
    parser.add_argument("--postgres", metavar="URL", help="run the cloud on PostgreSQL (a database of its own)")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
