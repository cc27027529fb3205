"""Courier mode (issue 13 item 4): a signed-in user queues a packet for one of the account's registers by its id.
Over HTTP against the in-process service: the refusals (no session, no CSRF token, a signature instead of a
session, a foreign or unknown device, a bank terminal, bad fields); through real processes: a courier receipt
reaches a linked driver with an ATOL emulator and ends done with its FD number, one document on the register."""

from __future__ import annotations

import json

from kktbridge.cloud.store import Store

from .support import Shop, Tenant, receipt_packet
from .test_link import Rig, receipts_in, wait_done

PATH = "/api/v1/courier/receipts"


async def with_user(rig: Rig) -> Rig:
    """A cabinet user for the rig's account (the cloud runs in its own process; the user goes into its database)."""
    store = await Store.open(rig.db)
    try:
        await rig.tenant.add_user(store)
    finally:
        await store.close()
    return rig


async def sign_in(shop: Shop, tenant: Tenant) -> tuple[dict[str, str], dict[str, str]]:
    """(cookies, headers with the CSRF token) of a new session of the tenant's user."""
    status, body, headers = await shop.api(None, "POST", "/api/v1/session",
                                           {"login": tenant.login, "password": tenant.password})
    assert status == 200, body
    cookie = headers.getall("Set-Cookie")[0].split(";")[0]
    name, value = cookie.split("=", 1)
    return {name: value}, {"X-CSRF-Token": body["csrf_token"]}


async def courier(shop: Shop, session, body, *, csrf: bool = True):
    cookies, headers = session
    return await shop.api(None, "POST", PATH, body, cookies=cookies, headers=headers if csrf else {})


async def test_courier_refusals_name_the_field_and_find_nothing_of_another_account(cloud):
    shop = cloud
    await shop.add_users()
    session = await sign_in(shop, shop.a)
    packet = json.loads(receipt_packet())
    good = {"device_id": shop.a.register.id, "commands": packet}

    status, body, _ = await shop.api(None, "POST", PATH, good)
    assert status == 401, body
    status, body, _ = await courier(shop, session, good, csrf=False)
    assert status == 403 and body["error"]["code"] == "csrf", body
    status, body, _ = await shop.api(shop.a, "POST", PATH, good)  # the API key is not a signed-in user
    assert status == 403 and body["error"]["code"] == "session_required", body

    for bad, path, code in (
            ({"device_id": shop.b.register.id, "commands": packet}, "device_id", "unknown_device"),
            ({"device_id": 2**31 - 1, "commands": packet}, "device_id", "unknown_device"),
            ({"device_id": "1", "commands": packet}, "device_id", "required"),
            ({"device_id": True, "commands": packet}, "device_id", "required"),
            ({"device_id": shop.a.terminal.id, "commands": packet}, "device_id", "not_a_register"),
            ({"device_id": shop.a.register.id}, "commands", "required"),
            ({**good, "order_id": 5}, "order_id", "type"),
            ({**good, "order_id": "x" * 129}, "order_id", None),
            ({**good, "kkt_token": shop.a.token}, "kkt_token", "unknown_field"),
            ({"device_id": shop.a.register.id, "commands": [{"type": "bnkPayment", "data": {}}]},
             "commands[0].type", None)):
        status, body, _ = await courier(shop, session, bad)
        assert status == 400, (bad, body)
        fields = {f["path"]: f["code"] for f in body["error"]["fields"]}
        assert path in fields and (code is None or fields[path] == code), (bad, fields)
        assert all(f["ru"] and f["en"] for f in body["error"]["fields"])

    status, body, headers = await courier(shop, session, {**good, "order_id": "курьер-1"})
    assert status == 201, body
    assert body["source"] == "courier" and body["state"] == "queued" and body["device"]["id"] == shop.a.register.id
    assert headers["Location"] == f"/api/v1/receipts/{body['id']}"
    again_status, again, _ = await courier(shop, session, {**good, "order_id": "курьер-1"})
    assert again_status == 200 and again["id"] == body["id"]  # the same request again: the same receipt
    status, conflict, _ = await courier(shop, session, {**good, "order_id": "курьер-1",
                                                        "commands": json.loads(receipt_packet("12.00"))})
    assert status == 409 and conflict["error"]["code"] == "order_conflict", conflict
    status, fresh, _ = await courier(shop, session, good)  # no order id: a new one each time
    assert status == 201 and fresh["order_id"].startswith("courier-") and fresh["id"] != body["id"]
    status, seen, _ = await shop.api(shop.b, "GET", f"/api/v1/receipts/{body['id']}")
    assert status == 404, seen  # another account's receipt


async def test_a_courier_receipt_reaches_the_linked_register_and_ends_done_with_its_fd(tmp_path, emulator_process):
    rig = await Rig(tmp_path, emulator_process).start()
    try:
        await with_user(rig)
        session = await sign_in(rig.shop, rig.tenant)
        status, body, _ = await courier(rig.shop, session, {"device_id": rig.tenant.register.id,
                                                             "commands": json.loads(receipt_packet("25.50"))})
        assert status == 201, body
        done = await wait_done(rig.shop, rig.tenant, body["id"])
        assert done["state"] == "done" and done["source"] == "courier", done
        receipts = receipts_in(rig.journal)
        assert len(receipts) == 1
        assert done["result"][0]["fdNumber_1040"] == receipts[0]["fd"]
        assert done["payload"]["fiscal_document_attribute"]
    finally:
        await rig.close()
