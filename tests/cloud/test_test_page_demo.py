"""`kktbridge demo` (driver, emulators, its cloud, the link between them) and the cloud's test page in a real
browser, as a shop developer meets them: every preset runs on the demo's local driver from the cloud's page (the
demo lets its own cloud's pages in), and the receipt goes through the cloud and the link and is shown live, queued
to done, with the register's FD number, fiscal sign and QR code."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from urllib.parse import urlencode

from kktbridge.emulators.fncore import read_journal
from kktbridge.examples.presets import presets

from tests.driver.test_test_page import READ_RESULTS, chromium, run_preset, shot, wait_for  # noqa: F401 - a fixture


async def test_the_cloud_page_runs_every_preset_on_the_demo_and_sends_the_receipt_through_the_cloud(tmp_path,
                                                                                                     chromium):
    process = subprocess.Popen([sys.executable, "-m", "kktbridge", "demo", "--json", "--driver-port", "0",
                                "--cloud-port", "0", "--data-dir", str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = await asyncio.to_thread(process.stdout.readline)
        assert line, process.stderr.read()
        ready = json.loads(line)
        token = {d["kind"]: d["token"] for d in ready["devices"]}
        query = urlencode({"BIT_ACCOUNT_ID": ready["account_id"], "BIT_KKT_TOKEN": token["atol"],
                           "BIT_BNK_TRM_TOKEN": token["arcus"], "BIT_DATAINTEGRITY_CODE": ready["integrity_code"],
                           "driver": ready["driver_url"]})
        page = f"{ready['cloud_url']}/api/test?{query}"

        def local() -> dict[str, list[dict]]:
            chromium.get(page)
            wait_for(chromium, "return document.getElementById('preset').options.length")
            shot(chromium, "test-page-demo-cloud")
            out = {}
            for item in presets():
                out[item.key] = run_preset(chromium, item.key)
            shot(chromium, "test-page-demo-local-last", "outcome")
            return out

        def through_the_cloud() -> tuple[list[str], list[dict]]:
            from selenium.webdriver.support.ui import Select

            chromium.get(page + "&preset=receipt")
            wait_for(chromium, "return document.getElementById('packet').value")
            Select(chromium.find_element("id", "preset")).select_by_value("receipt")
            chromium.find_element("id", "send-cloud").click()
            wait_for(chromium, "return document.getElementById('message').dataset.state", 30)
            wait_for(chromium, "return Array.from(document.querySelectorAll('img.qr-image')).every(i => i.complete)")
            shot(chromium, "test-page-demo-cloud-done", "outcome")
            steps = chromium.execute_script("return Array.from(document.querySelectorAll('#progress li.reached'))"
                                            ".map(li => li.dataset.step)")
            return steps, chromium.execute_script(READ_RESULTS)

        def status_page() -> str:
            chromium.get(ready["driver_url"] + "/?lang=en")
            wait_for(chromium, "return document.getElementById('live').textContent")
            shot(chromium, "status-page-demo-linked")
            return chromium.find_element("id", "cloud").text

        shown = await asyncio.to_thread(local)
        steps, (cloud_result,) = await asyncio.to_thread(through_the_cloud)
        link = await asyncio.to_thread(status_page)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 15)
        process.stdout.close()
        errors = process.stderr.read()
        process.stderr.close()
    assert "Traceback" not in errors, errors
    atol = next(d for d in ready["devices"] if d["kind"] == "atol")
    printed = {r["fd"]: r for r in read_journal(atol["journal"]) if r.get("fd") is not None}
    for key, results in shown.items():
        assert [r["outcome"] for r in results] == ["success"] * len(results), (key, results)
        for result in results:
            if "fdNumber_1040" in result["fields"]:
                fd = int(result["fields"]["fdNumber_1040"])
                assert str(printed[fd]["fp"]) == result["fields"]["fiscalSign_1077"], key
    assert steps == ["queued", "delivered", "done"]
    fd = int(cloud_result["fields"]["fdNumber_1040"])
    assert cloud_result["outcome"] == "success" and printed[fd]["doc"] == "receipt"
    assert str(printed[fd]["fp"]) == cloud_result["fields"]["fiscalSign_1077"] and cloud_result["qr"]["loaded"]
    assert fd == max(printed)  # the cloud's receipt is the register's last document
    assert "online" in link and ready["cloud_url"] in link and "WebSocket" in link, link
