"""Benchmark: the driver's own overhead on top of the register's time, and a second register served while the
first prints.

Three processes, as in a shop: two ATOL emulators and `kktbridge driver` with its journal on (SQLite WAL, the
checkpoint row fsynced before each receipt is closed). The driver reports in `Server-Timing` how long the device
took and how long the whole request took inside it (every wait for the journal counted as the driver's);
overhead = total − device, for 10-item receipts posted over HTTP with unique BIT_ORDER_IDs.

    .venv/bin/python bench/driver_overhead.py [--receipts 300] [--dir /dev/shm]
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

import aiohttp

from kktbridge.driver.config import new_token


def packet(items: int = 10) -> list:
    purchases = [{"productName_1030": f"Товар номер {i + 1}", "price_1079": 10 + i, "qty_1023": 1.5, "tax_1199": 11,
                  "paymentFormCode_1214": 4, "productTypeCode_1212": 1, "unit_2108": 0} for i in range(items)]
    total = sum(round((10 + i) * 1.5, 2) for i in range(items))
    return [{"name": "Чек", "type": "kktReceiptFiscalization",
             "data": {"purchases": purchases, "payments": {"cash_1031": total}, "receiptType_1054": 1,
                      "taxationType_1055": 0, "cashierName_1021": "Кассир Бенчмарков"}}]


def timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, value = part.strip().partition(";dur=")
        out[name] = float(value)
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * share))]


async def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="kktbridge-bench-", dir=args.dir))
    processes = []
    try:
        emulators = []
        for index in range(2):
            proc = subprocess.Popen([sys.executable, "-m", "kktbridge", "emulate", "atol", "--tcp", "127.0.0.1:0",
                                     "--no-fsync", "--control", "127.0.0.1:0", "--journal", str(work / f"a{index}.jsonl")],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            processes.append(proc)
            emulators.append(json.loads(proc.stdout.readline()))
        tokens = [new_token(), new_token()]
        port = free_port()
        devices = "".join(f'\n[[devices]]\nname = "Касса {i}"\nkind = "atol"\ntoken = "{tokens[i]}"\n'
                          f'tcp = "{emulators[i]["tcp"]}"\n' for i in range(2))
        (work / "k.toml").write_text(f'[driver]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{work.as_posix()}"\n'
                                     + devices, encoding="utf-8")
        driver = subprocess.Popen([sys.executable, "-m", "kktbridge", "driver", "--config", str(work / "k.toml")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(driver)
        url = f"http://127.0.0.1:{port}/"
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        body = json.dumps(packet(), ensure_ascii=False).encode()
        overhead, device, total = [], [], []
        async with aiohttp.ClientSession() as session:
            async def post(token: str, order: str) -> dict[str, float]:
                async with session.post(url, data=body, headers={"BIT_KKT_TOKEN": token, "BIT_ORDER_ID": order}) as r:
                    answer = await r.json(content_type=None)
                    assert "success" in answer[0], answer
                    return timing(r.headers["Server-Timing"])

            for i in range(args.warmup):
                await post(tokens[0], f"warm-{i}")
            for i in range(args.receipts):
                measured = await post(tokens[0], f"r-{i}")
                overhead.append(measured["total"] - measured["device"])
                device.append(measured["device"])
                total.append(measured["total"])

            # the second register while the first prints slowly
            host, control = emulators[0]["control"].rsplit(":", 1)
            from kktbridge.emulators.control import send_control

            await send_control(host, int(control), {"faults": {"print_latency": 2.0}})
            slow = asyncio.create_task(post(tokens[0], "slow"))
            await asyncio.sleep(0.3)
            during = []
            for i in range(10):
                started = time.perf_counter()
                await post(tokens[1], f"during-{i}")
                during.append((time.perf_counter() - started) * 1000)
            still_printing = not slow.done()
            await slow
    finally:
        for proc in reversed(processes):
            proc.terminate()
            proc.wait(10)
    return {
        "journal": str(work),
        "receipts": args.receipts,
        "overhead_p50_ms": round(statistics.median(overhead), 2),
        "overhead_p99_ms": round(percentile(overhead, 0.99), 2),
        "overhead_max_ms": round(max(overhead), 2),
        "device_p50_ms": round(statistics.median(device), 2),
        "request_p50_ms": round(statistics.median(total), 2),
        "second_register_p50_ms_while_first_prints": round(statistics.median(during), 2),
        "first_still_printing_after_ten_on_second": still_printing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--dir", help="where the journal lives (default: the system's temporary folder, on disk)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
