"""`GET /api/fiscal/receipt-state/{id}?account=<id>`: a receipt's state and result, for the page that queued it.

The vendor's form (intake.py) answers with the receipt's id, a random UUID (122 bits) that only its sender learns;
holding it is the permission, as with a link that cannot be guessed: no API secret or session is needed, so the
test page and the progress of a form submitted by a browser can follow it. The answer is the state, whether it is
final, the driver's result and the error: nothing of the account, its callbacks or the packet. An unknown id, a
wrong account or a malformed one are the same 404, and count against the asker's address in the limiter of forged
requests (as a forged form does), so that nobody can make the database look ids up at the rate of the network.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from .errors import not_found
from .http import client_address, json_response
from .ratelimit import Limiter
from .store import MAX_ID, Store, utcnow
from .views import timestamp

__all__ = ["STATE_PATH", "ReceiptState"]

STATE_PATH = "/api/fiscal/receipt-state/{receipt_id}"


class ReceiptState:
    def __init__(self, store: Store, failures: Limiter) -> None:
        self.store = store
        self.failures = failures

    async def handle(self, request: web.Request) -> web.Response:
        address = client_address(request)
        self.failures.refuse_if_blocked(f"forged:{address}")
        text, account = request.match_info["receipt_id"], request.query.get("account", "")
        try:
            receipt_uuid = uuid.UUID(text) if len(text) <= 36 else None
        except ValueError:
            receipt_uuid = None
        record = None
        if receipt_uuid is not None and account.isascii() and account.isdigit() and 0 < int(account) <= MAX_ID:
            record = await self.store.receipt(int(account), receipt_uuid)
        if record is None:
            self.failures.hit(f"forged:{address}")
            raise not_found("такого чека нет (проверьте номер чека и аккаунта)",
                            "there is no such receipt (check the receipt's and the account's ids)")
        return json_response({"id": str(record.uuid), "state": record.state.value, "final": record.state.final,
                              "result": record.result, "error": record.error, "checkedAt": timestamp(utcnow())},
                             headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
