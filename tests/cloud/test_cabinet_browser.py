"""The cabinet in a real browser (Chromium through selenium, the project's one browser stack), against real processes:
a cloud, a driver linked to it and an ATOL emulator. Signing in (a wrong password first), the devices with their
live state, adding a device and rotating its token, setting an allowed origin and seeing a CMS page on that
origin refused before and accepted by the linked driver after, a courier receipt done with its FD number, its
detail page, and signing out; at 390 px wide too. One browser for the module; a screenshot of each page goes to
KKTBRIDGE_SCREENSHOTS (default <tmp>/kktbridge-screenshots), printed at the end."""

from __future__ import annotations

import asyncio
import json
import re
import time

from tests.driver.test_browser import PAGE, serve
from tests.driver.test_test_page import chromium, shot, wait_for  # noqa: F401 - a fixture

from .support import receipt_packet
from .test_courier import with_user
from .test_link import Rig, receipts_in


def run_jobs(driver, origin: str, jobs: list[dict], timeout: float = 30) -> list:
    """Open the CMS page (tests/driver/test_browser.PAGE) on its origin and send the jobs as the vendor's jQuery."""
    driver.get(origin)
    driver.execute_script("runAll(arguments[0])", jobs)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = driver.find_element("id", "result").text
        if text != "waiting":
            return [json.loads(a) if a.startswith(("[", "{")) else a for a in json.loads(text)]
        time.sleep(0.05)
    raise AssertionError("the CMS page got no answer")


def secret(driver) -> str:
    return wait_for(driver, "var e = document.getElementById('shown-secret'); return e && e.textContent")


async def test_the_cabinet_flows_in_a_browser(tmp_path, emulator_process, chromium):
    rig = await Rig(tmp_path, emulator_process).start()
    runner, origin = await serve(lambda: PAGE)
    try:
        await with_user(rig)
        tenant, cloud = rig.tenant, rig.clouds[0].url
        driver_url = f"http://127.0.0.1:{rig.driver.port}"
        job = {"url": driver_url, "packet": json.loads(receipt_packet("7.00")), "style": "1.3", "kkt": tenant.token,
               "bnk": "", "order": "cms-1"}

        def flows() -> dict:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.ui import Select

            b = chromium
            out: dict = {}
            b.set_window_size(1280, 1000)
            b.get(cloud + "/cabinet")
            wait_for(b, "return document.getElementById('sign-in')")
            shot(b, "cabinet-sign-in")
            b.find_element(By.ID, "login").send_keys(tenant.login)
            b.find_element(By.ID, "password").send_keys("wrong")
            b.find_element(By.ID, "sign-in-button").click()
            out["wrong"] = wait_for(b, "var e = document.querySelector('.field-errors'); return e && e.textContent")
            shot(b, "cabinet-sign-in-wrong")
            b.find_element(By.ID, "password").send_keys(tenant.password)
            b.find_element(By.ID, "sign-in-button").click()
            wait_for(b, "return document.body.dataset.page === 'devices'")
            # the live cells fill in from state.json once the driver has reported its register
            out["online"] = wait_for(b, "var e = document.querySelector('[data-cell=\"device-%d-online\"]');"
                                        "return e && e.className === 'ok' && e.innerText" % tenant.register.id, 30)
            out["shift_cell"] = b.find_element(By.CSS_SELECTOR, f'[data-cell="device-{tenant.register.id}-fn"]').text
            shot(b, "cabinet-devices")
            # the page refreshes by itself: a cell spoiled here is rewritten from state.json within a few seconds
            cell = f'[data-cell="device-{tenant.register.id}-fn"] [lang="ru"]'
            b.execute_script("document.querySelector(arguments[0]).textContent = 'stale'", cell)
            out["refreshed"] = wait_for(b, "var t = document.querySelector(arguments[0]).textContent;"
                                           "return t !== 'stale' && t", 10, cell)

            Select(b.find_element(By.ID, "device-kind")).select_by_value("atol")
            b.find_element(By.ID, "device-name").send_keys("Касса 2")
            b.find_element(By.ID, "add-device-button").click()
            out["token"] = secret(b)
            shot(b, "cabinet-device-added")
            row = b.find_element(By.XPATH, "//tr[.//b[text()='Касса 2']]")
            row.find_element(By.CSS_SELECTOR, "button.rotate-token").click()
            wait_for(b, "return document.getElementById('shown-secret').textContent !== arguments[0]", 10,
                     out["token"])
            out["rotated"] = secret(b)
            shot(b, "cabinet-token-rotated")

            out["before"] = run_jobs(b, origin, [{**job, "order": "cms-before"}])[0]
            b.get(cloud + "/cabinet/settings")
            area = b.find_element(By.ID, "origins-text")
            area.clear()
            area.send_keys("ftp://nope")
            b.find_element(By.ID, "save-origins").click()
            out["bad_origin"] = wait_for(b, "var e = document.querySelector('.field-errors');"
                                            "return e && e.textContent")
            area = b.find_element(By.ID, "origins-text")
            area.clear()
            area.send_keys(origin)
            b.find_element(By.ID, "save-origins").click()
            wait_for(b, "return document.getElementById('saved')")
            shot(b, "cabinet-settings")
            deadline = time.monotonic() + 10
            while True:  # pushed through the link: it takes effect in a moment
                out["after"] = run_jobs(b, origin, [job])[0]
                if isinstance(out["after"], list) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)

            b.get(cloud + "/cabinet/courier")
            Select(b.find_element(By.ID, "courier-device")).select_by_value(str(tenant.register.id))
            out["packet"] = b.find_element(By.ID, "courier-packet").get_attribute("value")
            out["order"] = b.find_element(By.ID, "courier-order").get_attribute("value")
            # the first answer is lost on the way back (the receipt is queued all the same); the user sends again
            b.execute_script("var real = window.fetch; window.fetch = function (url, options) {"
                             " var sent = real(url, options);"
                             " if (options && options.method === 'POST' && !window.lostOnce) {"
                             "  window.lostOnce = true;"
                             "  return sent.then(function () { throw new TypeError('Failed to fetch'); }); }"
                             " return sent; };")
            b.find_element(By.ID, "courier-send").click()
            out["lost"] = wait_for(b, "var e = document.getElementById('courier-error'); return e && e.textContent")
            out["kept_order"] = b.find_element(By.ID, "courier-order").get_attribute("value")
            b.find_element(By.ID, "courier-send").click()
            out["fd"] = wait_for(b, "var e = document.getElementById('courier-fd'); return e && e.textContent", 30)
            wait_for(b, "return document.getElementById('courier-state').textContent === 'done'", 30)
            wait_for(b, "var i = document.querySelector('#courier-result img.qr'); return i && i.complete "
                        "&& i.naturalWidth > 0")
            shot(b, "cabinet-courier-done")
            out["next_order"] = b.find_element(By.ID, "courier-order").get_attribute("value")
            b.find_element(By.CSS_SELECTOR, "#courier-result a").click()
            wait_for(b, "return document.body.dataset.page === 'receipt'")
            out["detail_state"] = b.find_element(By.ID, "state").text
            out["detail_url"] = b.current_url.removeprefix(cloud)
            out["detail_order"] = b.find_element(By.ID, "summary").text
            out["qr_svg"] = bool(b.find_elements(By.CSS_SELECTOR, "#result .qr svg"))
            out["callbacks"] = wait_for(b, "var e = document.querySelector('#callbacks-list p.none, "
                                           "#callbacks-table'); return e && e.innerText")
            shot(b, "cabinet-receipt")
            b.get(cloud + "/cabinet/receipts?state=done")
            out["listed"] = b.find_element(By.ID, "receipts").text
            shot(b, "cabinet-receipts")

            detail = out["detail_url"]
            b.set_window_size(390, 844)
            out["narrow"] = {}
            for name, path in (("devices", "/cabinet/devices"), ("receipts", "/cabinet/receipts"),
                               ("receipt", detail), ("courier", "/cabinet/courier"),
                               ("settings", "/cabinet/settings")):
                b.get(cloud + path + "?lang=en")
                wait_for(b, "return document.body.dataset.page === arguments[0]", 10, name)
                out["narrow"][name] = b.execute_script("return document.documentElement.scrollWidth")
                shot(b, f"cabinet-{name}-390-en")
            b.get(cloud + "/cabinet/devices?lang=en")
            out["english"] = b.find_element(By.TAG_NAME, "h1").text
            b.set_window_size(1280, 1000)
            b.get(cloud + "/cabinet/devices?lang=ru")
            # signed out elsewhere (another tab): the live page notices on its next poll and goes to sign in
            b.execute_script("fetch('/api/v1/session', {method: 'DELETE', credentials: 'same-origin', headers: "
                             "{'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}})")
            wait_for(b, "return document.getElementById('sign-in')", 10)
            out["ended_elsewhere"] = b.current_url
            b.find_element(By.ID, "login").send_keys(tenant.login)
            b.find_element(By.ID, "password").send_keys(tenant.password)
            b.find_element(By.ID, "sign-in-button").click()
            wait_for(b, "return document.body.dataset.page === 'devices'")
            b.find_element(By.ID, "sign-out").click()
            wait_for(b, "return document.getElementById('sign-in')")
            b.get(cloud + "/cabinet/devices")
            out["after_sign_out"] = b.current_url
            return out

        out = await asyncio.to_thread(flows)
    finally:
        await runner.cleanup()
        await rig.close()

    assert "неверный логин или пароль" in out["wrong"]
    assert out["online"] == "на связи"
    assert re.fullmatch(r"\d{16}", out["shift_cell"]), out["shift_cell"]  # the FN number the driver reported
    assert out["refreshed"] == out["shift_cell"]
    assert re.fullmatch(r"[0-9a-f]{32}", out["token"]) and re.fullmatch(r"[0-9a-f]{32}", out["rotated"])
    assert out["rotated"] != out["token"]
    assert out["before"] == "network error: CORS", out["before"]
    assert "origins[0]" in out["bad_origin"]
    assert isinstance(out["after"], list) and "success" in out["after"][0], out["after"]
    receipts = receipts_in(rig.journal)
    assert "Failed to fetch" in out["lost"] and out["kept_order"] == out["order"]  # a retry is the same order
    assert len(receipts) == 2  # the CMS page's receipt and the courier's, once though it was sent twice
    assert f"ФД / FD {receipts[1]['fd']} " in out["fd"], (out["fd"], receipts)
    assert '"price_1079": 11.00,\n' in out["packet"]  # indented, and the money as written
    assert out["fd"].endswith(" · 11.00")
    assert re.fullmatch(r"courier-[0-9a-f]{16}", out["order"]) and out["next_order"] != out["order"]
    assert out["detail_state"] == "done" and out["qr_svg"] and out["order"] in out["detail_order"]
    assert out["callbacks"] == "нет обратных вызовов"  # none asked for (404 until the callbacks API lands)
    assert "courier" in out["listed"]
    assert all(width <= 390 for width in out["narrow"].values()), out["narrow"]  # nothing wider than a phone
    assert out["english"] == "Drivers and devices"
    assert out["ended_elsewhere"].endswith("/cabinet/sign-in")
    assert out["after_sign_out"].endswith("/cabinet/sign-in")


async def test_the_receipt_page_shows_the_callback_attempts_and_resends_one(tmp_path, emulator_process, chromium):
    """A webhook the shop's server refused (500): the receipt's page lists the attempt with its status, and its
    "resend" button posts the callback again at once (the automatic retry is set ten minutes away here)."""
    from .test_callbacks import Receiver

    receiver = await Receiver().start()
    receiver.plan["/hook"] = [500]
    rig = await Rig(tmp_path, emulator_process,
                    cloud_args=("--allow-private-callbacks", "--callback-backoff", "600")).start()
    try:
        await with_user(rig)
        tenant, cloud = rig.tenant, rig.clouds[0].url
        status, submitted, _ = await rig.shop.submit(tenant, "hook-1", json.loads(receipt_packet()),
                                                     webhook_url=receiver.url + "/hook")
        assert status == 201, submitted
        await receiver.wait(1, timeout=30)  # printed, and the first POST refused

        def flows() -> dict:
            from selenium.webdriver.common.by import By

            b, out = chromium, {}
            b.set_window_size(1280, 1000)
            b.get(cloud + "/cabinet/sign-in")
            b.find_element(By.ID, "login").send_keys(tenant.login)
            b.find_element(By.ID, "password").send_keys(tenant.password)
            b.find_element(By.ID, "sign-in-button").click()
            wait_for(b, "return document.body.dataset.page === 'devices'")
            b.get(f"{cloud}/cabinet/receipts/{submitted['id']}")
            out["before"] = wait_for(b, "var t = document.getElementById('callbacks-table');"
                                        "return t && t.innerText")
            shot(b, "cabinet-receipt-callback-refused", "callbacks")
            b.find_element(By.ID, "resend").click()
            out["resent"] = wait_for(b, "return document.getElementById('resend-result').textContent")
            out["after"] = wait_for(b, "var t = document.getElementById('callbacks-table');"
                                       "return t && t.innerText.indexOf('delivered') >= 0 && t.innerText", 30)
            shot(b, "cabinet-receipt-callback-resent", "callbacks")
            return out

        out = await asyncio.get_running_loop().run_in_executor(None, flows)
    finally:
        await rig.close()
        await receiver.stop()
    assert "webhook" in out["before"] and "500" in out["before"], out["before"]
    assert out["resent"] == "↻ 1", out
    assert len(receiver.at("/hook")) == 2  # the refused POST and the resent one: nothing else
    assert "200" in out["after"], out["after"]
