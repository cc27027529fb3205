"""`kktbridge demo` with its cloud: a shop server posts the 1.2 example to the demo's cloud in the vendor's form and
gets the register's result (FD number, fiscal sign, QR) through the driver's link, and the ready line carries every
credential a shop needs."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from urllib.parse import quote

import aiohttp

from kktbridge.emulators.fncore import read_journal
from kktbridge.examples import example_packet

from .test_cli import stop


def start_demo(tmp_path) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen([sys.executable, "-m", "kktbridge", "demo", "--json", "--driver-port", "0",
                                "--cloud-port", "0", "--data-dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line, process.stderr.read()
    return process, json.loads(line)


def vendor_form(ready: dict, token: str, order: str, text: str) -> dict[str, str]:
    """create-receipt.php's fields as the vendor's PHP sample makes them (base64 of encodeURIComponent, md5)."""
    account = str(ready["account_id"])
    signature = hashlib.md5((account + token + order + text + ready["integrity_code"]).encode()).hexdigest()
    return {"BIT_ACCOUNT_ID": account, "BIT_KKT_TOKEN": token, "BIT_ORDER_ID": order,
            "BIT_DATA": base64.b64encode(quote(text, safe="-_.!~*'()").encode()).decode(),
            "BIT_SIGNATURE": signature, "BIT_PROG_URL": "https://shop.example.ru/kassa"}


async def test_the_demo_cloud_prints_the_vendor_form_on_the_linked_register_and_signs_its_user_in(tmp_path):
    process, ready = start_demo(tmp_path)
    try:
        for key in ("cloud_url", "account_id", "integrity_code", "driver_key", "webhook_secret", "cabinet_login",
                    "cabinet_password"):
            assert ready[key], key
        atol = next(d for d in ready["devices"] if d["kind"] == "atol")
        assert all(len(d["token"]) == 32 for d in ready["devices"])
        text = json.dumps(json.loads(example_packet())[1:], ensure_ascii=False)  # paid on the site: no card
        async with aiohttp.ClientSession() as session:
            async def post(order: str):
                started = time.monotonic()
                async with session.post(ready["cloud_url"] + "/api/fiscal/create-receipt.php",
                                        data=vendor_form(ready, atol["token"], order, text)) as response:
                    return response.status, await response.json(), time.monotonic() - started

            await post("warm-up")  # the first receipt of the day opens the shift too
            status, answer, elapsed = await post("demo-cloud-1")
            async with session.get(ready["driver_url"] + "/status") as response:
                link = (await response.json())["cloud"]
            async with session.post(ready["cloud_url"] + "/api/v1/session", json={
                    "login": ready["cabinet_login"], "password": ready["cabinet_password"]}) as response:
                signed_in = response.status, await response.json()
        assert status == 200, answer
        (receipt,) = answer
        assert receipt["success"].startswith("OK: чек") and receipt["fdNumber_1040"] and receipt["fiscalSign_1077"]
        assert receipt["qr"].startswith("t=")
        print(f"the vendor form to a printed receipt through the link: {elapsed * 1000:.0f} ms")  # bench/ measures it
        assert signed_in[0] == 200 and signed_in[1]["account_id"] == ready["account_id"], signed_in
        receipts = [r for r in read_journal(atol["journal"]) if r["doc"] == "receipt"]
        assert [r["fd"] for r in receipts][-1] == receipt["fdNumber_1040"] and len(receipts) == 2
        assert link["state"] == "online" and link["url"] == ready["cloud_url"] and link["received"] == 2
    finally:
        errors = stop(process)
    assert "Traceback" not in errors, errors
    process, again = start_demo(tmp_path)  # kept between runs: the same account and key, the same tokens
    try:
        assert again["account_id"] == ready["account_id"] and again["driver_key"] == ready["driver_key"]
        assert [d["token"] for d in again["devices"]] == [d["token"] for d in ready["devices"]]
    finally:
        stop(process)
