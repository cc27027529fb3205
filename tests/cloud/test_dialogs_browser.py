"""The vendor's browser dialog in a real Chromium: a shop's page (served here, on its own origin) signs and posts the
form exactly as the vendor's jQuery does (md5 over the raw JSON textarea, BIT_DATA = btoa(encodeURIComponent(json))),
the cloud's progress page follows the receipt, and the browser is sent on to the shop's success URL with the result.

The receipt is finished by the test with `store.finish`, as the driver link does, so the page's part is tested on
its own (the end-to-end run with a linked driver and emulators is test_link.py's). Screenshots go to the test's
tmp dir, printed."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from datetime import timedelta

import pytest
from aiohttp import web

from kktbridge.cloud import State
from kktbridge.web import asset

from .support import receipt_packet
from .test_link import Rig, receipts_in

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Chromium is not installed (scripts/test.sh installs it)", allow_module_level=True)

RESULT = [{"name": "чек", "type": "kktReceiptFiscalization", "success": "OK: чек №7", "fdNumber_1040": 7}]

SHOP_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Ваша CMS/CRM</title>
<script src="/md5.js"></script><script>var md5 = window.kktbridgeMd5; /* jquery.md5's $.md5 */</script>
<link rel="icon" href="data:,"></head><body>
<form id="form1" method="post" action="">
<input name="BIT_ACCOUNT_ID" id="BIT_ACCOUNT_ID" value="%(account)s">
<input name="BIT_KKT_TOKEN" id="BIT_KKT_TOKEN" value="%(token)s">
<input name="BIT_ORDER_ID" id="BIT_ORDER_ID" value="%(order)s">
<input name="BIT_CALLBACK_SUCCESS" id="BIT_CALLBACK_SUCCESS" value="%(shop)s/success.php">
<input name="BIT_CALLBACK_FAILED" id="BIT_CALLBACK_FAILED" value="%(shop)s/failed.php">
<input name="BIT_SIGNATURE" id="BIT_SIGNATURE" type="hidden">
<input name="BIT_DATA" id="BIT_DATA" type="hidden">
</form>
<input id="BIT_DATAINTEGRITY_CODE" value="%(code)s">
<textarea id="DATA">%(packet)s</textarea>
<button id="btnFiscal">Пробить через облако</button>
<script>
// general.js's sendPost(url): md5 over the raw JSON, then BIT_DATA = btoa(encodeURIComponent(json)), submit form1.
document.getElementById("btnFiscal").addEventListener("click", function () {
  var v = function (id) { return document.getElementById(id).value; };
  var json = v("DATA");
  document.getElementById("BIT_SIGNATURE").value = md5(v("BIT_ACCOUNT_ID") + v("BIT_KKT_TOKEN") + v("BIT_ORDER_ID")
      + json + v("BIT_CALLBACK_SUCCESS") + v("BIT_CALLBACK_FAILED") + v("BIT_DATAINTEGRITY_CODE"));
  document.getElementById("BIT_DATA").value = btoa(encodeURIComponent(json));
  var form = document.getElementById("form1");
  form.action = "%(cloud)s%(path)s";
  form.submit();
});
</script></body></html>"""


@pytest.fixture
def cloud_options() -> dict:
    return {"allow_private_callbacks": True}  # the shop is on this machine


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cloud.sqlite3'}"


class ShopSite:
    """The shop's web site: its page, the md5 script its page ships, and the callback pages the browser lands on."""

    def __init__(self) -> None:
        self.landed: list[tuple[str, dict[str, str]]] = []
        self.page = ""

    async def start(self):
        app = web.Application()
        async def page(_: web.Request) -> web.Response:
            return web.Response(text=self.page, content_type="text/html")

        async def md5(_: web.Request) -> web.Response:
            return web.Response(text=asset("static/md5.js"), content_type="text/javascript")

        app.router.add_get("/", page)
        app.router.add_get("/md5.js", md5)
        app.router.add_post("/{name}.php", self._landed)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def _landed(self, request: web.Request) -> web.Response:
        form = await request.post()
        if "X-Kktbridge-Signature" not in request.headers:  # the browser, not the cloud's own callback
            self.landed.append((request.match_info["name"], {k: str(v) for k, v in form.items()}))
        return web.Response(text=f"<h1 id='landed'>{request.match_info['name']}</h1>", content_type="text/html")


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--window-size=390,844"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


async def wait_for(check, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert time.monotonic() < deadline, "the page did not get there in time"
        await asyncio.sleep(0.1)


async def test_the_receipt_dialog_in_a_browser_finished_with_store_finish(cloud, tmp_path):
    from selenium.webdriver.common.by import By

    a = cloud.a
    shop = await ShopSite().start()
    shop.page = SHOP_PAGE % {"account": a.id, "token": a.token, "order": "browser-1", "shop": shop.url,
                             "code": a.account.integrity_code, "cloud": cloud.url,
                             "path": "/api/create-receipt-dlg.php", "packet": json.dumps(json.loads(receipt_packet()), ensure_ascii=False, indent=2)}
    browser = await asyncio.to_thread(chromium)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    try:
        await asyncio.to_thread(browser.get, shop.url + "/")
        await asyncio.to_thread(lambda: browser.find_element(By.ID, "btnFiscal").click())
        await wait_for(lambda: browser.current_url.endswith("/api/create-receipt-dlg.php"))
        refusal = await asyncio.to_thread(browser.find_elements, By.ID, "refusal")
        assert not refusal, refusal[0].text
        state = await asyncio.to_thread(browser.find_element, By.ID, "state")
        await wait_for(lambda: state.get_attribute("data-state") == "queued" and "ждём драйвер" in state.text)
        await asyncio.to_thread(browser.save_screenshot, str(shots / "dialog-queued-ru.png"))
        await asyncio.to_thread(lambda: browser.find_element(By.CSS_SELECTOR, "[data-set-lang=en]").click())
        await wait_for(lambda: "waiting for the register" in state.text)
        await asyncio.to_thread(browser.save_screenshot, str(shots / "dialog-queued-en.png"))
        width, viewport = await asyncio.to_thread(browser.execute_script, "return [document.documentElement."
                                                  "scrollWidth, window.innerWidth]")
        assert width <= viewport <= 520, f"the page ({width}px) is wider than a narrow window ({viewport}px)"
        record = await cloud.store.receipt_by_order(a.id, "browser-1")
        assert record is not None and record.state is State.QUEUED  # the signature the page computed was accepted
        await cloud.store.claim(a.driver.id, node="test", lease=timedelta(minutes=1))
        await cloud.store.finish(record.uuid, State.DONE, driver_id=a.driver.id, result=RESULT)
        await wait_for(lambda: browser.current_url == shop.url + "/success.php")
        await asyncio.to_thread(browser.save_screenshot, str(shots / "shop-success.png"))
        logs = await asyncio.to_thread(browser.get_log, "browser")
        assert not [entry for entry in logs if entry["level"] == "SEVERE" and "favicon" not in entry["message"]], logs
    finally:
        await asyncio.to_thread(browser.quit)
        await shop.runner.cleanup()
    ((name, fields),) = shop.landed
    assert name == "success" and fields["result"] == "true" and fields["BIT_ORDER_ID"] == "browser-1"
    assert fields["receipt_id"] == str(record.uuid) and json.loads(fields["data"])[0]["fdNumber_1040"] == 7
    assert sorted(p.name for p in shots.iterdir()) == ["dialog-queued-en.png", "dialog-queued-ru.png",
                                                      "shop-success.png"]


async def test_the_receipt_dialog_in_a_browser_with_a_linked_driver_and_the_emulator(tmp_path, emulator_process):
    """The whole flow: the shop's page → the cloud's dialog → the linked driver prints on the ATOL emulator → the
    browser lands on the shop's success URL with the register's fiscal data."""
    from selenium.webdriver.common.by import By

    rig = await Rig(tmp_path, emulator_process, cloud_args=("--allow-private-callbacks",)).start()
    shop = await ShopSite().start()
    tenant = rig.tenant
    shop.page = SHOP_PAGE % {"account": tenant.id, "token": tenant.token, "order": "linked-dlg-1", "shop": shop.url,
                             "code": tenant.account.integrity_code, "cloud": rig.clouds[0].url,
                             "path": "/api/create-receipt-dlg.php",
                             "packet": json.dumps(json.loads(receipt_packet()), ensure_ascii=False, indent=2)}
    browser = await asyncio.to_thread(chromium)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    try:
        await asyncio.to_thread(browser.get, shop.url + "/")
        await asyncio.to_thread(lambda: browser.find_element(By.ID, "btnFiscal").click())
        await wait_for(lambda: browser.current_url == shop.url + "/success.php", timeout=30)
        await asyncio.to_thread(browser.save_screenshot, str(shots / "shop-success-linked.png"))
    finally:
        await asyncio.to_thread(browser.quit)
        await shop.runner.cleanup()
        await rig.close()
    ((name, fields),) = shop.landed
    data = json.loads(fields["data"])
    assert name == "success" and fields["result"] == "true", fields
    assert data[-1]["fdNumber_1040"] == receipts_in(rig.journal)[-1]["fd"] and data[-1]["fiscalSign_1077"]


PAYMENT_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>CMS 1.0</title>
<script src="/md5.js"></script><script>var md5 = window.kktbridgeMd5;</script><link rel="icon" href="data:,">
</head><body>
<form id="form1" method="post" action="%(cloud)s/api/payment-dlg.php">
<input name="BIT_ACCOUNT_ID" id="BIT_ACCOUNT_ID" value="%(account)s">
<input name="BIT_KKT_TOKEN" id="BIT_KKT_TOKEN" value="%(token)s">
<input name="BIT_TRANSACTION_ID" id="BIT_TRANSACTION_ID" value="pay-browser-1">
<input name="BIT_CALBACK_SUCCESSFUL" id="S" value="%(shop)s/success.php">
<input name="BIT_CALBACK_FAILED" id="F" value="%(shop)s/failed.php">
<input name="BIT_SIGNATURE" id="BIT_SIGNATURE" type="hidden">
<input name="BIT_JSON" id="BIT_JSON" type="hidden">
</form>
<textarea id="RECEIPT">%(receipt)s</textarea>
<button id="btnCallPaymentDlg">Оплатить картой</button>
<script>
// The 1.0/1.1 page: one receipt object in BIT_JSON, the md5 over its raw text, the integrity code kept outside.
document.getElementById("btnCallPaymentDlg").addEventListener("click", function () {
  var v = function (id) { return document.getElementById(id).value; };
  var json = v("RECEIPT");
  document.getElementById("BIT_SIGNATURE").value = md5(v("BIT_ACCOUNT_ID") + v("BIT_KKT_TOKEN")
      + v("BIT_TRANSACTION_ID") + json + v("S") + v("F") + "%(code)s");
  document.getElementById("BIT_JSON").value = btoa(encodeURIComponent(json));
  document.getElementById("form1").submit();
});
</script></body></html>"""


async def test_the_payment_dialog_in_a_browser_card_first_finished_with_store_finish(cloud, tmp_path):
    """API 1.0 field names; the driver is marked linked and the outcome (a declined card) reported with
    `store.finish`, as the link does: the browser lands on the shop's failed URL."""
    from selenium.webdriver.common.by import By

    a = cloud.a
    await cloud.store.linked(a.driver.id, link="ws", node="test", version="test")
    shop = await ShopSite().start()
    receipt = ('{"purchases": [{"productName_1030": "товар", "price_1079": 11.00, "qty_1023": 1, "tax_1199": 6}], '
               '"payments": {"ecash_1081": 11.00}, "receiptType_1054": 1, "taxationType_1055": 1}')
    shop.page = PAYMENT_PAGE % {"account": a.id, "token": a.token, "shop": shop.url, "cloud": cloud.url,
                                "code": a.account.integrity_code, "receipt": receipt}
    browser = await asyncio.to_thread(chromium)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots: {shots}")
    try:
        await asyncio.to_thread(browser.get, shop.url + "/")
        await asyncio.to_thread(lambda: browser.find_element(By.ID, "btnCallPaymentDlg").click())
        await wait_for(lambda: browser.current_url.endswith("/api/payment-dlg.php"))
        refusal = await asyncio.to_thread(browser.find_elements, By.ID, "refusal")
        assert not refusal, refusal[0].text
        notice = await asyncio.to_thread(browser.find_element, By.CSS_SELECTOR, "p.notice[data-show=payment]")
        await wait_for(lambda: notice.is_displayed() and "терминал" in notice.text)
        await asyncio.to_thread(browser.save_screenshot, str(shots / "payment-dialog-ru.png"))
        record = await cloud.store.receipt_by_order(a.id, "pay-browser-1")
        assert record.source == "dialog" and json.loads(record.packet)[0]["type"] == "bnkCardPayment"
        await cloud.store.claim(a.driver.id, node="test", lease=timedelta(minutes=1))
        error = {"code": "card_declined", "ru": "карта отклонена", "en": "card declined", "retryable": False}
        await cloud.store.finish(record.uuid, State.FAILED, driver_id=a.driver.id, error=error)
        await wait_for(lambda: browser.current_url == shop.url + "/failed.php")
        await asyncio.to_thread(browser.save_screenshot, str(shots / "shop-failed.png"))
    finally:
        await asyncio.to_thread(browser.quit)
        await shop.runner.cleanup()
    ((name, fields),) = shop.landed
    assert name == "failed" and fields["result"] == "false" and fields["BIT_ORDER_ID"] == "pay-browser-1"
    assert json.loads(fields["data"])["errorCode"] == "card_declined"
