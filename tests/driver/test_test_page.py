"""A real browser on the integrator's test page and the driver's status page, both served by the driver: every
preset runs on emulated devices (ATOL, Arcus) and shows its FD number, fiscal sign, QR image and paper preview; a
copy of the page on a site the driver does not allow is refused and says where to allow it; the status page
refreshes by itself. One browser for the module; a screenshot of each page goes to KKTBRIDGE_SCREENSHOTS (default
<tmp>/kktbridge-screenshots), printed at the end."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from aiohttp import web

from kktbridge.examples.presets import BITRIX_ADMIN, preset, presets
from kktbridge.web.routes import add_routes, integrator_page

from ..vendor_shapes import SHAPES
from .conftest import close_stand, make_stand
from .test_browser import browser, serve

SHOTS = Path(os.environ.get("KKTBRIDGE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "kktbridge-screenshots")


@pytest.fixture(scope="module")
def chromium(request):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver = browser()
    driver.set_window_size(1280, 1000)
    yield driver
    driver.quit()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"screenshots of the test page and the status page: {SHOTS}")


def shot(driver, name: str, element: str | None = None) -> None:
    """A screenshot of the window, scrolled to `element` (an id) first."""
    if element:
        driver.execute_script("var e = document.getElementById(arguments[0]); if (e) e.scrollIntoView()", element)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait_for(driver, script: str, timeout: float = 30, *args):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"the page never satisfied: {script}")


# What a test reads off the rendered results: per command its outcome, fields, QR image state and preview.
READ_RESULTS = """
return Array.from(document.querySelectorAll('#results article')).map(function (card) {
  var fields = {};
  card.querySelectorAll('dd[data-field]').forEach(function (dd) { fields[dd.dataset.field] = dd.textContent; });
  var img = card.querySelector('img.qr-image');
  var paper = card.querySelector('[data-receipt]');
  return {outcome: card.querySelector('[data-outcome]').dataset.outcome, fields: fields,
          text: card.querySelector('[data-outcome]').textContent,
          warnings: Array.from(card.querySelectorAll('[data-warning]')).map(function (li) { return li.dataset.warning; }),
          qr: img ? {text: img.dataset.qr, loaded: img.complete && img.naturalWidth > 0} : null,
          paper: paper ? paper.textContent : null};
});"""


def run_preset(driver, key: str) -> list[dict]:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "preset")).select_by_value(key)
    driver.find_element("id", "new-order").click()
    driver.find_element("id", "run-local").click()
    count = len(json.loads(preset(key).text))
    wait_for(driver, "return !document.getElementById('run-local').disabled && "
                     "document.querySelectorAll('#results article').length === arguments[0]", 60, count)
    wait_for(driver, "return Array.from(document.querySelectorAll('img.qr-image')).every(i => i.complete)")
    return driver.execute_script(READ_RESULTS)


def policy_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]


@pytest.fixture
async def shop(tmp_path, arccom_library):
    stand = await make_stand(tmp_path, terminal=arccom_library)
    yield stand
    await close_stand(stand)


async def test_every_preset_runs_on_the_local_driver_and_shows_its_fiscal_data(shop, chromium):
    """The driver's own /test: its device tokens offered and filled in, each preset run in turn as a CMS page
    would; each fiscal document shows the register's FD number and fiscal sign, and its QR code loads."""

    def run_all() -> dict[str, list[dict]]:
        chromium.get(shop.url + "/test")
        wait_for(chromium, "return document.getElementById('kkt').value && document.getElementById('bnk').value "
                           "&& document.getElementById('preset').options.length")
        shot(chromium, "test-page-driver")
        out = {}
        for item in presets():
            out[item.key] = run_preset(chromium, item.key)
            shot(chromium, f"test-page-driver-{item.key}", "outcome")
        return out

    shown = await asyncio.to_thread(run_all)
    assert (await asyncio.to_thread(chromium.execute_script, "return [document.getElementById('kkt').value, "
                                    "document.getElementById('bnk').value]")) == shop.tokens
    documents = {d["fd"]: d for d in shop.documents()}
    receipts = 0
    for key, results in shown.items():
        assert [r["outcome"] for r in results] == ["success"] * len(results), (key, results)
        for result in results:
            if "fdNumber_1040" not in result["fields"]:
                continue
            fd = int(result["fields"]["fdNumber_1040"])
            assert str(documents[fd]["fp"]) == result["fields"]["fiscalSign_1077"], (key, documents[fd])
            if result["paper"] is not None:  # a receipt: its QR image and its paper preview
                receipts += 1
                assert result["qr"]["loaded"] and result["qr"]["text"].startswith("t="), (key, result["qr"])
                assert f"ФД{fd}" in result["paper"].replace(" ", "") and "ИТОГ" in result["paper"], result["paper"]
    assert receipts == len(shop.receipts()) == 6  # example, receipt, return, marked, 80 items, Bitrix
    assert "ВОЗВРАТ ПРИХОДА" in shown["sale_return"][0]["paper"]
    assert shown["items80"][0]["fields"]["total_1020"] == "3272.40"
    assert shown["bitrix"][1]["warnings"] == list(SHAPES[2].warnings)  # sent 1.2-style: tokens as header names
    assert BITRIX_ADMIN not in (shop.receipts()[-1]["cashier"] or {}).get("inn", "")
    assert await asyncio.to_thread(policy_violations, chromium) == []


async def test_a_bad_packet_is_refused_in_the_page_before_it_is_sent(shop, chromium):
    def edit() -> tuple[str, str]:
        chromium.get(shop.url + "/test?lang=en&BIT_ORDER_ID=order-from-the-address&preset=receipt")
        wait_for(chromium, "return document.getElementById('preset').options.length")
        assert chromium.execute_script("return [document.getElementById('order').value, "
                                       "document.getElementById('preset').value]") == ["order-from-the-address",
                                                                                      "receipt"]
        area = chromium.find_element("id", "packet")
        area.clear()
        area.send_keys('[{"name": "чек", "type": "kktReceiptFiscalization", "data": {]')
        chromium.find_element("id", "run-local").click()
        state = chromium.find_element("id", "packet-state").text
        message = chromium.find_element("id", "message").text
        shot(chromium, "test-page-bad-json-en")
        chromium.execute_script("kktbridgeLang.choose('ru')")
        return state, message

    state, message = await asyncio.to_thread(edit)
    assert state.startswith("the JSON is not valid (1:") and "was not sent" in message, (state, message)
    assert shop.receipts() == []


async def serve_copy() -> tuple[web.AppRunner, str]:
    """The test page on a site of its own (as a shop might host it), which the driver does not allow."""
    return await serve(lambda: integrator_page("driver"), add_routes)


async def test_a_page_on_an_origin_not_allowed_is_refused_and_says_where_to_allow_it(shop, chromium):
    runner, site = await serve_copy()

    def attempt(driver_url: str, name: str) -> tuple[str, str]:
        from selenium.webdriver.support.ui import Select

        chromium.get(f"{site}/?driver={driver_url}&BIT_KKT_TOKEN={shop.token}")
        wait_for(chromium, "return document.getElementById('preset').options.length")
        Select(chromium.find_element("id", "preset")).select_by_value("receipt")
        chromium.find_element("id", "run-local").click()
        problem = wait_for(chromium, "return document.getElementById('message').dataset.problem")
        shot(chromium, name, "outcome")
        return problem, chromium.find_element("id", "message").text

    try:
        refused = await asyncio.to_thread(attempt, shop.url, "test-page-origin-refused")
        unreachable = await asyncio.to_thread(attempt, "http://127.0.0.1:9", "test-page-driver-unreachable")
    finally:
        await runner.cleanup()
    problem, text = refused
    assert problem == "origin_not_allowed", text
    assert site in text and "[cors] allowed_origins" in text and "Разрешённые сайты" in text, text
    assert f"kktbridge demo --allow-origin {site}" in text
    assert unreachable[0] == "unreachable" and "не отвечает" in unreachable[1], unreachable
    assert shop.receipts() == []


async def test_the_page_is_usable_on_a_narrow_screen(shop, chromium):
    def narrow() -> tuple[int, int, list]:
        chromium.set_window_size(390, 900)
        try:
            chromium.get(shop.url + "/test")
            wait_for(chromium, "return document.getElementById('kkt').value")
            results = run_preset(chromium, "receipt")
            width = chromium.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            shot(chromium, "test-page-390px", "outcome")
            chromium.get(shop.url + "/")
            wait_for(chromium, "return document.readyState === 'complete'")
            status_width = chromium.execute_script("return document.documentElement.scrollWidth")
            shot(chromium, "status-page-390px")
            return width, status_width, results
        finally:
            chromium.set_window_size(1280, 1000)

    (scroll, inner), status_width, results = await asyncio.to_thread(narrow)
    assert scroll <= inner, (scroll, inner)  # nothing sticks out sideways
    assert status_width <= inner + 1, status_width
    assert results[0]["outcome"] == "success" and results[0]["qr"]["loaded"]


# --- the driver's status page ------------------------------------------------------------------------------------


async def test_the_status_page_refreshes_by_itself_and_shows_what_is_in_doubt(shop, chromium):
    """A packet from another client and a command left in doubt by a stop appear without a reload: the packet with
    its device, adjustments and QR code, the doubt with its packet and device; no cloud link is configured."""
    from .test_reconcile import crash_state

    shape = SHAPES[0]  # the 2025 page's receipt: the driver adjusts it, with warnings

    def opened() -> str:
        chromium.get(shop.url + "/?lang=en")
        wait_for(chromium, "return document.getElementById('live').textContent")
        return chromium.find_element("id", "packets").text

    def refreshed(order: str, doubt: int) -> tuple[str, str, str, int]:
        wait_for(chromium, "return document.getElementById('packets').textContent.indexOf(arguments[0]) >= 0 && "
                           "document.querySelector('[data-doubt=\"' + arguments[1] + '\"]')", 20, order, doubt)
        shot(chromium, "status-page")
        return (chromium.find_element("id", "packets").text, chromium.find_element("id", "doubt").text,
                chromium.find_element("id", "cloud").text,
                chromium.execute_script("return document.querySelectorAll('#packets .qr svg').length"))

    before = await asyncio.to_thread(opened)
    _, answer, _ = await shop.post(shape.packet, {"BIT_KKT_TOKEN": shop.tokens[0], "BIT_BNK_TRM_TOKEN": shop.tokens[1],
                                                  "BIT_ORDER_ID": "from-a-cms"})
    doubt = await crash_state(shop, "stopped", json.loads(preset("receipt").text), 0, fd_before=answer[1]["fdNumber_1040"])
    packets, in_doubt, cloud, qrs = await asyncio.to_thread(refreshed, "from-a-cms", doubt)
    assert "from-a-cms" not in before and "Касса 1" in packets and "Терминал" in packets
    for warning in answer[1]["warnings"]:
        assert warning["en"] in packets and warning["path"] in packets  # English chosen: the English text shows
    assert qrs == 1 and "Касса 1" in in_doubt and "never repeated blindly" in in_doubt and "stopped" in in_doubt
    assert "RECEIPT, 11.00 ₽" in in_doubt, in_doubt  # what the driver will look for on the register
    assert "not configured" in cloud
    assert await asyncio.to_thread(policy_violations, chromium) == []


# --- without a browser -------------------------------------------------------------------------------------------


def test_the_bitrix_preset_is_what_the_module_sends():
    """The preset and the vendor shape the driver's tests hold are one packet (so neither drifts)."""
    bitrix = next(shape for shape in SHAPES if shape.name == "Bitrix, Банковской картой")
    assert json.loads(preset("bitrix").text) == bitrix.packet and preset("bitrix").style == "1.2"
    assert [p.key for p in presets() if not p.cloud] == ["example", "bitrix"]  # the card presets


async def test_the_test_page_is_for_this_computer_only(shop):
    async with shop.session.get(shop.url + "/test") as response:
        page = await response.text()
        assert response.status == 200 and 'data-mode="driver"' in page
        assert "connect-src 'self' http://localhost:*" in response.headers["Content-Security-Policy"]
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        async with shop.session.get(shop.url + "/test", headers=headers) as response:
            assert response.status == 403 and (await response.json())["errorCode"] in ("origin_not_allowed",
                                                                                       "local_only")


def test_the_cloud_link_is_shown_as_the_link_reports_it():
    from kktbridge.driver.status import _cloud

    assert "data-cloud=none" in _cloud(None)
    shown = _cloud({"url": "wss://cloud.example/link", "state": "offline", "via": "poll", "since": "2026-12-02T20:00",
                    "lastError": {"ru": "нет сети <b>", "en": "no network <b>"}, "received": 3, "reported": 2})
    assert "data-cloud=offline" in shown and "wss://cloud.example/link" in shown and "3 / 2" in shown
    assert "нет сети &lt;b&gt;" in shown and "<b>" not in shown.replace("<b class=bad", "")


def test_every_asset_the_pages_name_ships_in_the_package():
    """Offline: each page's src and href point into the package's /static (or to the page itself), and each exists;
    no script fetches anything from another host."""
    import re

    from kktbridge.web import asset
    from kktbridge.web.routes import _assets

    shipped = _assets()
    for page in ("test_page.html", "driver_status.html"):
        links = re.findall(r'(?:src|href)="([^"]*)"', asset(page))
        assert links, page
        for link in links:
            assert link.startswith(("/static/", "?lang=", "/test")), (page, link)
            if link.startswith("/static/"):
                assert link.split("/static/")[1].split("?")[0] in shipped, (page, link)
    for name, body in shipped.items():
        if name.endswith((".js", ".css")):
            assert not re.search(rb"https?://(?!localhost|127\.0\.0\.1)[a-z]", body), name


async def test_the_receipt_preview_reads_every_item_shape(shop, chromium):
    """receipt.js on its own: items as `purchases`, `"1059": [...]` and `"<x>_1059": {...}` (API 1.2 to 1.5), the
    receipt type, the payments and the fiscal data of the result."""
    items = [{"productName_1030": "первый", "price_1079": 10, "qty_1023": 2, "tax_1199": 1},
             {"productName_1030": "второй", "price_1079": 5.5, "qty_1023": 1, "tax_1199": 6}]
    shapes = [{"purchases": items}, {"1059": items}, {"p1_1059": items[0], "p2_1059": items[1]}]
    result = {"fdNumber_1040": 7, "fiscalSign_1077": "123", "total_1020": 25.5, "receiptType_1054": 2,
              "qr": "t=20261202T1200&s=25.50"}

    def render() -> list[str]:
        chromium.get(shop.url + "/test")
        wait_for(chromium, "return window.kktbridgeReceipt")
        return [chromium.execute_script(
            "var paper = kktbridgeReceipt.render({type: 'kktReceiptFiscalization', data: arguments[0]}, arguments[1],"
            " {qr: '/qr.svg'}); document.body.appendChild(paper); return paper.innerText",
            {**data, "payments": {"cash_1031": 20, "ecash_1081": 5.5}}, result)
            for data in shapes]

    for text in await asyncio.to_thread(render):
        paper = " ".join(text.split())
        for expected in ("ВОЗВРАТ ПРИХОДА 1. первый 2 × 10,00 = 20,00 НДС 20% 2. второй 1 × 5,50 = 5,50 БЕЗ НДС",
                         "ИТОГ ≡ 25,50 НАЛИЧНЫМИ ≡ 20,00 БЕЗНАЛИЧНЫМИ ≡ 5,50", "ФД 7 ФП 123"):
            assert expected in paper, paper
