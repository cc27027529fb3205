"""Benchmark: what the costliest requests cost the driver and another client, and the driver's memory under a
long run of hostile requests.

Two processes, as in a shop: an ATOL emulator and `kktbridge driver`. First each of the costliest bodies the
driver takes (tests/hostile.py `worst_bodies`, each within 2 MB) is sent `--rounds` times while a second client
prints receipts: how long the driver took to refuse it, and the longest wait of the other client's receipt
meanwhile. Then eight clients send the fuzzer's hostile requests (malformed HTTP, hostile numbers and strings,
wrong tokens, compressed bombs, foreign Host names, clients that leave mid-request...) over raw sockets; the
driver's resident memory (VmRSS, Linux) is read after a warm-up and after every block of requests, and its log is
searched for tracebacks and errors.

    .venv/bin/python bench/hostile_input.py [--requests 20000] [--block 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/hostile.py, the fuzzer's generator

from kktbridge.driver.config import new_token  # noqa: E402
from tests.hostile import fuzz_requests, parse_answer, send_raw, valid_packet, worst_bodies  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the driver did not start")


async def fire(port: int, requests, clients: int) -> dict:
    queue = list(reversed(requests))
    statuses: dict = {}

    async def client() -> None:
        while queue:
            hostile = queue.pop()
            status, _, _ = parse_answer(await send_raw("127.0.0.1", port, hostile.data, hostile.cut))
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses


async def worst_cases(port: int, token: str, rounds: int) -> dict:
    """Per costly body: the driver's time to answer it, and the longest wait of another client's receipt."""
    headers = (f"BIT_KKT_TOKEN: {token}\r\n").encode()
    out = {}
    for name, hostile in worst_bodies(token).items():
        answered, waited = [], []
        for round_ in range(rounds):
            started = time.perf_counter()
            task = asyncio.ensure_future(send_raw("127.0.0.1", port, hostile))
            while True:
                probe = time.perf_counter()
                order = f"BIT_ORDER_ID: probe-{name[:10]}-{round_}-{len(waited)}\r\n".encode()
                body = valid_packet(len(waited))
                request = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers + order +
                           f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                status, _, _ = parse_answer(await send_raw("127.0.0.1", port, request))
                assert status == 200
                waited.append(time.perf_counter() - probe)
                if task.done():
                    break
            await task
            answered.append(time.perf_counter() - started)
        out[name] = {"answered_ms": round(statistics.median(answered) * 1000, 1),
                     "other_client_max_ms": round(max(waited) * 1000, 1)}
    return out


async def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="kktbridge-bench-"))
    emulator = subprocess.Popen([sys.executable, "-m", "kktbridge", "emulate", "atol", "--tcp", "127.0.0.1:0",
                                 "--journal", str(work / "atol.jsonl"), "--state", str(work / "fn.json"),
                                 "--no-fsync"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    tcp = json.loads(emulator.stdout.readline())["tcp"]
    token, port = new_token(), free_port()
    (work / "driver.toml").write_text(
        f'[driver]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{work}"\nheader_timeout = 1\nbody_timeout = 1\n\n'
        f'[[devices]]\nkind = "atol"\ntoken = "{token}"\ntcp = "{tcp}"\nvat = 6\n', encoding="utf-8")
    log = (work / "driver.log").open("w")
    driver = subprocess.Popen([sys.executable, "-m", "kktbridge", "driver", "--config", str(work / "driver.toml")],
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        await wait_listening(port)
        costly = await worst_cases(port, token, args.rounds)
        requests = fuzz_requests(token, args.requests + args.warmup, seed=args.seed)
        await fire(port, requests[:args.warmup], args.clients)
        await asyncio.sleep(1.5)  # the deadlines of the warm-up's half-sent requests pass
        blocks = [{"requests": 0, "rss_mb": round(rss_mb(driver.pid), 1)}]
        statuses: dict = {}
        started = time.monotonic()
        for offset in range(args.warmup, args.warmup + args.requests, args.block):
            for status, count in (await fire(port, requests[offset:offset + args.block], args.clients)).items():
                statuses[status] = statuses.get(status, 0) + count
            await asyncio.sleep(1.5)
            blocks.append({"requests": offset - args.warmup + args.block, "rss_mb": round(rss_mb(driver.pid), 1)})
        elapsed = time.monotonic() - started - 1.5 * len(blocks[1:])
    finally:
        driver.terminate()
        driver.wait(20)
        emulator.terminate()
        emulator.wait(20)
        log.close()
    text = (work / "driver.log").read_text(encoding="utf-8", errors="replace")
    return {"costliest_bodies": costly, "requests": args.requests, "clients": args.clients, "requests_per_s": round(args.requests / elapsed),
            "rss": blocks, "growth_mb": round(blocks[-1]["rss_mb"] - blocks[0]["rss_mb"], 1),
            "tracebacks_in_log": text.count("Traceback"), "errors_in_log": text.count(" ERROR "),
            "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--block", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="sends of each costly body")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
