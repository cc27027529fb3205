"""The JSON API v1: signed submits with Idempotency-Key, lookups by id and by order id, listing with filters and
cursors, the result's fiscal fields, sessions with CSRF, and every way a request can be refused."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from kktbridge.bitapi import CommandResult, dumps, encode_results, loads
from kktbridge.cloud.credentials import request_signature
from kktbridge.cloud.states import State
from kktbridge.examples import example_packet
from kktbridge.fiscal import DocumentKind, FiscalResult, ReceiptType

from .support import RECEIPT_TEXT, receipt_packet

RECEIPTS = "/api/v1/receipts"


def commands(price: str | None = None) -> list:
    """The 1.2 example receipt, or a one-line receipt at this price."""
    return json.loads(RECEIPT_TEXT if price is None else receipt_packet(price))


def a_register_result() -> list:
    """What the driver answers for the example receipt (docs/result-format.md), as the link will report it."""
    fiscal = FiscalResult(kind=DocumentKind.RECEIPT, fd_number=123, fiscal_sign="2918241905",
                          fn_number="9999078900012345", shift_number=5, datetime=datetime(2026, 11, 23, 19, 4, 5),
                          reg_number="0000000001012345", receipt_number=7, total=1100, receipt_type=ReceiptType.SALE)
    return loads(dumps(encode_results([CommandResult(name="2. Фискализируем чек", type="kktReceiptFiscalization",
                                                     ok=True, fiscal=fiscal)])))


async def test_the_1_2_example_through_the_json_api_and_the_same_request_again(cloud):
    status, receipt, headers = await cloud.api(cloud.a, "POST", RECEIPTS,
                                               {"order_id": "order-1", "kkt_token": cloud.a.token,
                                                "commands": commands(), "callback_url": "https://shop.example.ru/cb"},
                                               headers={"Idempotency-Key": "key-1"})
    assert status == 201 and receipt["state"] == "queued" and receipt["idempotency_key"] == "key-1"
    assert headers["Location"] == f"{RECEIPTS}/{receipt['id']}" and receipt["callbacks"]["webhook"].endswith("/cb")
    status, again, _ = await cloud.api(cloud.a, "POST", RECEIPTS,
                                       {"order_id": "order-1", "kkt_token": cloud.a.token.upper(),
                                        "commands": commands(), "callback_url": "https://shop.example.ru/cb"},
                                       headers={"Idempotency-Key": "key-1"})
    assert status == 200 and again["id"] == receipt["id"]
    for path in (f"{RECEIPTS}/{receipt['id']}", f"{RECEIPTS}/by-order/order-1"):
        status, found, _ = await cloud.api(cloud.a, "GET", path)
        assert status == 200 and found["id"] == receipt["id"] and found["payload"] is None


async def test_an_idempotency_key_or_order_id_reused_for_another_body_is_409_with_the_stored_hash(cloud):
    _, first, _ = await cloud.api(cloud.a, "POST", RECEIPTS, {"order_id": "o1", "kkt_token": cloud.a.token,
                                                              "commands": commands()}, headers={"Idempotency-Key": "k"})
    stored = await cloud.store.receipt(cloud.a.id, uuid.UUID(first["id"]))
    status, answer, _ = await cloud.api(cloud.a, "POST", RECEIPTS, {"order_id": "o2", "kkt_token": cloud.a.token,
                                                                    "commands": commands()},
                                        headers={"Idempotency-Key": "k"})
    assert status == 409 and answer["error"]["code"] == "idempotency_conflict"
    assert answer["stored_request_hash"] == stored.request_hash and answer["receipt_id"] == first["id"]
    status, answer, _ = await cloud.submit(cloud.a, "o1", commands("12.00"))
    assert status == 409 and answer["error"]["code"] == "order_conflict"


async def test_the_form_and_the_json_api_share_one_order_id_space(cloud):
    _, by_form, _ = await cloud.post_form(cloud.form(cloud.a, "shared"))
    status, by_api, _ = await cloud.submit(cloud.a, "shared")  # the same packet, through the other door
    assert status == 200 and by_api["id"] == by_form["receipt"]["id"]


async def test_bad_bodies_are_refused_naming_each_field(cloud):
    bad_price = commands("1.005")
    status, answer, _ = await cloud.submit(cloud.a, "o", bad_price)
    assert status == 400 and answer["error"]["code"] == "bad_packet"
    assert [f["path"] for f in answer["error"]["fields"]] == ["commands[0].data.purchases[0].price_1079",
                                                             "commands[0].data.payments.cash_1031"]
    card = json.loads(example_packet())
    status, answer, _ = await cloud.submit(cloud.a, "o", card)
    assert status == 400 and answer["error"]["fields"][0] == {**answer["error"]["fields"][0],
                                                              "path": "commands[0].type", "code": "card_in_cloud"}
    cases = {
        "no body": (None, "body"),
        "not an object": ([1, 2], "body"),
        "an unknown field": ({"order_id": "o", "kkt_token": cloud.a.token, "commands": [], "extra": 1}, "extra"),
        "no order id": ({"kkt_token": cloud.a.token, "commands": commands()}, "order_id"),
        "a token that is a number": ({"order_id": "o", "kkt_token": 5, "commands": commands()}, "kkt_token"),
        "another account's token": ({"order_id": "o", "kkt_token": cloud.b.token, "commands": commands()},
                                    "kkt_token"),
        "a bank terminal's token": ({"order_id": "o", "kkt_token": cloud.a.terminal_token, "commands": commands()},
                                    "kkt_token"),
        "no commands": ({"order_id": "o", "kkt_token": cloud.a.token}, "commands"),
        "an empty command list": ({"order_id": "o", "kkt_token": cloud.a.token, "commands": []}, "commands"),
        "a callback that is not a URL": ({"order_id": "o", "kkt_token": cloud.a.token, "commands": commands(),
                                          "callback_url": "javascript:alert(1)"}, "callback_url"),
    }
    for name, (body, path) in cases.items():
        raw = b"" if body is None else None
        status, answer, _ = await cloud.api(cloud.a, "POST", RECEIPTS, body, raw=raw)
        assert status == 400 and path in [f["path"] for f in answer["error"]["fields"]], (name, answer)
        assert answer["error"]["ru"] and answer["error"]["en"]
    status, answer, _ = await cloud.api(cloud.a, "POST", RECEIPTS, raw=b'{"order_id": NaN}')
    assert status == 400 and answer["error"]["fields"][0]["path"] == "body"
    status, answer, _ = await cloud.api(cloud.a, "POST", RECEIPTS, {"order_id": "o", "kkt_token": cloud.a.token,
                                                                    "commands": commands()},
                                        headers={"Idempotency-Key": "x" * 256})
    assert status == 400 and answer["error"]["fields"][0]["path"] == "headers.Idempotency-Key"
    assert await cloud.store.list_receipts(cloud.a.id) == []


async def test_signed_requests_forged_stale_replayed_or_tampered_are_refused(cloud):
    body = {"order_id": "o", "kkt_token": cloud.a.token, "commands": commands()}
    payload = json.dumps(body).encode()
    now = int(time.time())
    refused = {
        "the secret of another account": dict(secret=cloud.b.account.api_secret),
        "a timestamp ten minutes old": dict(timestamp=now - 600),
        "a timestamp from the future": dict(timestamp=now + 600),
        "no signature at all": dict(tenant=None),
    }
    for name, options in refused.items():
        tenant = options.pop("tenant", cloud.a)
        status, answer, _ = await cloud.api(tenant, "POST", RECEIPTS, body, **options)
        assert status == 401, (name, answer)
        assert answer["error"]["code"] in ("bad_signature", "stale_timestamp", "unauthorized")
        assert answer["error"]["fields"][0]["path"].startswith("headers.X-Kktbridge-")
    signature = request_signature(cloud.a.account.api_secret, "POST", RECEIPTS, str(now), payload)
    headers = {"X-Kktbridge-Account": str(cloud.a.id), "X-Kktbridge-Timestamp": str(now),
               "X-Kktbridge-Signature": f"sha256={signature}", "Content-Type": "application/json"}
    tampered = payload.replace(b'"o"', b'"p"')
    for path, data in ((RECEIPTS, tampered), (RECEIPTS + "?x=1", payload)):
        async with cloud.http.post(cloud.url + path, data=data, headers=headers) as response:
            assert response.status == 401 and (await response.json())["error"]["code"] == "bad_signature"
    async with cloud.http.post(cloud.url + RECEIPTS, data=payload,
                               headers={**headers, "X-Kktbridge-Account": "999999"}) as response:
        assert response.status == 401
    for _ in range(2):  # a replay within the window changes nothing: the same receipt
        async with cloud.http.post(cloud.url + RECEIPTS, data=payload, headers=headers) as response:
            assert response.status in (200, 201)
    assert len(await cloud.store.list_receipts(cloud.a.id)) == 1


async def test_every_endpoint_keeps_accounts_apart(cloud):
    _, theirs, _ = await cloud.submit(cloud.b, "their-order")
    _, mine, _ = await cloud.submit(cloud.a, "my-order")
    b = cloud.b
    for path in (f"{RECEIPTS}/{theirs['id']}", f"{RECEIPTS}/{theirs['id']}?wait=1", f"{RECEIPTS}/by-order/their-order",
                 f"/api/v1/drivers/{b.driver.id}", f"/api/v1/devices/{b.register.id}",
                 f"/api/v1/devices/{b.terminal.id}"):
        status, answer, _ = await cloud.api(cloud.a, "GET", path)
        assert status == 404 and answer["error"]["code"] == "not_found", path
    listing = [
        (f"{RECEIPTS}", "items"), (f"{RECEIPTS}?device_id={b.register.id}", "items"),
        (f"{RECEIPTS}?driver_id={b.driver.id}", "items"), (f"{RECEIPTS}?order_id=their-order", "items"),
        ("/api/v1/drivers", "items"), ("/api/v1/devices", "items"),
    ]
    for path, key in listing:
        status, answer, _ = await cloud.api(cloud.a, "GET", path)
        assert status == 200, path
        assert all(item["account_id"] == cloud.a.id for item in answer[key]), path
    status, answer, _ = await cloud.api(cloud.a, "GET", RECEIPTS)
    assert [r["id"] for r in answer["items"]] == [mine["id"]]
    status, account, _ = await cloud.api(cloud.a, "GET", "/api/v1/account")
    assert account["id"] == cloud.a.id and set(account) == {"id", "name", "allowed_origins", "created_at"}
    status, answer, _ = await cloud.api(cloud.a, "POST", RECEIPTS, {"order_id": "x", "kkt_token": b.token,
                                                                    "commands": commands()})
    assert status == 400 and answer["error"]["fields"][0]["code"] == "unknown_token"  # B's register, A's key
    await cloud.add_users()
    session = await sign_in(cloud, cloud.a)
    status, answer, _ = await cloud.api(None, "GET", f"{RECEIPTS}/{theirs['id']}", cookies=session["cookies"])
    assert status == 404


async def test_listing_with_filters_and_cursor_pages(cloud):
    ids = []
    for i in range(7):
        _, receipt, _ = await cloud.submit(cloud.a, f"o{i}")
        ids.append(receipt["id"])
    await cloud.store.claim(cloud.a.driver.id, node="n", lease=timedelta(seconds=30), limit=2)
    seen, cursor = [], None
    while True:
        path = f"{RECEIPTS}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page, _ = await cloud.api(cloud.a, "GET", path)
        assert status == 200 and len(page["items"]) <= 3
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    _, delivered, _ = await cloud.api(cloud.a, "GET", f"{RECEIPTS}?state=delivered")
    assert [r["order_id"] for r in delivered["items"]] == ["o1", "o0"]
    _, both, _ = await cloud.api(cloud.a, "GET", f"{RECEIPTS}?state=queued,delivered&device_id={cloud.a.register.id}")
    assert len(both["items"]) == 7
    future = quote((datetime.now().astimezone() + timedelta(hours=1)).isoformat())
    _, none, _ = await cloud.api(cloud.a, "GET", f"{RECEIPTS}?created_from={future}")
    _, all_, _ = await cloud.api(cloud.a, "GET", f"{RECEIPTS}?created_to={future}&limit=200")
    assert none["items"] == [] and len(all_["items"]) == 7
    for query, name in (("limit=0", "limit"), ("limit=201", "limit"), ("state=lost", "state"),
                        ("created_from=yesterday", "created_from"), ("created_from=2026-01-01T00:00:00", "created_from"),
                        ("cursor=%21%21", "cursor"), ("cursor=-5", "cursor"), ("device_id=99999999999", "device_id")):
        status, answer, _ = await cloud.api(cloud.a, "GET", f"{RECEIPTS}?{query}")
        assert status == 400 and answer["error"]["fields"][0]["path"] == f"query.{name}", query
    for path, name in ((f"{RECEIPTS}/not-a-uuid", "receipt_id"), ("/api/v1/drivers/0", "driver_id"),
                       ("/api/v1/devices/abc", "device_id")):
        status, answer, _ = await cloud.api(cloud.a, "GET", path)
        assert status == 400 and answer["error"]["fields"][0]["path"] == f"path.{name}"


async def test_a_finished_receipt_carries_the_fiscal_fields_and_atol_onlines_names(cloud):
    _, receipt, _ = await cloud.submit(cloud.a, "o")
    waiting = asyncio.ensure_future(cloud.api(cloud.a, "GET", f"{RECEIPTS}/{receipt['id']}?wait=30"))
    (claimed,) = await cloud.store.claim(cloud.a.driver.id, node="n", lease=timedelta(seconds=30))
    await cloud.store.finish(claimed.uuid, State.DONE, driver_id=cloud.a.driver.id, result=a_register_result())
    status, done, _ = await asyncio.wait_for(waiting, 20)
    assert status == 200 and done["state"] == "done" and done["status"] == "done" and done["finished_at"]
    (command,) = done["result"]
    assert command["fdNumber_1040"] == 123 and command["total_1020"] == 11.0 and command["qr"].startswith("t=")
    assert done["payload"] == {
        "fiscal_receipt_number": 7, "shift_number": 5, "receipt_datetime": "23.11.2026 19:04:05", "total": 11.0,
        "fn_number": "9999078900012345", "ecr_registration_number": "0000000001012345",
        "fiscal_document_number": 123, "fiscal_document_attribute": 2918241905, "fns_site": "www.nalog.gov.ru",
        "ofd_inn": None, "ofd_receipt_url": None, "qr": command["qr"]}


async def sign_in(cloud, tenant, password: str | None = None) -> dict:
    status, session, headers = await cloud.api(None, "POST", "/api/v1/session",
                                               {"login": tenant.login, "password": password or tenant.password})
    assert status == 200, session
    cookie = headers["Set-Cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    return {"cookies": {"kktbridge_session": value}, "csrf": session["csrf_token"], "set_cookie": cookie,
            "session": session}


async def test_sessions_sign_in_csrf_sign_out_and_revocation(cloud):
    await cloud.add_users()
    session = await sign_in(cloud, cloud.a)
    assert "HttpOnly" in session["set_cookie"] and "SameSite=Lax" in session["set_cookie"]
    assert session["session"]["account_id"] == cloud.a.id and session["session"]["login"] == cloud.a.login
    cookies, csrf = session["cookies"], session["csrf"]
    body = {"order_id": "by-hand", "kkt_token": cloud.a.token, "commands": commands()}
    status, answer, _ = await cloud.api(None, "POST", RECEIPTS, body, cookies=cookies)
    assert status == 403 and answer["error"]["code"] == "csrf"
    status, answer, _ = await cloud.api(None, "POST", RECEIPTS, body, cookies=cookies,
                                        headers={"X-CSRF-Token": "forged"})
    assert status == 403
    status, answer, _ = await cloud.api(None, "POST", RECEIPTS, body, cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert status == 201
    status, current, _ = await cloud.api(None, "GET", "/api/v1/session", cookies=cookies)
    assert status == 200 and current["csrf_token"] == csrf
    status, answer, _ = await cloud.api(None, "DELETE", "/api/v1/session", cookies=cookies,
                                        headers={"X-CSRF-Token": csrf})
    assert status == 200 and answer == {"signed_out": True}
    status, answer, _ = await cloud.api(None, "GET", RECEIPTS, cookies=cookies)
    assert status == 401 and answer["error"]["code"] == "session_expired"
    again = await sign_in(cloud, cloud.a)
    user = await cloud.store.user_by_login(cloud.a.login)
    assert await cloud.store.delete_user_sessions(user.id) == 1  # revoked by the operator
    assert (await cloud.api(None, "GET", RECEIPTS, cookies=again["cookies"]))[0] == 401


@pytest.mark.parametrize("cloud_options", [{"login_limit": "3/minute"}])
async def test_wrong_passwords_are_refused_alike_and_a_guesser_is_slowed(cloud):
    await cloud.add_users()
    for login, password in ((cloud.a.login, "wrong"), ("nobody@example.ru", cloud.a.password),
                            (cloud.a.login, cloud.b.password)):
        status, answer, _ = await cloud.api(None, "POST", "/api/v1/session", {"login": login, "password": password})
        assert status == 401 and answer["error"]["code"] == "bad_credentials" and "Set-Cookie" not in answer
    status, answer, headers = await cloud.api(None, "POST", "/api/v1/session",
                                              {"login": cloud.a.login, "password": cloud.a.password})
    assert status == 429 and int(headers["Retry-After"]) >= 1  # even the right password, until the window passes
    status, answer, _ = await cloud.api(None, "POST", "/api/v1/session", {"login": cloud.a.login})
    assert status == 400 and answer["error"]["fields"][0]["path"] == "password"


@pytest.mark.parametrize("cloud_options", [{"rate_limit": "4/minute"}])
async def test_a_flooding_client_gets_429_with_retry_after(cloud):
    statuses = [(await cloud.api(cloud.a, "GET", RECEIPTS))[0] for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    status, answer, headers = await cloud.api(cloud.a, "GET", "/api/v1/account")
    assert status == 429 and answer["error"]["retryable"] and 1 <= int(headers["Retry-After"]) <= 60
    assert (await cloud.api(cloud.b, "GET", RECEIPTS))[0] == 200


async def test_the_openapi_document_is_served_and_unknown_routes_answer_json(cloud):
    async with cloud.http.get(cloud.url + "/api/v1/openapi.json") as response:
        document = await response.json()
    assert document["openapi"] == "3.1.0" and f"{RECEIPTS}/{{receipt_id}}" in document["paths"]
    for method, path, status in (("GET", "/api/v1/nothing", 404), ("PUT", RECEIPTS, 405)):
        code, answer, _ = await cloud.api(cloud.a, method, path)
        assert code == status and answer["error"]["code"] in ("not_found", "method_not_allowed")
    huge = {"order_id": "o", "kkt_token": cloud.a.token, "commands": [{"type": "kktXReport", "name": "x" * 2**21}]}
    code, answer, _ = await cloud.api(cloud.a, "POST", RECEIPTS, huge)
    assert code == 413 and answer["error"]["code"] == "too_large" and "1024 KiB" in answer["error"]["en"]


@pytest.mark.parametrize("cloud_options", [{"expire_after": timedelta(seconds=1), "sweep_every": 0.05}])
async def test_a_receipt_whose_driver_never_comes_back_expires_and_is_reported_failed(cloud):
    _, receipt, _ = await cloud.submit(cloud.a, "weekend")
    for _ in range(400):
        status, found, _ = await cloud.api(cloud.a, "GET", f"{RECEIPTS}/{receipt['id']}")
        if found["state"] != "queued":
            break
        await asyncio.sleep(0.05)
    assert found["state"] == "expired" and found["status"] == "fail" and found["finished_at"]
    assert found["error"]["code"] == "expired" and "driver" in found["error"]["en"]
    assert await cloud.store.claim(cloud.a.driver.id, node="late", lease=timedelta(seconds=30)) == []
