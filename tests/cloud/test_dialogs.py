"""The vendor's browser dialogs over HTTP: the signed form gives a progress page, its status endpoint answers only
with the page's key, a finished receipt sends the browser on with the result; the payment dialog needs a linked
driver and puts the card payment first. Receipts are finished here with `store.finish` (as the link does); the
browser test (test_dialogs_browser.py) drives the pages themselves."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from kktbridge.cloud import State
from kktbridge.cloud.dialogs import DIALOG_PATHS

from .support import receipt_packet

RESULT = [{"name": "чек", "type": "kktReceiptFiscalization", "success": "OK", "fdNumber_1040": 9}]
SHOP = "https://shop.example.ru"
RECEIPT_1_1 = ('{"purchases": [{"productName_1030": "товар", "price_1079": 11.00, "qty_1023": 1, "tax_1199": 6}], '
               '"payments": {"ecash_1081": 11.00}, "receiptType_1054": 1, "taxationType_1055": 1}')


async def post_dialog(cloud, fields, path):
    async with cloud.http.post(cloud.url + path, data=fields) as response:
        return response.status, await response.text(), response.headers


def status_url(page: str) -> str:
    return re.search(r'data-status="([^"]+)"', page).group(1).replace("&amp;", "&")


async def status(cloud, url):
    async with cloud.http.get(cloud.url + url) as response:
        return response.status, await response.json()


async def test_the_receipt_dialog_queues_shows_progress_and_sends_the_browser_on(cloud):
    a = cloud.a
    fields = cloud.form(a, "dlg-1", receipt_packet(), success=SHOP + "/ok.php", failed=SHOP + "/failed.php")
    code, page, headers = await post_dialog(cloud, fields, DIALOG_PATHS["receipt"])
    assert code == 200 and "dlg-1" in page, page
    policy = headers["Content-Security-Policy"]
    assert f"form-action {SHOP}" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    record = await cloud.store.receipt_by_order(a.id, "dlg-1")
    assert record.state is State.QUEUED and record.source == "form"
    url = status_url(page)
    assert (await status(cloud, url))[1]["state"] == "queued"
    assert (await status(cloud, re.sub(r"k=\w+", "k=" + "0" * 32, url)))[0] == 403
    assert (await status(cloud, url.replace(f"/{a.id}/", f"/{cloud.b.id}/")))[0] == 403
    # the link's part, done here directly: the driver takes it and reports
    await cloud.store.claim(a.driver.id, node="test", lease=timedelta(minutes=1))
    await cloud.store.finish(record.uuid, State.DONE, driver_id=a.driver.id, result=RESULT)
    code, answer = await status(cloud, url)
    assert code == 200 and answer["final"] and answer["good"] and answer["action"] == SHOP + "/ok.php"
    assert answer["fields"]["result"] == "true" and json.loads(answer["fields"]["data"])[0]["fdNumber_1040"] == 9
    # the same form again is the same receipt, not a second one
    code, again, _ = await post_dialog(cloud, fields, DIALOG_PATHS["receipt"])
    assert code == 200 and str(record.uuid) in again


async def test_a_refused_dialog_is_a_page_that_names_the_field(cloud):
    fields = cloud.form(cloud.a, "dlg-2", receipt_packet(), code="wrong")
    code, page, headers = await post_dialog(cloud, fields, DIALOG_PATHS["receipt"])
    assert code == 403 and headers["Content-Type"].startswith("text/html") and "BIT_SIGNATURE" in page
    card = '[{"name": "1", "type": "bnkCardPayment", "data": {"sum": 11}}]'
    code, page, _ = await post_dialog(cloud, cloud.form(cloud.a, "dlg-3", card), DIALOG_PATHS["receipt"])
    assert code == 400 and "card_in_cloud" not in page and "BIT_DATA[0].type" in page


async def test_the_payment_dialog_needs_a_linked_driver_and_takes_the_card_first(cloud):
    a = cloud.a
    names = {"BIT_ORDER_ID": "BIT_TRANSACTION_ID", "BIT_DATA": "BIT_JSON"}
    fields = cloud.form(a, "pay-1", RECEIPT_1_1, encoding="raw", names=names, success=SHOP + "/ok.php",
                        failed=SHOP + "/failed.php")
    code, page, _ = await post_dialog(cloud, fields, DIALOG_PATHS["payment"])
    assert code == 403 and "BIT_ACCOUNT_ID" in page and await cloud.store.receipt_by_order(a.id, "pay-1") is None
    await cloud.store.linked(a.driver.id, link="ws", node="test", version="test")
    code, page, _ = await post_dialog(cloud, fields, DIALOG_PATHS["payment"])
    assert code == 200, page
    record = await cloud.store.receipt_by_order(a.id, "pay-1")
    card, receipt = json.loads(record.packet)
    assert record.source == "dialog" and card["type"] == "bnkCardPayment" and card["data"]["sum"] == 11
    assert receipt["type"] == "kktReceiptFiscalization"
    await cloud.store.claim(a.driver.id, node="test", lease=timedelta(minutes=1))
    error = {"code": "card_declined", "ru": "карта отклонена", "en": "card declined", "retryable": False}
    await cloud.store.finish(record.uuid, State.FAILED, driver_id=a.driver.id, error=error)
    code, answer = await status(cloud, status_url(page))
    assert answer["final"] and not answer["good"] and answer["action"] == SHOP + "/failed.php"
    assert answer["fields"]["result"] == "false" and json.loads(answer["fields"]["data"])["errorCode"] == "card_declined"
