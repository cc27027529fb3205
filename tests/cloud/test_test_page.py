"""The integrator's test page served by the cloud (/api/test, /api/test.php): its assets and policy, the receipt
state its form's sender may read, and in a real browser the signed form (md5 computed by the page) followed live
from queued to done, and the local driver run from the cloud's page once the driver allows the cloud's origin."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest

from kktbridge.bitapi import loads
from kktbridge.cloud.states import State
from kktbridge.examples.presets import preset
from kktbridge.web.routes import asset_version

from tests.driver.conftest import close_stand, make_stand
from tests.driver.test_test_page import READ_RESULTS, chromium, run_preset, shot, wait_for  # noqa: F401 - a fixture
from .support import RECEIPT_TEXT


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: the store's SQL is tested on both databases elsewhere; here the browser is the subject."""
    return f"sqlite:///{tmp_path / 'cloud.sqlite3'}"


async def test_the_page_and_its_assets_are_served_with_their_policy(cloud):
    for path in ("/api/test", "/api/test.php"):
        async with cloud.http.get(cloud.url + path) as response:
            page = await response.text()
            policy = response.headers["Content-Security-Policy"]
        assert response.status == 200 and 'data-mode="cloud"' in page and 'id="send-cloud"' in page
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert "http://localhost:*" in policy and response.headers["X-Frame-Options"] == "DENY"
    version = asset_version()
    async with cloud.http.get(f"{cloud.url}/static/md5.js?v={version}") as response:
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert "immutable" in response.headers["Cache-Control"]
        etag = response.headers["ETag"]
    async with cloud.http.get(f"{cloud.url}/static/md5.js", headers={"If-None-Match": etag}) as response:
        assert response.status == 304 and response.headers["Cache-Control"] == "no-cache"
    async with cloud.http.get(f"{cloud.url}/static/presets.json") as response:
        assert [p["key"] for p in json.loads(await response.text())][:3] == ["open_shift", "cash_in", "example"]
    async with cloud.http.get(f"{cloud.url}/static/..%2Fapp.py") as response:
        assert response.status == 404 and (await response.json())["result"] is False
    async with cloud.http.get(cloud.url + "/qr.svg", params={"t": "t=20261202T1200&s=11.00"}) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/svg+xml"
        assert (await response.read()).startswith(b"<?xml")
    async with cloud.http.get(cloud.url + "/qr.svg", params={"t": "x" * 513}) as response:
        answer = await response.json()
        assert response.status == 400 and answer["errorCode"] == "qr_text" and "512" in answer["errorEn"]


async def test_the_receipt_state_is_read_by_its_unguessable_id_and_shows_nothing_else(cloud):
    tenant = cloud.a
    status, answer, _ = await cloud.post_form(cloud.form(tenant, "state-1", success="https://shop.example/ok"))
    assert status == 201
    receipt = answer["receipt"]["id"]
    path = f"/api/fiscal/receipt-state/{receipt}"
    async with cloud.http.get(cloud.url + path, params={"account": str(tenant.id)}) as response:
        state = await response.json()
        text = json.dumps(state)
    assert state == {"id": receipt, "state": "queued", "final": False, "result": None, "error": None,
                     "checkedAt": state["checkedAt"]}
    assert "shop.example" not in text and not any(secret in text for secret in tenant.secrets)
    for account, receipt_id in ((cloud.b.id, receipt), (tenant.id, str(uuid.uuid4())), (tenant.id, "1 or 1=1"),
                                ("x", receipt)):
        async with cloud.http.get(f"{cloud.url}/api/fiscal/receipt-state/{receipt_id}",
                                  params={"account": str(account)}) as response:
            assert response.status == 404 and (await response.json())["errorCode"] == "not_found"


async def test_the_signed_form_is_sent_from_the_page_and_followed_live_to_the_result(cloud, tmp_path, chromium):
    """The page signs the form with md5 in the browser (the server checks it), posts it, and shows queued; a driver
    takes the receipt (delivered), prints it on an emulated register and reports: the page shows the register's FD
    number, fiscal sign and QR code. Each state is held here long enough to be seen (the store's calls the link
    makes, claim and finish, around a real driver); test_test_page_demo.py goes through the link itself."""
    tenant = cloud.a
    stand = await make_stand(tmp_path / "driver")
    query = (f"?BIT_ACCOUNT_ID={tenant.id}&BIT_KKT_TOKEN={tenant.token}"
             f"&BIT_DATAINTEGRITY_CODE={tenant.account.integrity_code}&preset=receipt")

    def send() -> str:
        chromium.get(cloud.url + "/api/test" + query)
        wait_for(chromium, "return document.getElementById('packet').value")
        chromium.find_element("id", "success").send_keys("https://shop.example/ok")
        chromium.find_element("id", "send-cloud").click()
        receipt = wait_for(chromium, "return document.getElementById('message').dataset.receipt")
        wait_for(chromium, "return document.querySelector('#progress [data-step=queued].reached')")
        shot(chromium, "test-page-cloud-queued", "outcome")
        return receipt

    def done() -> list[dict]:
        wait_for(chromium, "return document.getElementById('message').dataset.state === 'done'", 30)
        wait_for(chromium, "return Array.from(document.querySelectorAll('img.qr-image')).every(i => i.complete)")
        shot(chromium, "test-page-cloud-done", "outcome")
        return chromium.execute_script(READ_RESULTS)

    try:
        receipt = await asyncio.to_thread(send)
        stored = await cloud.store.receipt(tenant.id, uuid.UUID(receipt))
        assert stored.callback_success == "https://shop.example/ok" and stored.state is State.QUEUED
        (delivered,) = await cloud.store.claim(tenant.driver.id, node="test", lease=timedelta(minutes=1))
        await asyncio.to_thread(wait_for, chromium,
                                "return document.querySelector('#progress [data-step=delivered].reached')")
        async with stand.session.post(stand.url, data=delivered.packet.encode(), headers={
                "BIT_KKT_TOKEN": stand.token, "BIT_ORDER_ID": delivered.order_id}) as response:
            result = loads(await response.text())  # the driver's answer, its decimals as written
        await cloud.store.finish(delivered.uuid, State.DONE, driver_id=tenant.driver.id, result=result)
        shown = await asyncio.to_thread(done)
    finally:
        await close_stand(stand)
    (printed,) = stand.receipts()
    (command,) = shown
    assert command["outcome"] == "success" and command["fields"]["fdNumber_1040"] == str(printed["fd"])
    assert command["fields"]["fiscalSign_1077"] == str(printed["fp"]) and command["qr"]["loaded"]
    assert "ИТОГ" in command["paper"] and json.loads(delivered.packet) == json.loads(preset("receipt").text)


async def test_the_cloud_page_runs_on_the_local_driver_once_the_cloud_origin_is_allowed(cloud, tmp_path, chromium):
    """The cloud's own page is a site like any other for the driver: refused, with where to allow it, until its
    origin is in allowed_origins; then the receipt prints."""
    refusing = await make_stand(tmp_path / "refusing")
    allowing = await make_stand(tmp_path / "allowing", cors={"allowed_origins": [cloud.url]})

    def run(driver_url: str, name: str) -> tuple[str | None, list[dict]]:
        chromium.get(f"{cloud.url}/api/test.php?driver={driver_url}&BIT_KKT_TOKEN={refusing.token}")
        wait_for(chromium, "return document.getElementById('preset').options.length")
        if driver_url == refusing.url:
            chromium.find_element("id", "run-local").click()
            problem = wait_for(chromium, "return document.getElementById('message').dataset.problem")
            shot(chromium, name, "outcome")
            return problem, []
        chromium.find_element("id", "kkt").clear()
        chromium.find_element("id", "kkt").send_keys(allowing.token)
        results = run_preset(chromium, "receipt")
        shot(chromium, name, "outcome")
        return None, results

    try:
        problem, _ = await asyncio.to_thread(run, refusing.url, "test-page-cloud-origin-refused")
        _, results = await asyncio.to_thread(run, allowing.url, "test-page-cloud-local-run")
    finally:
        await close_stand(refusing)
        await close_stand(allowing)
    assert problem == "origin_not_allowed" and refusing.receipts() == []
    assert results[0]["outcome"] == "success" and results[0]["qr"]["loaded"]
    assert results[0]["fields"]["fdNumber_1040"] == str(allowing.receipts()[0]["fd"])
    assert json.loads(RECEIPT_TEXT) == json.loads(preset("receipt").text)


@pytest.mark.parametrize("cloud_options", [{"auth_failure_limit": "3/minute"}])
async def test_guessing_receipt_ids_is_slowed_down_per_address(cloud):
    status, answer, _ = await cloud.post_form(cloud.form(cloud.a, "guess-1"))
    known = f"/api/fiscal/receipt-state/{answer['receipt']['id']}?account={cloud.a.id}"
    statuses = []
    for _ in range(4):
        async with cloud.http.get(f"{cloud.url}/api/fiscal/receipt-state/{uuid.uuid4()}?account={cloud.a.id}") as r:
            statuses.append(r.status)
    async with cloud.http.get(cloud.url + known) as response:  # even a right id waits now
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert statuses == [404, 404, 404, 429]


async def test_the_page_refuses_a_card_for_the_cloud_and_shows_the_clouds_refusal(cloud, chromium):
    """A card payment cannot go through the cloud: the page says so before sending; a wrong integrity code is sent
    and the cloud's refusal (the signature) is shown with its text."""
    tenant = cloud.a
    page = f"{cloud.url}/api/test?BIT_ACCOUNT_ID={tenant.id}&BIT_KKT_TOKEN={tenant.token}&BIT_DATAINTEGRITY_CODE="

    def attempt(code: str, key: str) -> tuple[str | None, str]:
        chromium.get(page + code + "&preset=" + key)
        wait_for(chromium, "return document.getElementById('packet').value")
        chromium.find_element("id", "send-cloud").click()
        wait_for(chromium, "return !document.getElementById('send-cloud').disabled && "
                           "document.getElementById('message').className === 'error-box'")
        shot(chromium, f"test-page-cloud-refused-{key}", "outcome")
        return (chromium.execute_script("return document.getElementById('message').dataset.problem || null"),
                chromium.find_element("id", "message").text)

    card = await asyncio.to_thread(attempt, tenant.account.integrity_code, "example")
    forged = await asyncio.to_thread(attempt, "not-the-code", "receipt")
    assert card[0] is None and "Оплата картой требует человека у терминала" in card[1], card
    assert forged[0] == "bad_signature" and "подпись не сходится" in forged[1], forged
    assert await cloud.store.list_receipts(tenant.id) == []


async def test_the_cloud_page_fits_a_narrow_screen_in_both_languages(cloud, chromium):
    def narrow() -> list[tuple[int, int, str]]:
        chromium.set_window_size(390, 900)
        out = []
        try:
            for lang in ("ru", "en"):
                chromium.get(f"{cloud.url}/api/test?lang={lang}")
                wait_for(chromium, "return document.getElementById('preset').options.length")
                out.append((*chromium.execute_script("return [document.documentElement.scrollWidth, innerWidth]"),
                            chromium.find_element("id", "send-cloud").text))
                shot(chromium, f"test-page-cloud-390px-{lang}")
        finally:
            chromium.set_window_size(1280, 1000)
            chromium.execute_script("kktbridgeLang.choose('ru')")
        return out

    (ru_width, ru_inner, ru), (en_width, en_inner, en) = await asyncio.to_thread(narrow)
    assert ru_width <= ru_inner and en_width <= en_inner
    assert (ru, en) == ("Отправить через облако", "Send through the cloud")
