"""A real browser against the driver's own pages: the status page works under its strict policy, and a page on a
foreign name or origin can neither frame it nor read it (clickjacking, DNS rebinding)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from .conftest import close_stand, make_stand
from .test_browser import browser, serve


@pytest.fixture
async def shop(tmp_path, arccom_library):
    stand = await make_stand(tmp_path, terminal=arccom_library)
    yield stand
    await close_stand(stand)


def wait_for(driver, script: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"the page never satisfied: {script}")


def policy_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]
            or "Refused to" in entry["message"]]


def run_status_page(url: str) -> tuple[str, list[str]]:
    driver = browser()
    try:
        driver.get(url)
        driver.find_element("id", "send").click()
        text = wait_for(driver, "return document.getElementById('answer').textContent")
        return text, policy_violations(driver)
    finally:
        driver.quit()


async def test_the_status_page_runs_its_example_under_its_strict_policy(shop):
    text, violations = await asyncio.to_thread(run_status_page, shop.url + "/")
    payment, receipt = json.loads(text)
    assert payment["success"] == "OK: ОДОБРЕНО" and receipt["success"].startswith("OK: чек"), text
    assert violations == [] and len(shop.receipts()) == 1


FOREIGN = """<!DOCTYPE html><html><body><iframe id="frame" src="{driver}/"></iframe><pre id="read">…</pre>
<script>
fetch("{driver}/status").then(r => r.text()).then(t => document.getElementById("read").textContent = "READ " + t,
                                               e => document.getElementById("read").textContent = "FAILED " + e);
</script></body></html>"""


def open_foreign(url: str) -> tuple[str, list[str], str]:
    driver = browser()
    try:
        driver.get(url)
        read = wait_for(driver, "var t = document.getElementById('read').textContent; return t === '…' ? '' : t")
        time.sleep(0.5)  # the frame has loaded (or been refused) by now
        frame = driver.execute_script("try { return document.getElementById('frame').contentDocument.body.innerHTML }"
                                      " catch (e) { return 'blocked: ' + e }")
        return read, [entry["message"] for entry in driver.get_log("browser")], str(frame)
    finally:
        driver.quit()


async def test_a_foreign_page_can_neither_frame_the_status_page_nor_read_the_status(shop):
    runner, url = await serve(lambda: FOREIGN.format(driver=shop.url))
    try:
        read, console, frame = await asyncio.to_thread(open_foreign, url)
    finally:
        await runner.cleanup()
    assert read.startswith("FAILED") and shop.token not in read
    assert any("frame-ancestors" in message or "X-Frame-Options" in message for message in console), console
    assert shop.token not in frame


def rebound(driver_url: str, port: int) -> tuple[str, str]:
    """The browser resolves evil.example to 127.0.0.1, as after a DNS rebinding: a script on that origin asks
    the driver for its status, same-origin as far as the browser knows."""
    driver = browser("--host-resolver-rules=MAP evil.example 127.0.0.1")
    try:
        # The attacker's page would carry no policy; the driver's refusal does (connect-src 'none'), so the script
        # that stands for the attacker's runs with page policies bypassed.
        driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": True})
        driver.get(f"http://evil.example:{port}/")
        landing = driver.find_element("tag name", "body").text
        driver.execute_script("window.seen = null; fetch('/status').then(r => r.text()).then(t => window.seen = t,"
                              " e => window.seen = 'FAILED ' + e)")
        return landing, wait_for(driver, "return window.seen")
    finally:
        driver.quit()


async def test_dns_rebinding_in_a_real_browser_reads_no_token(shop):
    port = int(shop.url.rsplit(":", 1)[1])
    landing, seen = await asyncio.to_thread(rebound, shop.url, port)
    assert "host_not_allowed" in landing and "host_not_allowed" in seen, (landing, seen)
    assert shop.token not in landing + seen and shop.tokens[1] not in landing + seen
