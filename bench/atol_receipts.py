"""Benchmark: 10-item receipts through the ATOL adapter to the ATOL emulator (zero print latency).

The emulator runs in its own process (`kktbridge emulate atol`), so the CPU time this process spends per
receipt is the adapter's own cost: building commands, framing, parsing, the asyncio loop around them.

    .venv/bin/python bench/atol_receipts.py [--receipts 500] [--transport tcp|pty-v3|pty-v2] [--fsync]

Prints receipts per second, latency p50/p99 and the adapter's CPU time per receipt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kktbridge.devices.atol.adapter import AtolRegister
from kktbridge.fiscal import Cashier, Item, Payments, Quantity, Receipt, ReceiptType, TaxationSystem, VatRate


def ten_item_receipt() -> Receipt:
    items = tuple(Item(name=f"Товар номер {i + 1}", price=1000 + i * 37, quantity=Quantity.parse("1.5"),
                       vat=VatRate.VAT22) for i in range(10))
    total = sum(item.amount for item in items)
    return Receipt(type=ReceiptType.SALE, items=items, payments=Payments(cash=total), taxation=TaxationSystem.OSN,
                   cashier=Cashier("Кассир Бенчмарков"))


async def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="kktbridge-bench-"))
    command = [sys.executable, "-m", "kktbridge", "emulate", "atol", "--journal", str(workdir / "journal.jsonl"),
               "--state", str(workdir / "fn.json")]
    if not args.fsync:
        command.append("--no-fsync")
    if args.transport == "tcp":
        command += ["--tcp", "127.0.0.1:0"]
    else:
        command += ["--pty", "--protocol", args.transport.split("-")[1]]
    emulator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = json.loads(emulator.stdout.readline())
        if args.transport == "tcp":
            host, port = ready["tcp"].rsplit(":", 1)
            register = AtolRegister.tcp(host, int(port))
        else:
            register = AtolRegister.serial(ready["pty"], 115200, protocol=args.transport.split("-")[1])
        await register.connect()
        receipt = ten_item_receipt()
        for _ in range(args.warmup):
            await register.fiscalize(receipt)
        latencies = []
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for _ in range(args.receipts):
            started = time.perf_counter()
            await register.fiscalize(receipt)
            latencies.append(time.perf_counter() - started)
        wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
        await register.close()
    finally:
        emulator.terminate()
        emulator.wait(10)
    latencies.sort()
    return {
        "transport": args.transport,
        "fsync": args.fsync,
        "receipts": args.receipts,
        "receipts_per_second": round(args.receipts / wall, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "adapter_cpu_ms_per_receipt": round(cpu / args.receipts * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--transport", choices=("tcp", "pty-v3", "pty-v2"), default="tcp")
    parser.add_argument("--fsync", action="store_true", help="let the emulator fsync its journal (disk-bound)")
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
