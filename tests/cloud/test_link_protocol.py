"""The link's protocol spoken by a bare client against a real cloud listener: who may link, what each message does,
and what a hostile or broken client gets (a refusal naming the problem, never a crash or another driver's receipt).
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest

from kktbridge.cloud.link import LINK_PATH, POLL_PATH

from .support import Shop


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def receive(ws, kind: str, timeout: float = 5) -> dict:
    """The next message of this type (others, like origins, are skipped)."""
    while True:
        message = await ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        if data["type"] == kind:
            return data


@pytest.fixture
def cloud_options() -> dict:
    return {"heartbeat": 0.2, "lease": 1.0}


async def test_a_driver_needs_its_key(cloud: Shop):
    for headers in ({}, {"Authorization": "Bearer kkd_wrong"}, {"Authorization": f"Basic {cloud.a.driver_key}"}):
        async with cloud.http.get(cloud.url + LINK_PATH, headers={**headers, "Connection": "Upgrade",
                                                                  "Upgrade": "websocket"}) as response:
            body = await response.json()
            assert response.status == 401 and body["errorCode"] == "bad_driver_key", body
        async with cloud.http.post(cloud.url + POLL_PATH, json={"messages": []}, headers=headers) as response:
            assert response.status == 401
    assert cloud.a.driver_key not in "".join(cloud.answers)


async def test_the_protocol_from_hello_to_ack(cloud: Shop):
    shop, a = cloud, cloud.a
    async with shop.http.ws_connect(shop.url + LINK_PATH, headers={"Authorization": f"Bearer {a.driver_key}"}) as ws:
        await ws.send_str("not json")
        assert (await receive(ws, "error"))["code"] == "bad_message"
        await ws.send_json({"type": "status"})
        assert (await receive(ws, "error"))["code"] == "hello_first"
        await ws.send_json({"type": "hello", "version": "test", "devices": [
            {"tokenHash": token_hash(a.token)}, {"tokenHash": token_hash(shop.b.token)}, {"tokenHash": "x" * 64}]})
        welcome = await receive(ws, "welcome")
        assert welcome["devices"] == {token_hash(a.token): a.register.id}  # another account's device is not ours
        assert sorted(welcome["unknownDevices"]) == sorted([token_hash(shop.b.token), "x" * 64])
        origins = await receive(ws, "origins")
        assert origins["origins"] == []
        status, body, _ = await shop.submit(a, "order-1")
        assert status == 201, body
        delivery = await receive(ws, "receipt")
        assert delivery["id"] == body["id"] and delivery["orderId"] == f"cloud:{body['id']}"
        assert delivery["shopOrderId"] == "order-1" and delivery["device"] == token_hash(a.token)
        assert json.loads(delivery["packet"])[0]["type"] == "kktReceiptFiscalization"
        assert delivery["resend"] is False
        _, stored, _ = await shop.api(a, "GET", f"/api/v1/receipts/{body['id']}")
        assert stored["state"] == "delivered"
        await ws.send_json({"type": "status", "devices": [{"tokenHash": token_hash(a.token), "status": {
            "online": True, "shiftOpen": True, "shiftNumber": 3, "fnNumber": "9999078900012345", "fnExpiry": None,
            "ofdUnsent": 0, "paper": True, "error": None}}]})
        result = [{"name": "чек", "type": "kktReceiptFiscalization", "success": "OK", "fdNumber_1040": 7,
                   "fiscalSign_1077": "1234567890"}]
        await ws.send_json({"type": "result", "id": body["id"], "outcome": "done", "result": result, "error": None})
        assert await receive(ws, "ack") == {"type": "ack", "id": body["id"], "state": "done"}
        _, stored, _ = await shop.api(a, "GET", f"/api/v1/receipts/{body['id']}")
        assert stored["state"] == "done" and stored["payload"]["fiscal_document_number"] == 7
        await ws.send_json({"type": "result", "id": body["id"], "outcome": "failed", "result": None,
                            "error": {"code": "x", "ru": "x", "en": "x"}})
        assert (await receive(ws, "ack"))["state"] == "done"  # a final receipt stays as it is
        await ws.send_json({"type": "result", "id": "nope", "outcome": "done"})
        assert (await receive(ws, "error"))["code"] == "bad_result"
        await ws.send_json({"type": "launch"})
        assert (await receive(ws, "error"))["code"] == "bad_message"
    for _ in range(100):
        device = await shop.store.device(a.id, a.register.id)
        if device.status is not None:
            break
        await asyncio.sleep(0.05)
    assert device.status["shiftNumber"] == 3 and device.status_at is not None


async def test_a_driver_cannot_touch_another_drivers_receipt_and_a_huge_message_ends_only_its_link(cloud: Shop):
    shop, a, b = cloud, cloud.a, cloud.b
    status, body, _ = await shop.submit(b, "b-order")
    assert status == 201
    async with shop.http.ws_connect(shop.url + LINK_PATH, headers={"Authorization": f"Bearer {a.driver_key}"}) as ws:
        await ws.send_json({"type": "hello", "devices": [{"tokenHash": token_hash(a.token)}]})
        await receive(ws, "welcome")
        await ws.send_json({"type": "result", "id": body["id"], "outcome": "done", "result": []})
        assert (await receive(ws, "ack"))["state"] is None
        await ws.send_str("[" + "1," * (600 * 1024) + "1]")  # beyond the 1 MiB a message may hold
        closed = await ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    _, stored, _ = await shop.api(b, "GET", f"/api/v1/receipts/{body['id']}")
    assert stored["state"] == "queued"  # untouched by driver A
    async with shop.http.ws_connect(shop.url + LINK_PATH, headers={"Authorization": f"Bearer {b.driver_key}"}) as ws:
        await ws.send_json({"type": "hello", "devices": [{"tokenHash": token_hash(b.token)}]})
        assert (await receive(ws, "receipt"))["id"] == body["id"]  # the cloud still serves everyone


async def test_a_new_link_replaces_the_old_and_resends_what_is_in_doubt(cloud: Shop):
    shop, a = cloud, cloud.a
    headers = {"Authorization": f"Bearer {a.driver_key}"}
    hello = {"type": "hello", "devices": [{"tokenHash": token_hash(a.token)}]}
    first = await shop.http.ws_connect(shop.url + LINK_PATH, headers=headers)
    await first.send_json(hello)
    await receive(first, "welcome")
    _, body, _ = await shop.submit(a, "order-1")
    assert (await receive(first, "receipt"))["resend"] is False
    async with shop.http.ws_connect(shop.url + LINK_PATH, headers=headers) as second:
        closed = await first.receive(timeout=5)
        assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4000
        await second.send_json(hello)
        again = await receive(second, "receipt")
        assert again["id"] == body["id"] and again["resend"] is True  # delivered, not finished: in doubt
        await asyncio.sleep(1.5)  # beyond the 1 s lease: the new link on this node holds it and renews it
        _, stored, _ = await shop.api(a, "GET", f"/api/v1/receipts/{body['id']}")
        assert stored["state"] == "delivered"
        await second.send_json({"type": "result", "id": body["id"], "outcome": "done", "result": []})
        assert (await receive(second, "ack"))["state"] == "done"
    await first.close()


async def test_a_lease_runs_out_into_unknown_once_its_link_is_gone(cloud: Shop):
    shop, a = cloud, cloud.a
    headers = {"Authorization": f"Bearer {a.driver_key}"}
    async with shop.http.ws_connect(shop.url + LINK_PATH, headers=headers) as ws:
        await ws.send_json({"type": "hello", "devices": [{"tokenHash": token_hash(a.token)}]})
        _, body, _ = await shop.submit(a, "order-1")
        await receive(ws, "receipt")
    for _ in range(100):  # the 1 s lease, no longer renewed
        _, stored, _ = await shop.api(a, "GET", f"/api/v1/receipts/{body['id']}")
        if stored["state"] != "delivered":
            break
        await asyncio.sleep(0.05)
    assert stored["state"] == "unknown" and stored["status"] == "wait"
    driver = await shop.store.driver(a.id, a.driver.id)
    assert driver.link is None


async def test_the_long_poll_speaks_the_same_messages(cloud: Shop):
    shop, a = cloud, cloud.a
    headers = {"Authorization": f"Bearer {a.driver_key}"}

    async def poll(body: dict) -> dict:
        async with shop.http.post(shop.url + POLL_PATH, json=body, headers=headers) as response:
            assert response.status == 200
            return await response.json()

    answer = await poll({"messages": [], "wait": 0})
    assert answer["messages"] == [{"type": "rehello"}]  # no session yet
    answer = await poll({"messages": [{"type": "hello", "devices": [{"tokenHash": token_hash(a.token)}]}],
                         "wait": 0})
    session = answer["session"]
    assert [m["type"] for m in answer["messages"]][:2] == ["welcome", "origins"]
    ack = answer["messages"][-1]["seq"]
    held = asyncio.ensure_future(poll({"messages": [], "ack": ack, "session": session, "wait": 10}))
    await asyncio.sleep(0.2)
    _, body, _ = await shop.submit(a, "order-1")
    answer = await asyncio.wait_for(held, 5)  # answered as soon as there is something to say
    (delivery,) = answer["messages"]
    assert delivery["type"] == "receipt" and delivery["id"] == body["id"] and delivery["seq"] > ack
    again = await poll({"messages": [], "ack": ack, "session": session, "wait": 0})
    assert again["messages"] == answer["messages"]  # not acknowledged yet: given again
    answer = await poll({"messages": [{"type": "result", "id": body["id"], "outcome": "done", "result": []}],
                         "ack": delivery["seq"], "session": session, "wait": 0})
    assert [m["type"] for m in answer["messages"]] == ["ack"] and answer["messages"][0]["state"] == "done"
    async with shop.http.post(shop.url + POLL_PATH, data=b"{", headers=headers) as response:
        assert response.status == 400
