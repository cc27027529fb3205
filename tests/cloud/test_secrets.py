"""No secret ever leaves the cloud: not in an answer, an error text or its log, whatever the caller gets wrong.

A real cloud process logs with -v while a shop and an attacker use every door: good and forged forms (one of them
carrying the integrity code itself, as the vendor's 2025 demo page does), good and badly signed API calls, right
and wrong passwords, a session. Then its log and every answer are searched for each secret.
"""

from __future__ import annotations

import json

from .support import CloudProcess, Shop, make_tenant, receipt_packet


async def test_secrets_appear_in_no_answer_and_no_log_line(tmp_path):
    from kktbridge.cloud.store import Store

    db = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    store = await Store.open(db)
    tenants = [await make_tenant(store, name, user=True) for name in ("А", "Б")]
    await store.close()
    node = CloudProcess(db, "-v").start()
    shop = Shop(None, node.url, tenants)
    a, b = tenants
    try:
        await shop.post_form(shop.form(a, "good"))
        await shop.post_form(shop.form(a, "with-code") | {"BIT_DATAINTEGRITY_CODE": a.account.integrity_code})
        await shop.post_form(shop.form(a, "forged", code=b.account.integrity_code))
        await shop.post_form(shop.form(a, "bad", receipt_packet("1.005")))
        await shop.post_form(shop.form(a, "foreign", token=b.token))
        await shop.post_form(shop.form(a, "wrong-field") | {"BIT_SIGNATURE": a.account.integrity_code})
        await shop.submit(a, "api")
        await shop.api(a, "GET", "/api/v1/receipts", secret=b.account.api_secret)
        await shop.api(a, "GET", "/api/v1/receipts", headers={"X-Kktbridge-Signature": a.account.api_secret})
        await shop.api(None, "POST", "/api/v1/session", {"login": a.login, "password": b.password})
        await shop.api(None, "POST", "/api/v1/session", {"login": b.password, "password": a.password})
        status, session, headers = await shop.api(None, "POST", "/api/v1/session",
                                                  {"login": a.login, "password": a.password})
        assert status == 200
        cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        await shop.api(None, "GET", "/api/v1/receipts", cookies={"kktbridge_session": cookie})
        await shop.api(None, "POST", "/api/v1/receipts", {"order_id": "x"}, cookies={"kktbridge_session": cookie},
                       headers={"X-CSRF-Token": a.driver_key})
        await shop.api(None, "GET", "/api/v1/receipts", cookies={"kktbridge_session": a.driver_key})
    finally:
        await shop.close()
        log = node.stop()
    assert "refused" in log and "wrong signature" in log  # it does log the refusals, just not what was in them
    secrets = [s for t in tenants for s in t.secrets] + [cookie]
    answers = "\n".join(shop.answers)
    for secret in secrets:
        assert secret not in log, "a secret in the log"
        assert secret not in answers, "a secret in an answer"
    assert json.loads(shop.answers[0])["result"] is True and "Traceback" not in log
