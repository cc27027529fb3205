"""The cabinet over HTTP, against the in-process service on SQLite and PostgreSQL: every route needs a session,
every change needs the CSRF token, another account's ids find nothing, bad input is answered with field errors in
both languages, and nothing answers 500. The browser flows are in test_cabinet_browser.py."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from kktbridge.cloud.credentials import digest

from .support import Shop, receipt_packet

GET_PAGES = ["/cabinet/devices", "/cabinet/settings", "/cabinet/receipts", "/cabinet/courier",
             "/cabinet/receipts/00000000-0000-0000-0000-000000000000"]
POSTS = ["/cabinet/sign-out", "/cabinet/drivers", "/cabinet/drivers/1/key", "/cabinet/devices",
         "/cabinet/devices/1/token", "/cabinet/settings/origins", "/cabinet/settings/integrity-code",
         "/cabinet/settings/webhook-secret"]


@pytest.fixture
def cloud_options() -> dict:
    return {"login_limit": "4/minute"}


class Browser:
    """A cookie-keeping HTTP client that reads the pages' CSRF tokens, as a browser's user would post forms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **kw) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.url + path, allow_redirects=False, **kw) as response:
            text = await response.text()
        found = re.search(r'<meta name="csrf-token" content="([^"]*)"', text)
        if found and found.group(1):
            self.csrf = found.group(1)
        return response.status, text, response

    async def post(self, path: str, fields: dict[str, str], *, csrf: bool = True):
        data = {**fields, **({"csrf_token": self.csrf} if csrf else {})}
        async with self.http.post(self.url + path, data=data, allow_redirects=False) as response:
            return response.status, await response.text(), response

    async def sign_in(self, login: str, password: str) -> tuple[int, str, aiohttp.ClientResponse]:
        status, text, _ = await self.get("/cabinet/sign-in")
        assert status == 200, text
        token = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
        async with self.http.post(self.url + "/cabinet/sign-in", allow_redirects=False,
                                  data={"login": login, "password": password, "csrf_token": token}) as response:
            answer = response.status, await response.text(), response
        if answer[0] == 303:
            await self.get("/cabinet/devices")  # its CSRF token
        return answer


@pytest.fixture
async def signed(cloud):
    shop: Shop = cloud
    await shop.add_users()
    browser = Browser(shop.url)
    status, text, response = await browser.sign_in(shop.a.login, shop.a.password)
    assert status == 303 and response.headers["Location"] == "/cabinet/devices", text
    yield shop, browser
    await browser.close()


def shown_secret(text: str) -> str:
    return re.search(r'id="shown-secret">([^<]+)<', text).group(1)


def errors_of(text: str) -> dict[str, str]:
    return dict(re.findall(r'<li data-field="([^"]+)"><code>[^<]*</code>: <span lang="ru">([^<]*)</span>', text))


async def test_every_page_needs_a_session_and_every_change_a_csrf_token(cloud):
    shop: Shop = cloud
    browser = Browser(shop.url)
    try:
        for path in ["/cabinet", *GET_PAGES]:
            status, _, response = await browser.get(path)
            assert status == 303 and response.headers["Location"] == "/cabinet/sign-in", path
        status, text, _ = await browser.get("/cabinet/state.json")
        assert status == 401 and json.loads(text)["error"]["code"] == "sign_in"
        for path in POSTS:
            status, _, response = await browser.post(path, {})
            assert status == 303 and response.headers["Location"] == "/cabinet/sign-in", path
        # a signed API request is no cabinet user
        status, _, _ = await browser.get("/cabinet/devices", headers={"X-Kktbridge-Account": str(shop.a.id)})
        assert status == 303
        await shop.add_users()
        status, text, _ = await browser.sign_in(shop.a.login, shop.a.password)
        assert status == 303, text
        for path in POSTS:
            status, text, _ = await browser.post(path, {"name": "x", "origins": "https://a.ru"}, csrf=False)
            assert status == 403 and 'id="refused"' in text and "csrf" in text, (path, status)
        status, text, _ = await browser.get("/cabinet/devices")
        assert status == 200 and "Content-Security-Policy" in _.headers
        policy = _.headers["Content-Security-Policy"]
        assert "form-action 'self'" in policy and "script-src 'self';" in policy and "default-src 'none'" in policy
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", text)  # no inline event handler
        assert not re.search(r"<script(?![^>]*\ssrc=)", text)  # no inline script
    finally:
        await browser.close()


async def test_sign_in_refuses_a_wrong_password_in_both_languages_then_throttles_and_signs_out(cloud):
    shop: Shop = cloud
    await shop.add_users()
    browser = Browser(shop.url)
    try:
        async with browser.http.post(shop.url + "/cabinet/sign-in", allow_redirects=False,
                                     data={"login": shop.a.login, "password": shop.a.password,
                                           "csrf_token": "forged"}) as response:
            assert response.status == 403 and "csrf_token" in await response.text()
        status, text, _ = await browser.sign_in(shop.a.login, "wrong")
        assert status == 401 and "неверный логин или пароль" in text and "wrong login or password" in text
        assert shop.a.password not in text
        status, text, _ = await browser.sign_in("", "")
        assert status == 400 and set(errors_of(text)) == {"login", "password"}
        statuses = [(await browser.sign_in(shop.a.login, "wrong"))[0] for _ in range(4)]
        assert 429 in statuses, statuses  # throttled like the API: 4 a minute in this module
        other = Browser(shop.url)  # another login from the same address is throttled as well (per address)
        try:
            status, _, _ = await other.sign_in(shop.b.login, shop.b.password)
            assert status == 429
        finally:
            await other.close()
    finally:
        await browser.close()


async def test_sign_out_ends_the_session(signed):
    shop, browser = signed
    status, _, response = await browser.post("/cabinet/sign-out", {})
    assert status == 303 and response.headers["Location"] == "/cabinet/sign-in"
    status, _, _ = await browser.get("/cabinet/devices")
    assert status == 303


async def test_drivers_and_devices_added_and_rotated_with_secrets_shown_once(signed):
    shop, browser = signed
    status, text, _ = await browser.get("/cabinet/devices")
    assert status == 200 and shop.a.register.name in text and shop.b.register.name not in text
    assert f'data-cell="device-{shop.a.register.id}-shift"' in text

    status, text, _ = await browser.post("/cabinet/drivers", {"name": ""})
    assert status == 400 and "name" in errors_of(text)
    status, text, _ = await browser.post("/cabinet/drivers", {"name": "Второй ПК"})
    assert status == 201, text
    key = shown_secret(text)
    driver = await shop.store.driver_by_key(digest(key))
    assert driver is not None and driver.account_id == shop.a.id and driver.name == "Второй ПК"
    status, text, _ = await browser.get("/cabinet/devices")
    assert key not in text  # shown once

    for fields, path in (({"driver_id": str(shop.b.driver.id), "kind": "atol"}, "driver_id"),
                         ({"driver_id": "x" * 50, "kind": "atol"}, "driver_id"),
                         ({"driver_id": str(driver.id), "kind": "lamp"}, "kind"),
                         ({"driver_id": str(driver.id), "kind": "atol", "token": "zz"}, "token"),
                         ({"driver_id": str(driver.id), "kind": "atol", "token": shop.a.token}, "token"),
                         ({"driver_id": str(driver.id), "kind": "atol", "name": "x" * 300}, "name")):
        status, text, _ = await browser.post("/cabinet/devices", fields)
        assert status == 400 and path in errors_of(text), (fields, errors_of(text))
    status, text, _ = await browser.post("/cabinet/devices", {"driver_id": str(driver.id), "kind": "atol",
                                                              "name": "Касса 2"})
    assert status == 201, text
    token = shown_secret(text)
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    status, body, _ = await shop.submit(shop.a, "after-add", kkt_token=token)
    assert status == 201, body

    device = next(d for d in await shop.store.devices(shop.a.id) if d.name == "Касса 2")
    status, text, _ = await browser.post(f"/cabinet/devices/{device.id}/token", {})
    assert status == 200, text
    new_token = shown_secret(text)
    assert new_token != token
    status, body, _ = await shop.submit(shop.a, "old-token", kkt_token=token)
    assert status == 400 and body["error"]["fields"][0]["code"] == "unknown_token", body
    status, body, _ = await shop.submit(shop.a, "new-token", kkt_token=new_token)
    assert status == 201, body

    status, text, _ = await browser.post(f"/cabinet/drivers/{driver.id}/key", {})
    assert status == 200
    assert await shop.store.driver_by_key(digest(key)) is None
    assert (await shop.store.driver_by_key(digest(shown_secret(text)))).id == driver.id

    for path in (f"/cabinet/devices/{shop.b.register.id}/token", f"/cabinet/drivers/{shop.b.driver.id}/key",
                 "/cabinet/devices/99999999999/token", "/cabinet/drivers/0/key"):
        status, text, _ = await browser.post(path, {})
        assert status == 404 and 'id="not-found"' in text, path
    assert (await shop.store.driver_by_key(digest(shop.b.driver_key))).id == shop.b.driver.id

    status, text, _ = await browser.get("/cabinet/state.json")
    cells = json.loads(text)["cells"]
    assert cells[f"driver-{shop.a.driver.id}-online"] == {"ru": "не на связи", "en": "offline", "cls": "bad"}
    assert f"device-{device.id}-shift" in cells and not any(f"device-{shop.b.register.id}-" in k for k in cells)


async def test_origins_are_validated_saved_and_announced_and_secrets_rotate(signed):
    shop, browser = signed
    changed: list[int] = []

    async def listener(account_id: int) -> None:
        changed.append(account_id)

    shop.store.on_account_changed(listener)
    status, text, _ = await browser.post("/cabinet/settings/origins",
                                         {"origins": "https://shop.ru\nftp://x.ru\nhttps://a.ru/path\nhttp://h:99999"})
    assert status == 400, text
    assert set(errors_of(text)) == {"origins[1]", "origins[2]", "origins[3]"}
    assert "ftp://x.ru" in text  # the text is kept for correction
    status, _, _ = await browser.post("/cabinet/settings/origins", {"origins": "x" * 5000})
    assert status == 400
    status, text, _ = await browser.post("/cabinet/settings/origins",
                                         {"origins": "HTTPS://Shop.RU/\nhttp://127.0.0.1:8080, https://shop.ru"})
    assert status == 200 and 'id="saved"' in text
    account = await shop.store.account(shop.a.id)
    assert account.allowed_origins == ("https://shop.ru", "http://127.0.0.1:8080")
    assert changed == [shop.a.id]
    assert (await shop.store.account(shop.b.id)).allowed_origins == ()

    before = await shop.store.account(shop.a.id)
    await browser.post("/cabinet/settings/integrity-code", {})
    await browser.post("/cabinet/settings/webhook-secret", {})
    after = await shop.store.account(shop.a.id)
    assert after.integrity_code != before.integrity_code and after.webhook_secret != before.webhook_secret
    other = await shop.store.account(shop.b.id)
    assert other.integrity_code == shop.b.account.integrity_code
    status, text, _ = await browser.get("/cabinet/settings")
    assert after.integrity_code in text and shop.b.account.integrity_code not in text


async def test_receipts_list_filters_and_detail_are_scoped_to_the_account(signed):
    shop, browser = signed
    ids = []
    for n in range(3):
        status, body, _ = await shop.submit(shop.a, f"A-{n}", json.loads(receipt_packet()))
        assert status == 201, body
        ids.append(body["id"])
    status, foreign, _ = await shop.submit(shop.b, "B-0", json.loads(receipt_packet()))
    assert status == 201

    status, text, _ = await browser.get("/cabinet/receipts")
    assert status == 200 and all(i in text for i in ids) and foreign["id"] not in text
    status, text, _ = await browser.get("/cabinet/receipts?state=queued&device=" + str(shop.a.register.id))
    assert status == 200 and all(i in text for i in ids)
    status, text, _ = await browser.get("/cabinet/receipts?state=done")
    assert status == 200 and not any(i in text for i in ids)
    status, text, _ = await browser.get(f"/cabinet/receipts?device={shop.b.register.id}")
    assert status == 200 and foreign["id"] not in text
    status, text, _ = await browser.get("/cabinet/receipts?from=2000-01-01&to=2999-12-31")
    assert status == 200 and all(i in text for i in ids)
    status, text, _ = await browser.get("/cabinet/receipts?from=2999-01-01")
    assert status == 200 and not any(i in text for i in ids)
    status, text, _ = await browser.get("/cabinet/receipts?state=nope&device=x&from=13-13&to=2026-02-30&before=-1")
    assert status == 400 and set(errors_of(text)) == {"state", "device", "from", "to", "before"}

    status, text, _ = await browser.get(f"/cabinet/receipts/{ids[0]}")
    assert status == 200 and "A-0" in text and 'data-receipt="' + ids[0] in text and 'id="history"' in text
    for path in (f"/cabinet/receipts/{foreign['id']}", "/cabinet/receipts/not-a-uuid"):
        status, text, _ = await browser.get(path)
        assert status == 404 and 'id="not-found"' in text

    status, text, _ = await browser.get("/cabinet/courier")
    assert status == 200 and f'value="{shop.a.register.id}"' in text
    assert f'value="{shop.a.terminal.id}"' not in text  # a bank terminal takes no receipt


async def test_hostile_input_never_gets_a_500(signed):
    shop, browser = signed
    for path in ("/cabinet/devices/%00/token", "/cabinet/drivers/" + "9" * 40 + "/key"):
        status, _, _ = await browser.post(path, {})
        assert status in (404,), path
    status, _, _ = await browser.post("/cabinet/drivers", {"name": "\x00\x01"})
    assert status == 400
    async with browser.http.post(shop.url + "/cabinet/settings/origins", data=b"\xff\xfe" * 10,
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "X-CSRF-Token": browser.csrf}) as response:
        assert response.status < 500
    async with browser.http.post(shop.url + "/cabinet/drivers", data=b"x" * (2 * 1024 * 1024),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
        assert response.status == 413
    status, text, _ = await browser.get("/cabinet/receipts?" + "state=" + "x" * 3000)
    assert status == 400


async def test_the_live_state_shows_what_the_driver_reported(signed):
    shop, browser = signed
    await shop.store.linked(shop.a.driver.id, link="ws", node="node-1", version="9.9")
    await shop.store.report_status({
        shop.a.register.id: {"online": True, "shiftOpen": True, "shiftNumber": 12, "fnNumber": "9999078900012345",
                             "fnExpiry": "2027-05-01", "ofdUnsent": 3, "paper": False,
                             "error": {"code": "no_paper", "ru": "нет бумаги", "en": "out of paper"}},
        shop.b.register.id: {"online": True, "shiftOpen": False, "shiftNumber": 1}})
    status, text, _ = await browser.get("/cabinet/state.json")
    assert status == 200
    cells = json.loads(text)["cells"]
    device = f"device-{shop.a.register.id}"
    assert cells[f"driver-{shop.a.driver.id}-online"]["cls"] == "ok"
    assert cells[f"driver-{shop.a.driver.id}-version"]["ru"] == "9.9"
    assert cells[f"driver-{shop.a.driver.id}-node"]["ru"] == "node-1"
    assert cells[f"{device}-online"] == {"ru": "на связи", "en": "online", "cls": "ok"}
    assert cells[f"{device}-shift"] == {"ru": "открыта №12", "en": "open #12", "cls": "ok"}
    assert cells[f"{device}-fn"]["ru"] == "9999078900012345" and cells[f"{device}-fnExpiry"]["ru"] == "2027-05-01"
    assert cells[f"{device}-ofdUnsent"] == {"ru": "3", "en": "3", "cls": "warn"}
    assert cells[f"{device}-paper"]["cls"] == "bad" and cells[f"{device}-error"]["en"] == "out of paper"
    assert not any(k.startswith(f"device-{shop.b.register.id}-") for k in cells)
    status, text, _ = await browser.get("/cabinet/devices")  # the page renders the same cells
    assert 'data-cell="%s-shift" class="ok"><span lang="ru">открыта №12</span>' % device in text
    await shop.store.unlinked(shop.a.driver.id, node="node-1")
    cells = json.loads((await browser.get("/cabinet/state.json"))[1])["cells"]
    assert cells[f"{device}-online"]["en"] == "driver offline"


async def test_the_receipts_list_pages_by_fifty_newest_first(signed):
    shop, browser = signed
    orders = [f"P-{n:02d}" for n in range(52)]
    for order in orders:
        status, body, _ = await shop.submit(shop.a, order, json.loads(receipt_packet()))
        assert status == 201, body
    status, text, _ = await browser.get("/cabinet/receipts")
    first = re.findall(r"<td>(P-\d\d)</td>", text)
    assert status == 200 and first == orders[::-1][:50]
    older = re.search(r'id="older" href="([^"]+)"', text).group(1).replace("&amp;", "&")
    status, text, _ = await browser.get("/cabinet/receipts" + older)
    assert status == 200 and re.findall(r"<td>(P-\d\d)</td>", text) == ["P-01", "P-00"]
    assert 'id="older"' not in text


async def test_an_ended_session_is_forgotten_so_the_live_page_cannot_block_its_address(signed):
    """The devices page polls state.json every 3 s. Once its session ends (expired, or revoked by signing out in
    another tab), each poll with the dead cookie was a failed authentication against the address, and past the
    limit (30 a minute) the address (a shop's office, the shop's own server behind the same NAT) got 429 on every
    API call. The first refusal now deletes the cookie, so the polls after it are plain "sign in" answers."""
    shop, browser = signed
    session = next(c.value for c in browser.http.cookie_jar if c.key == "kktbridge_session")
    assert await shop.store.delete_session(digest(session))
    for _ in range(40):
        status, text, _ = await browser.get("/cabinet/state.json")
        assert status == 401 and json.loads(text)["error"]["code"] == "sign_in", text
    assert "kktbridge_session" not in {c.key for c in browser.http.cookie_jar}
    status, _, response = await browser.get("/cabinet/devices")
    assert status == 303 and response.headers["Location"] == "/cabinet/sign-in"
    status, answer, _ = await shop.api(shop.a, "GET", "/api/v1/account")  # the same address, signed
    assert status == 200 and answer["id"] == shop.a.id


async def test_a_rotated_driver_key_ends_the_link_made_with_it(signed):
    """Rotating a key is how a leaked one is revoked: the link made with it must end, and receive no receipt."""
    from kktbridge.cloud.link import LINK_PATH

    shop, browser = signed
    a = shop.a
    async with shop.http.ws_connect(shop.url + LINK_PATH, headers={"Authorization": f"Bearer {a.driver_key}"}) as ws:
        await ws.send_json({"type": "hello", "version": "test", "devices": [{"tokenHash": digest(a.token)}]})
        while json.loads((await ws.receive(timeout=5)).data)["type"] != "welcome":
            pass
        status, _, _ = await browser.post(f"/cabinet/drivers/{a.driver.id}/key", {})
        assert status == 200
        status, body, _ = await shop.submit(a, "after-rotation")
        assert status == 201, body
        got = []
        try:
            while True:
                message = await ws.receive(timeout=2)
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                got.append(json.loads(message.data)["type"])
        except asyncio.TimeoutError:
            got.append("still open")
        assert "receipt" not in got and "still open" not in got, got
