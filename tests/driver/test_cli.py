"""`kktbridge driver add-device` and `kktbridge demo --json`, run as a user runs them."""

import json
import subprocess
import sys
import time

import aiohttp

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
