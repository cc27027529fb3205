"""`kktbridge driver add-device` and `kktbridge demo --json`, run as a user runs them."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import aiohttp

from kktbridge.driver.config import new_token
from kktbridge.emulators.atol.server import AtolEmulator
from kktbridge.emulators.fncore import read_journal
from kktbridge.examples import example_packet


def test_add_device_prints_the_token(tmp_path):
    config = tmp_path / "kktbridge.toml"
    done = subprocess.run([sys.executable, "-m", "kktbridge", "driver", "--config", str(config), "add-device",
                           "--kind", "atol", "--tcp", "192.168.1.50:5555", "--name", "Касса"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["token"]) == 32 and out["kind"] == "atol" and out["token"] in config.read_text(encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "kktbridge", "driver", "--config", str(config), "add-device",
                          "--kind", "atol", "--token", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "token" in bad.stderr


def test_driver_with_a_bad_config_says_why(tmp_path):
    (tmp_path / "k.toml").write_text('[[devices]]\nkind = "atol"\ntoken = "short"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "kktbridge", "driver", "--config", str(tmp_path / "k.toml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "devices[0].token" in done.stderr and "32" in done.stderr


async def test_demo_json_serves_the_example_packet(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "kktbridge", "demo", "--json", "--driver-port", "0",
                                "--data-dir", str(tmp_path), "--allow-origin", "https://my-cms.local"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        (atol,) = [d for d in ready["devices"] if d["kind"] == "atol"]
        receipt = json.loads(example_packet())[1:]
        assert {d["kind"] for d in ready["devices"]} == {"atol", "mercury", "arcus"}
        async with aiohttp.ClientSession() as session:
            async with session.post(ready["driver_url"], json=receipt,
                                    headers={"Origin": "https://my-cms.local", "BIT_ORDER_ID": "demo-1",
                                             "BIT_KKT_TOKEN": atol["token"]}) as response:
                answer = await response.json(content_type=None)
        assert answer[0]["success"].startswith("OK: чек") and answer[0]["qr"].startswith("t=")
        receipts = [r for r in read_journal(atol["journal"]) if r["doc"] == "receipt"]
        assert [r["fd"] for r in receipts] == [answer[0]["fdNumber_1040"]]
    finally:
        process.terminate()
        process.wait(15)
        process.stdout.close()
        process.stderr.close()
    time.sleep(0)


def start_demo(tmp_path, *args: str) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen([sys.executable, "-m", "kktbridge", "demo", "--json", "--driver-port", "0",
                                "--data-dir", str(tmp_path), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())


def stop(process: subprocess.Popen) -> str:
    process.terminate()
    process.wait(15)
    process.stdout.close()
    errors = process.stderr.read()
    process.stderr.close()
    return errors


async def test_demo_serves_a_page_that_sends_no_token_and_tells_others_how_to_get_in(tmp_path):
    """The vendor's 1.2 example as its page sends it with no token: the card payment on the terminal, the receipt on
    the ATOL register (the demo's default); a site not let in is told to use --allow-origin."""
    process, ready = start_demo(tmp_path, "--allow-origin", "https://my-cms.local")
    try:
        atol = next(d for d in ready["devices"] if d["kind"] == "atol")
        async with aiohttp.ClientSession() as session:
            async with session.post(ready["driver_url"], data=example_packet().encode(),
                                    headers={"Origin": "https://my-cms.local", "BIT_ORDER_ID": "no-token"}) as response:
                pay, receipt = await response.json(content_type=None)
            async with session.post(ready["driver_url"], data=example_packet().encode(),
                                    headers={"Origin": "https://other.local"}) as response:
                refused = await response.json(content_type=None)
        assert pay["success"] == "OK: ОДОБРЕНО" and receipt["success"].startswith("OK: чек")
        assert [r["fd"] for r in read_journal(atol["journal"]) if r["doc"] == "receipt"] == [receipt["fdNumber_1040"]]
        assert response.status == 403 and "--allow-origin https://other.local" in refused["errorEn"]
        assert "--allow-origin https://other.local" in refused["errorRu"] and "toml" not in refused["error"]
    finally:
        stop(process)


def test_demo_on_a_busy_port_says_so_and_nothing_else(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = subprocess.run([sys.executable, "-m", "kktbridge", "demo", "--driver-port",
                               str(busy.getsockname()[1]), "--data-dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "cannot listen" in done.stderr
    assert "no link" not in done.stderr and "Unclosed" not in done.stderr and "Traceback" not in done.stderr


async def test_drivers_with_different_configuration_files_keep_separate_journals(tmp_path):
    emulator = AtolEmulator(journal_path=tmp_path / "atol.jsonl", fsync=False)
    host, port = await emulator.serve_tcp("127.0.0.1", 0)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # the user's data folder, for this test only
    token = new_token()
    numbers = []
    try:
        for name in ("shop-a", "shop-b"):
            (tmp_path / name).mkdir()
            config = tmp_path / name / "kktbridge.toml"
            config.write_text(f'[driver]\nlisten = "127.0.0.1:0"\n\n[[devices]]\nkind = "atol"\ntoken = "{token}"\n'
                              f'tcp = "{host}:{port}"\nvat = 6\n', encoding="utf-8")
            driver = subprocess.Popen([sys.executable, "-m", "kktbridge", "driver", "--config", str(config)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            try:
                url = await asyncio.to_thread(listening_url, driver)
                async with aiohttp.ClientSession() as session:
                    async with session.post(url, data=json.dumps(json.loads(example_packet())[1:]).encode(),
                                            headers={"BIT_KKT_TOKEN": token, "BIT_ORDER_ID": "same"}) as response:
                        assert "success" in (await response.json(content_type=None))[0]
                        numbers.append(response.headers["X-Kktbridge-Packet"])
            finally:
                stop(driver)
    finally:
        await emulator.close()
    assert numbers == ["1", "1"]  # the second driver starts its own journal: no packets of the first, no numbering
    journals = sorted(p.name for p in (tmp_path / "data" / "kktbridge").glob("journal-*.sqlite3"))
    assert len(journals) == 2 and all(name.startswith("journal-kktbridge-") for name in journals)
    assert len([r for r in read_journal(tmp_path / "atol.jsonl") if r["doc"] == "receipt"]) == 2


def listening_url(process: subprocess.Popen) -> str:
    for line in process.stderr:
        if "listening on " in line:
            return line.split("listening on ")[1].split(";")[0].strip()
    raise AssertionError("the driver did not start")
