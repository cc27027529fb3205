"""The driver killed (SIGKILL) while a register prints: after a restart, the same packet gives one receipt."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import time

import aiohttp
import pytest

from kktbridge.driver.config import new_token
from kktbridge.emulators.control import send_control
from kktbridge.emulators.fncore import read_journal
from kktbridge.examples import example_packet

RECEIPT = json.loads(example_packet())[1:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DriverProcess:
    def __init__(self, config_path) -> None:
        self.config_path = config_path
        self.process: subprocess.Popen | None = None

    def start(self, port: int) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "kktbridge", "driver", "--config", str(self.config_path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.process.stderr.read())
                time.sleep(0.05)
        raise RuntimeError("the driver did not start")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self.process.stderr.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
            self.process.stderr.close()


@pytest.fixture
def rig(tmp_path, emulator_process):
    emulator = emulator_process("atol", "--tcp", "127.0.0.1:0", "--state", str(tmp_path / "fn.json"), "--journal",
                                str(tmp_path / "atol.jsonl"), "--control", "127.0.0.1:0", "--no-fsync")
    port = free_port()
    token = new_token()
    config = tmp_path / "kktbridge.toml"
    config.write_text(f"""
[driver]
listen = "127.0.0.1:{port}"
data_dir = "{tmp_path.as_posix()}"

[[devices]]
name = "Касса"
kind = "atol"
token = "{token}"
tcp = "{emulator.info['tcp']}"
vat = 6
""", encoding="utf-8")
    driver = DriverProcess(config)
    driver.start(port)
    yield {"driver": driver, "port": port, "token": token, "tmp": tmp_path, "emulator": emulator,
           "control": emulator.info["control"].rsplit(":", 1)}
    driver.stop()


def journal_rows(tmp_path):
    with sqlite3.connect(f"file:{tmp_path / 'journal.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute("select idx, status, fd_before from commands order by packet_id, idx").fetchall()


async def post(port: int, token: str, packet, order: str):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/", data=json.dumps(packet, ensure_ascii=False).encode(),
                                headers={"BIT_KKT_TOKEN": token, "BIT_ORDER_ID": order}) as response:
            return await response.json(content_type=None), response.headers


async def kill_when(rig, condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition(journal_rows(rig["tmp"])):
                rig["driver"].kill()
                return
        except sqlite3.OperationalError:
            pass
        await asyncio.sleep(0.01)
    raise AssertionError("the driver never reached the moment to be killed")


async def kill_when_printing(rig, command: str, request: asyncio.Task, timeout: float = 20) -> None:
    """SIGKILL the driver while the register's control port says it prints `command` (the journal's "started"
    row is written before the command is sent, so it alone is too early a moment)."""
    host, port = rig["control"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert not request.done(), f"the driver answered before the register printed: {request.result()}"
        try:
            if (await send_control(host, int(port), {"status": True})).get("printing") == command:
                rig["driver"].kill()
                return
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.01)
    raise AssertionError("the register never printed the receipt")


async def wait_for_receipts(rig, count: int) -> list[dict]:
    for _ in range(500):
        receipts = [r for r in read_journal(rig["tmp"] / "atol.jsonl") if r["doc"] == "receipt"]
        if len(receipts) >= count:
            return receipts
        await asyncio.sleep(0.01)
    raise AssertionError("the register never finished the receipt")


async def test_killed_while_the_register_prints_the_receipt(rig):
    host, port = rig["control"]
    await send_control(host, int(port), {"faults": {"print_latency": 1.5}})
    request = asyncio.create_task(post(rig["port"], rig["token"], RECEIPT, "crash-1"))
    # the register prints the receipt's close (0x4A): the driver journaled its checkpoint before asking; kill now
    await kill_when_printing(rig, "4a", request)
    with pytest.raises(aiohttp.ClientError):
        await request
    (printed,) = await wait_for_receipts(rig, 1)  # the register finishes on its own
    await send_control(host, int(port), {"faults": {"print_latency": 0}})
    rig["driver"].start(rig["port"])
    answer, headers = await post(rig["port"], rig["token"], RECEIPT, "crash-1")  # the cashier presses again
    assert answer[0]["fdNumber_1040"] == printed["fd"] and answer[0]["fiscalSign_1077"] == printed["fp"]
    receipts = [r for r in read_journal(rig["tmp"] / "atol.jsonl") if r["doc"] == "receipt"]
    assert len(receipts) == 1
    again, headers = await post(rig["port"], rig["token"], RECEIPT, "crash-1")
    assert again == answer and headers["X-Kktbridge-Replayed"] == "true"


async def test_killed_after_the_shift_opened_before_the_receipt(rig):
    host, port = rig["control"]
    await send_control(host, int(port), {"faults": {"print_latency": 1.0}})
    packet = [{"name": "смена", "type": "kktOpenShift", "data": {"cashierName_1021": "Пупкин"}}] + RECEIPT
    request = asyncio.create_task(post(rig["port"], rig["token"], packet, "crash-2"))
    await kill_when_printing(rig, "9a", request)  # the register prints the shift's opening (0x9A)
    with pytest.raises(aiohttp.ClientError):
        await request
    for _ in range(300):  # the shift opens on the register anyway
        if any(r["doc"] == "open_shift" for r in read_journal(rig["tmp"] / "atol.jsonl")):
            break
        await asyncio.sleep(0.01)
    await send_control(host, int(port), {"faults": {"print_latency": 0}})
    rig["driver"].start(rig["port"])
    answer, _ = await post(rig["port"], rig["token"], packet, "crash-2")
    assert answer[0]["fdNumber_1040"] == 1 and answer[1]["fdNumber_1040"] == 2
    docs = [r["doc"] for r in read_journal(rig["tmp"] / "atol.jsonl") if r.get("fd")]
    assert docs == ["open_shift", "receipt"]


async def test_killed_before_the_register_was_told(rig):
    """A kill between the journal row and the fiscalizing command: the receipt is printed once, on retry."""
    host, port = rig["control"]
    await send_control(host, int(port), {"faults": {"print_latency": 1.0}})
    # the shift opening is slow: kill while it prints, before the receipt's turn
    request = asyncio.create_task(post(rig["port"], rig["token"], RECEIPT, "crash-3"))
    await kill_when(rig, lambda rows: bool(rows))
    with pytest.raises(aiohttp.ClientError):
        await request
    await asyncio.sleep(1.5)
    assert [r for r in read_journal(rig["tmp"] / "atol.jsonl") if r["doc"] == "receipt"] == []
    await send_control(host, int(port), {"faults": {"print_latency": 0}})
    rig["driver"].start(rig["port"])
    answer, _ = await post(rig["port"], rig["token"], RECEIPT, "crash-3")
    assert "success" in answer[0]
    assert len([r for r in read_journal(rig["tmp"] / "atol.jsonl") if r["doc"] == "receipt"]) == 1


async def test_the_register_dies_after_fiscalizing_then_comes_back(tmp_path, emulator_process):
    """The link to the register is lost right after it fiscalized the receipt (power cut): the driver answers
    "outcome unknown"; when the register is back, the same packet returns that receipt instead of a second one."""
    from kktbridge.driver.app import Driver
    from kktbridge.driver.config import parse_config

    port = free_port()
    files = ["--state", str(tmp_path / "fn.json"), "--journal", str(tmp_path / "atol.jsonl"), "--tcp",
             f"127.0.0.1:{port}", "--no-fsync"]
    first = emulator_process("atol", *files, "--fault", 'power_loss_at="after:4a"')
    token = new_token()
    driver = Driver(parse_config({"driver": {"listen": "127.0.0.1:0", "data_dir": str(tmp_path)},
                                  "devices": [{"kind": "atol", "token": token, "tcp": f"127.0.0.1:{port}"}]}))
    url = await driver.start()
    try:
        async with aiohttp.ClientSession() as session:
            async def send():
                async with session.post(url, data=json.dumps(RECEIPT, ensure_ascii=False).encode(),
                                        headers={"BIT_KKT_TOKEN": token, "BIT_ORDER_ID": "cut"}) as response:
                    return await response.json(content_type=None)

            answer = await send()
            assert answer[0]["errorCode"] == "outcome_unknown" and answer[0]["retryable"]
            assert first.wait_dead() == 3
            (printed,) = [r for r in read_journal(tmp_path / "atol.jsonl") if r["doc"] == "receipt"]
            emulator_process("atol", *files)  # the register is back
            again = await send()
            assert again[0]["fdNumber_1040"] == printed["fd"] and again[0]["fiscalSign_1077"] == printed["fp"]
            assert len([r for r in read_journal(tmp_path / "atol.jsonl") if r["doc"] == "receipt"]) == 1
    finally:
        await driver.stop()
