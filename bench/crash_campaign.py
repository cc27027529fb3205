"""Crash campaign (issue 9): concurrent clients, a driver killed at random moments, registers losing power, and a
count, from the registers' own journals, of what was lost, doubled or answered wrongly.

Real processes, as in a shop: `python -m kktbridge driver`, `kktbridge emulate atol` and `kktbridge emulate
mercury`, each with its state and journal in the run directory. K clients per register (all on that register at
once; both registers' groups at the same time, through the one driver) post receipts with a BIT_ORDER_ID and post
again, with the same order id and the same packet, after a short random pause until the answer is definitive:
success, or an error with `retryable: false`. Connection errors, HTTP errors and retryable errors are retried.
Baskets come from a small set, so many orders share items and totals; each order's receipt carries its marker
as the buyer's e-mail (1008), which the registers keep in their journal records (bench/shop.py).

Chaos: the driver is SIGKILLed at random moments and started again; a register's power is cut (its process
SIGKILLed, started again on the same port with the same files after a short downtime: an open receipt is lost).
The registers print slowly (`print_latency`), so kills land mid-receipt. The pace adapts: the kills and the
cuts are spread over the run to reach their targets, and new orders wait while the chaos lags behind them.

Counted from the emulators' journals and the answers: orders sent, confirmed, refused, documents; lost (confirmed
without a document, or no definitive answer at the end), doubled (an order with more than one document),
disagreeing answers (a success naming another document than the order's; a definitive refusal although the
order's document exists), internal errors (errorCode `internal`, HTTP 5xx, "Traceback" in the driver's stderr).

    .venv/bin/python bench/crash_campaign.py [--receipts 1000] [--clients 4] [--kills 300] [--power-cuts 100]
        [--seed 1] [--registers atol,mercury] [--cards 0.2] [--print-latency 0.2] [--unreadable-documents]
        [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/crash_campaign.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shop import (  # noqa: E402
    BASKETS,
    PRINTING_CLOSE,
    Register,
    Shop,
    Verdict,
    agrees,
    card_packet,
    marker,
    receipt_command,
    receipts_by_marker,
    terminal_operations,
)

RECEIPT = "kktReceiptFiscalization"
PAYMENT = "bnkCardPayment"


@dataclass
class Order:
    id: str
    register: str
    card: bool
    packet: list[dict[str, Any]]
    started: bool = False
    attempts: int = 0
    verdict: Verdict | None = None  # the definitive answer


class Campaign:
    def __init__(self, args: argparse.Namespace, shop: Shop) -> None:
        self.args = args
        self.shop = shop
        rng = random.Random(f"{args.seed}-orders")
        kinds = list(shop.registers)
        self.orders: list[Order] = []
        for n in range(args.receipts):
            kind = kinds[n % len(kinds)]
            order_id = f"{kind[0]}{n}"
            basket = rng.choice(BASKETS)
            card = args.cards > 0 and rng.random() < args.cards
            packet = card_packet(order_id, basket) if card else [receipt_command(order_id, basket)]
            self.orders.append(Order(order_id, kind, card, packet))
        self.pending = {kind: deque(o for o in self.orders if o.register == kind) for kind in kinds}
        self.window = args.clients * len(kinds)
        self.started = 0
        self.definitive = 0
        self.gate_waiting = 0
        self.began = self.last_definitive = time.monotonic()
        self.give_up = asyncio.Event()
        self.retry_reasons: Counter[str] = Counter()
        self.internal_answers = 0
        self.http_5xx = 0
        self.cut_seconds: list[float] = []
        self.kills_mid_receipt = 0  # kills while a register printed a receipt's close

    # --- pace ------------------------------------------------------------------------------------------

    def _fractions(self) -> dict[str, float]:
        out = {}
        if self.args.kills > 0:
            out["kill"] = min(1.0, self.shop.driver.kills / self.args.kills)
        if self.args.power_cuts > 0:
            out["cut"] = min(1.0, sum(r.power_cuts for r in self.shop.registers.values()) / self.args.power_cuts)
        return out

    def _chaos_progress(self) -> float:
        return min(self._fractions().values(), default=1.0)

    def _ahead(self, kind: str) -> bool:
        """Is this kind of chaos ahead of the other (so they stay spread over the same run)?"""
        fractions = self._fractions()
        return fractions[kind] > min(fractions.values()) + 0.05

    def _pause(self, rng: random.Random, remaining: int, recovery: float, low: float, high: float) -> float:
        """Time until the next event: spread over what the run has left, at the measured pace; quick (between
        `low` and `high`) while orders wait for the chaos or before there is a pace to measure."""
        if self.gate_waiting or self.definitive < 4:
            return rng.uniform(low, high)
        rate = self.definitive / (time.monotonic() - self.began)
        interval = (len(self.orders) - self.definitive) / rate / max(1, remaining)
        return max(low, interval - recovery) * rng.uniform(0.5, 1.5)

    async def _next_order(self, kind: str) -> Order | None:
        queue = self.pending[kind]
        while queue and self.started >= math.ceil(len(self.orders) * self._chaos_progress()) + self.window:
            self.gate_waiting += 1
            await asyncio.sleep(0.02)
            self.gate_waiting -= 1
        if not queue:
            return None
        order = queue.popleft()
        order.started = True
        self.started += 1
        return order

    # --- clients and chaos -----------------------------------------------------------------------------

    async def client(self, kind: str, index: int) -> None:
        rng = random.Random(f"{self.args.seed}-{kind}-{index}")
        while (order := await self._next_order(kind)) is not None:
            while not self.give_up.is_set():
                verdict = await self.shop.post(order.id, order.packet, kind, card=order.card)
                order.attempts += 1
                self.internal_answers += verdict.internal
                self.http_5xx += verdict.status is not None and verdict.status >= 500
                if verdict.definitive:
                    order.verdict = verdict
                    self.definitive += 1
                    self.last_definitive = time.monotonic()
                    break
                self.retry_reasons[verdict.reason.split(":")[0]] += 1
                await asyncio.sleep(rng.uniform(0.02, 0.2))

    async def killer(self) -> None:
        rng = random.Random(f"{self.args.seed}-kill")
        driver = self.shop.driver
        while driver.kills < self.args.kills:
            while self._ahead("kill"):
                await asyncio.sleep(0.02)
            recovery = statistics.median(driver.start_seconds)
            await asyncio.sleep(self._pause(rng, self.args.kills - driver.kills, recovery, 0.05, 0.6))
            printing = await asyncio.gather(*(r.printing(PRINTING_CLOSE[r.kind]) for r in self.shop.registers.values()))
            driver.kill()
            self.kills_mid_receipt += any(printing)
            await driver.start()

    async def cutter(self) -> None:
        rng = random.Random(f"{self.args.seed}-cut")
        registers = list(self.shop.registers.values())
        while (cuts := sum(r.power_cuts for r in registers)) < self.args.power_cuts:
            while self._ahead("cut"):
                await asyncio.sleep(0.02)
            recovery = statistics.median(self.cut_seconds) if self.cut_seconds else 0.6
            await asyncio.sleep(self._pause(rng, self.args.power_cuts - cuts, recovery, 0.2, 1.5))
            register = rng.choice(registers)
            began = time.monotonic()
            register.cut_power()
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            await register.start()
            self.cut_seconds.append(time.monotonic() - began)

    async def run(self) -> float:
        """Everything until every order has its answer (or the drain time is over); the seconds it took."""
        clients = [asyncio.create_task(self.client(kind, i)) for kind in self.pending for i in range(self.args.clients)]
        await asyncio.gather(self.killer(), self.cutter())
        while True:  # the chaos is over: the clients finish, unless no answer comes for `drain` seconds
            _, waiting = await asyncio.wait(clients, timeout=1.0)
            if not waiting:
                break
            if time.monotonic() - self.last_definitive > self.args.drain:
                self.give_up.set()
                _, stuck = await asyncio.wait(waiting, timeout=65)
                for task in stuck:
                    task.cancel()
                break
        for task in clients:
            if not task.cancelled():
                task.result()  # a bug in this script must show
        return time.monotonic() - self.began

    # --- the count -------------------------------------------------------------------------------------

    def figures(self, elapsed: float) -> dict[str, Any]:
        known = {marker(o.id) for o in self.orders}
        documents: dict[str, list[dict[str, Any]]] = {}
        stray = 0
        for register in self.shop.registers.values():
            for contact, records in receipts_by_marker(register.journal).items():
                if contact in known:
                    documents.setdefault(contact, []).extend(records)
                else:
                    stray += len(records)
        per: dict[str, Counter[str]] = {kind: Counter() for kind in self.pending}
        refusals: Counter[str] = Counter()
        for order in self.orders:
            count = per[order.register]
            mine = documents.get(marker(order.id), [])
            count["sent"] += order.started
            count["documents"] += len(mine)
            count["doubled"] += len(mine) > 1
            count["extra_documents"] += max(0, len(mine) - 1)
            verdict = order.verdict
            if verdict is None:
                count["unanswered"] += order.started
            elif verdict.outcome == "success":
                count["confirmed"] += 1
                count["lost_confirmed_no_document"] += not mine
                count["disagreeing_success"] += not any(agrees(verdict.element(RECEIPT), d) for d in mine)
            else:
                count["refused"] += 1
                refusals[verdict.reason] += 1
                count["disagreeing_refusal"] += bool(mine)
        for count in per.values():
            count["lost"] = count["lost_confirmed_no_document"] + count["unanswered"]
            count["disagreeing"] = count["disagreeing_success"] + count["disagreeing_refusal"]
        total: Counter[str] = sum(per.values(), Counter())
        tracebacks = self.shop.driver.tracebacks()
        starts = self.shop.driver.start_seconds
        out: dict[str, Any] = {
            "receipts": len(self.orders), "clients": self.args.clients, "registers": list(self.pending),
            "seed": self.args.seed, "print_latency_s": self.args.print_latency, "elapsed_s": round(elapsed, 1),
            **{key: total[key] for key in ("sent", "confirmed", "refused", "documents", "lost",
                                           "lost_confirmed_no_document", "unanswered", "doubled",
                                           "extra_documents", "disagreeing", "disagreeing_success",
                                           "disagreeing_refusal")},
            "internal": self.internal_answers + tracebacks, "internal_answers": self.internal_answers,
            "http_5xx": self.http_5xx, "tracebacks": tracebacks, "stray_documents": stray,
            "driver_kills": self.shop.driver.kills, "kills_mid_receipt": self.kills_mid_receipt,
            "power_cuts": sum(r.power_cuts for r in self.shop.registers.values()),
            "driver_restart_median_s": round(statistics.median(starts), 3),
            "driver_restart_max_s": round(max(starts), 3),
            "attempts": sum(o.attempts for o in self.orders),
            "retry_reasons": dict(self.retry_reasons.most_common()), "refusal_reasons": dict(refusals.most_common()),
            "per_register": {kind: {**dict(count), "power_cuts": self.shop.registers[kind].power_cuts}
                             for kind, count in per.items()},
            "dir": str(self.shop.run_dir),
        }
        if self.args.cards > 0:
            out["cards"] = self._card_figures()
        return out

    def _card_figures(self) -> dict[str, int]:
        """Card payments against the terminal's own record: every confirmed card receipt names an approved,
        not voided payment no other order names; every such payment is named by some definitive answer."""
        charged = {op.rrn for op in terminal_operations(self.shop.terminal_state)
                   if op.kind == "P" and op.approved and not op.voided}
        claimed: Counter[str] = Counter()
        named: set[str] = set()
        unpaid = 0
        card_orders = [o for o in self.orders if o.card and o.verdict is not None]
        for order in card_orders:
            payment = order.verdict.element(PAYMENT) or {}
            receipt = order.verdict.element(RECEIPT) or {}
            for rrn in (payment.get("rrn") if "success" in payment else None, receipt.get("paidRrn")):
                if rrn:
                    named.add(str(rrn))
            if order.verdict.outcome == "success":
                rrn = str(payment.get("rrn"))
                claimed[rrn] += 1
                unpaid += rrn not in charged
        return {"card_orders": sum(o.card and o.started for o in self.orders), "charges": len(charged),
                "unpaid_receipts": unpaid, "shared_payments": sum(n - 1 for n in claimed.values() if n > 1),
                "silent_charges": len(charged - named)}


def table(figures: dict[str, Any]) -> str:
    kinds = figures["registers"]
    per = figures["per_register"]
    rows = [("orders sent", "sent"), ("confirmed", "confirmed"), ("refused (definitive)", "refused"),
            ("documents", "documents"), ("lost", "lost"), ("  confirmed, no document", "lost_confirmed_no_document"),
            ("  no definitive answer", "unanswered"), ("doubled orders", "doubled"),
            ("disagreeing answers", "disagreeing"), ("  success, not its document", "disagreeing_success"),
            ("  refused, document exists", "disagreeing_refusal"), ("power cuts", "power_cuts")]
    width = 28
    lines = [f"crash campaign: {figures['receipts']} receipts, {figures['clients']} clients per register, "
             f"seed {figures['seed']}, print latency {figures['print_latency_s']} s, {figures['elapsed_s']} s",
             "".ljust(width) + "".join(k.rjust(10) for k in kinds) + "total".rjust(10)]
    for title, key in rows:
        lines.append(title.ljust(width) + "".join(str(per[k].get(key, 0)).rjust(10) for k in kinds)
                     + str(figures[key]).rjust(10))
    for title, value in (("internal errors", figures["internal"]),
                         ("  errorCode internal / 5xx", f"{figures['internal_answers']} / {figures['http_5xx']}"),
                         ("  Traceback in stderr", figures["tracebacks"]),
                         ("stray receipts (no order)", figures["stray_documents"]),
                         ("driver kills", figures["driver_kills"]),
                         ("  while a receipt printed", figures["kills_mid_receipt"]),
                         ("driver restart median/max", f"{figures['driver_restart_median_s']} / "
                                                       f"{figures['driver_restart_max_s']} s"),
                         ("requests", figures["attempts"])):
        lines.append(title.ljust(width) + str(value).rjust(10 * (len(kinds) + 1)))
    for title, key in (("retried on", "retry_reasons"), ("refused with", "refusal_reasons")):
        reasons = ", ".join(f"{code} {n}" for code, n in figures[key].items()) or "-"
        lines.append(f"{title}: {reasons}")
    if "cards" in figures:
        lines.append("cards: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures["cards"].items()))
    lines.append(f"files: {figures['dir']}")
    return "\n".join(lines)


async def campaign(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="kktbridge-campaign-", dir=args.dir))
    faults = {"print_latency": args.print_latency} if args.print_latency else {}
    registers = [Register(kind, run_dir, {**faults, "documents_unreadable": True}
                          if args.unreadable_documents and kind == "atol" else faults) for kind in args.registers]
    terminal = None
    if args.cards > 0:
        built = subprocess.run([sys.executable, "-m", "kktbridge", "emulate", "arcus", "--build",
                                str(run_dir / "arcus")], capture_output=True, text=True, check=True)
        terminal = {"library": json.loads(built.stdout)["library"], "print_slip": False,
                    "emulator": {"latency_ms": args.card_latency_ms}}
    shop = Shop(run_dir, registers, terminal=terminal)
    try:
        await shop.start()
        run = Campaign(args, shop)
        elapsed = await run.run()
    finally:
        await shop.close()
    return run.figures(elapsed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=1000, help="orders in all (spread over the registers)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients per register")
    parser.add_argument("--kills", type=int, default=300, help="driver SIGKILLs to reach over the run")
    parser.add_argument("--power-cuts", type=int, default=100, help="register power cuts to reach over the run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--registers", default="atol,mercury", type=lambda s: [k for k in s.split(",") if k],
                        help="atol, mercury or both")
    parser.add_argument("--cards", type=float, default=0.0, metavar="SHARE",
                        help="this share of orders pays by card first (the Arcus emulator library in the driver)")
    parser.add_argument("--card-latency-ms", type=int, default=50, help="time each card operation takes")
    parser.add_argument("--print-latency", type=float, default=0.2, help="seconds each register document prints")
    parser.add_argument("--unreadable-documents", action="store_true",
                        help="the ATOL register gives no document back by number: reconciled by its shift counters")
    parser.add_argument("--drain", type=float, default=60.0,
                        help="after the chaos, give the unanswered orders up when no answer came for this long")
    parser.add_argument("--dir", help="where the run directory is made (default: the system's temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    args = parser.parse_args(argv)
    unknown = set(args.registers) - {"atol", "mercury"}
    if unknown or not args.registers:
        parser.error(f"--registers: atol and/or mercury, not {', '.join(sorted(unknown)) or 'nothing'}")
    if args.receipts < 1 or args.clients < 1 or args.kills < 0 or args.power_cuts < 0 or not 0 <= args.cards <= 1:
        parser.error("--receipts and --clients must be at least 1, --kills and --power-cuts not negative, "
                     "--cards between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    figures = asyncio.run(campaign(args))
    print(json.dumps(figures, ensure_ascii=False) if args.json else table(figures))


if __name__ == "__main__":
    main()
