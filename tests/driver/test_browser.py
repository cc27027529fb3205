"""A real browser: CMS pages on an allowed origin send packets the way the vendor's jQuery clients do (custom
headers, so Chromium makes a CORS preflight), to a driver in this process and to `kktbridge demo`; a page on
another origin is refused; and the driver's own status page runs its example."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from aiohttp import web

from kktbridge.emulators.fncore import read_journal
from kktbridge.examples import example_packet

from ..vendor_shapes import SHAPES
from .conftest import close_stand, make_stand

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("KKTBRIDGE_REQUIRE_BROWSER"):
        raise RuntimeError("Chromium and chromedriver are required (scripts/test.sh installs them)")
    pytest.skip("Chromium is not installed (scripts/test.sh installs it)", allow_module_level=True)

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>CMS</title></head><body>
<pre id="result">waiting</pre>
<script>
// What jQuery's $.ajax does with the vendor's settings (method POST, dataType json, async false, headers):
// a string `data` goes as it is, an object is encoded as a form (jQuery.param: encodeURIComponent, %20 as +),
// both with jQuery's default Content-Type.
function ajax(url, headers, data) {
  var xhr = new XMLHttpRequest();
  xhr.open("POST", url, false);
  xhr.setRequestHeader("Accept", "application/json, text/javascript, */*; q=0.01");
  xhr.setRequestHeader("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8");
  for (var name in headers) xhr.setRequestHeader(name, headers[name]);
  if (typeof data !== "string") {
    data = Object.keys(data).map(function (key) {
      return (encodeURIComponent(key) + "=" + encodeURIComponent(data[key])).replace(/%20/g, "+");
    }).join("&");
  }
  try { xhr.send(data); } catch (e) { return "network error: CORS"; }
  return xhr.responseText;
}

// One packet in a header style: 1.3+ as the 2025 page (BIT_KKT_TOKEN, encodeURIComponent(json) as a string),
// 1.2 as the Bitrix/WooCommerce/Joomla modules and the 1.2 page (tokens as header names, data: {json: text}).
function send(job) {
  var text = JSON.stringify(job.packet), headers = {"BIT_ORDER_ID": job.order};
  if (job.style === "1.2") {
    headers["Action"] = "toLocalhost";
    if (job.kkt) headers[job.kkt] = "1";
    if (job.bnk) headers[job.bnk] = "1";
    return ajax(job.url, headers, {json: text});
  }
  headers["Action"] = "command_list";
  headers["BIT_ENCODE_TYPE"] = "JS";
  if (job.kkt) headers["BIT_KKT_TOKEN"] = job.kkt;
  if (job.bnk) headers["BIT_BNK_TRM_TOKEN"] = job.bnk;
  return ajax(job.url, headers, encodeURIComponent(text));
}

function runAll(jobs) {
  document.getElementById("result").textContent = JSON.stringify(jobs.map(send));
}
</script></body></html>"""


async def serve_page() -> tuple[web.AppRunner, str]:
    """A CMS page on an origin of its own."""
    return await serve(lambda: PAGE)


async def serve(html, routes=None) -> tuple[web.AppRunner, str]:
    """A one-page site on a free port of 127.0.0.1; `html()` makes the page (str, or a whole Response) when it is
    requested; `routes(router)` adds more."""

    async def page(request: web.Request) -> web.Response:
        made = html()
        return made if isinstance(made, web.Response) else web.Response(text=made, content_type="text/html",
                                                                         charset="utf-8")

    app = web.Application()
    app.router.add_get("/", page)
    if routes is not None:
        routes(app.router)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def browser(*flags: str):
    """Headless Chromium (with extra command-line `flags`); its console is kept for `get_log("browser")`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def run_page(url: str, jobs: list[dict], timeout: float = 60) -> list:
    """Open the page, send the jobs one after another, return the answers (text each, JSON where it is)."""
    driver = browser()
    try:
        driver.get(url)
        driver.execute_script("runAll(arguments[0])", jobs)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = driver.find_element("id", "result").text
            if text != "waiting":
                return [json.loads(answer) if answer.startswith(("[", "{")) else answer for answer in json.loads(text)]
            time.sleep(0.05)
        raise AssertionError("the page got no answer")
    finally:
        driver.quit()


def jobs_for(url: str, kkt: str, bnk: str, prefix: str) -> list[dict]:
    """Every vendor shape in both header styles."""
    return [{"url": url, "packet": shape.packet, "style": style, "kkt": kkt, "bnk": bnk if shape.card else "",
             "order": f"{prefix}-{number}-{style}"} for number, shape in enumerate(SHAPES) for style in ("1.3", "1.2")]


@pytest.fixture
async def page():
    runner, origin = await serve_page()
    yield origin
    await runner.cleanup()


@pytest.fixture
async def stand(tmp_path, arccom_library, page):
    stand = await make_stand(tmp_path, terminal=arccom_library, cors={"allowed_origins": [page]})
    yield stand
    await close_stand(stand)


async def test_a_page_on_an_allowed_origin_runs_the_whole_example_packet(stand, page):
    """The 1.2 example packet from a page: the terminal approves 12.00, the slip and the receipt are printed on
    the register, and the answer carries both."""
    example = json.loads(example_packet())
    jobs = [{"url": stand.url, "packet": example, "style": style, "kkt": stand.tokens[0], "bnk": stand.tokens[1],
             "order": f"web-{style}"} for style in ("1.3", "1.2")]
    for payment, result in await asyncio.to_thread(run_page, page, jobs):
        assert payment["success"] == "OK: ОДОБРЕНО" and payment["rrn"] and payment["slipPrinted"] is True, payment
        assert result["success"].startswith("OK: чек") and "warnings" not in result, result
        assert result["fdNumber_1040"] > 0 and result["fiscalSign_1077"] and result["qr"].startswith("t=")
        assert payment["rrn"] in stand.emulators[0].paper.text() and result["qr"] in stand.emulators[0].paper.text()
    assert len(stand.receipts()) == 2
    packets = stand.driver.journal.recent()
    assert {p.origin for p in packets} == {page} and {p.source for p in packets} == {"browser"}


async def test_a_page_on_another_origin_is_refused(stand):
    other, origin = await serve_page()
    try:
        job = {"url": stand.url, "packet": json.loads(example_packet()), "style": "1.3", "kkt": stand.tokens[0],
               "bnk": stand.tokens[1], "order": "evil"}
        assert await asyncio.to_thread(run_page, origin, [job]) == ["network error: CORS"]
    finally:
        await other.cleanup()
    assert stand.receipts() == []


async def test_the_vendor_shapes_print_on_the_demo_from_a_page(tmp_path, page):
    """`kktbridge demo --allow-origin <the page>`: the 1.2 example with no token at all, then the four shapes of
    the vendor's clients in both header styles print with their adjustments, and the register records the
    payments the adjustments name."""
    process = subprocess.Popen([sys.executable, "-m", "kktbridge", "demo", "--json", "--driver-port", "0",
                                "--data-dir", str(tmp_path), "--allow-origin", page],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = json.loads(await asyncio.to_thread(process.stdout.readline))
        token = {d["kind"]: d["token"] for d in ready["devices"]}
        url = ready["driver_url"]
        tokenless = {"url": url, "packet": json.loads(example_packet()), "style": "1.3", "kkt": "", "bnk": "",
                     "order": "no-token"}
        answers = await asyncio.to_thread(run_page, page, [tokenless, *jobs_for(url, token["atol"], token["arcus"],
                                                                                "demo")])
    finally:
        process.terminate()
        process.wait(15)
        process.stdout.close()
    journal = next(d["journal"] for d in ready["devices"] if d["kind"] == "atol")
    printed = [r for r in read_journal(journal) if r["doc"] == "receipt"]
    first, *answers = answers
    assert first[0]["success"] == "OK: ОДОБРЕНО" and first[1]["fdNumber_1040"] == printed[0]["fd"]
    shapes = [shape for shape in SHAPES for _ in ("1.3", "1.2")]
    assert len(printed) == 1 + len(shapes)
    for shape, answer, record in zip(shapes, answers, printed[1:]):
        result = answer[-1]
        assert result["success"].startswith("OK: чек") and "исправлено драйвером" in result["success"], answer
        assert [w["code"] for w in result["warnings"]] == list(shape.warnings)
        assert record["fd"] == result["fdNumber_1040"] and record["payments"] == shape.payments, shape.name


async def test_strict_mode_refuses_the_vendor_shapes_from_a_page(tmp_path, arccom_library, page):
    stand = await make_stand(tmp_path, terminal=arccom_library, cors={"allowed_origins": [page]},
                             settings={"strict": True})
    try:
        answers = await asyncio.to_thread(run_page, page, jobs_for(stand.url, stand.tokens[0], stand.tokens[1],
                                                                   "strict"))
        assert len(answers) == 2 * len(SHAPES)
        for answer in answers:
            assert answer["result"] is False and answer["errorCode"] == "bad_packet" and answer["fields"], answer
        assert stand.receipts() == []
    finally:
        await close_stand(stand)


async def test_the_status_page_runs_its_example_and_shows_it(stand):
    """Run on the driver's own page: the answer keeps 12.00 as sent, the timing is readable, and the list of
    recent packets shows the new packet without a reload."""
    from selenium.webdriver.support.ui import WebDriverWait

    def click_run() -> tuple[str, str, str, str]:
        driver = browser()
        try:
            driver.get(stand.url + "/")
            before = driver.find_element("id", "packets").text
            driver.find_element("id", "send").click()
            WebDriverWait(driver, 30).until(lambda d: "мс / ms" in d.find_element("id", "state").text)
            WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "packets").text != before)
            return (driver.find_element("id", "answer").text, driver.find_element("id", "state").text,
                    driver.find_element("id", "packets").text, driver.find_element("id", "packet").get_attribute(
                        "value"))
        finally:
            driver.quit()

    answer, state, packets, example = await asyncio.to_thread(click_run)
    assert '"amount": 12.00' in answer and '"total_1020": 11.00' in answer, answer
    assert '"sum": 12' in example and '"price_1079": 11.00' in example  # the example as shipped, indented
    assert state.startswith("устройство / device ") and "всего / total" in state and "dur=" not in state
    assert "Касса 1" in packets and "Терминал" in packets and "пока пусто" not in packets
    assert len(stand.receipts()) == 1
