"""The cabinet's receipts: the list with filters, a receipt's detail, and the courier form (issue 14).

The rules of cabinet.py hold here (session, account scope, field errors, no 500). The detail shows each
command's result (fiscal fields: the keys with a tag suffix, `…_1040`; warnings; the QR code, drawn by
`web.qr`), the state history, and a callbacks section the page's script loads from
`GET /api/v1/receipts/{id}/callbacks`. The courier form posts through `POST /api/v1/courier/receipts`
(api.py): the cabinet holds no second way into the queue.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from aiohttp import web

from ..examples.presets import preset
from ..fiscal import FieldError
from ..web.qr import MAX_QR_TEXT, qr_svg
from .cabinet import Cabinet, CabinetUser, not_found_page
from .cabinet_html import cabinet_page, esc, field_errors, fragment, tr
from .states import State
from .views import receipt_view, timestamp

__all__ = ["PAGE", "CabinetReceipts"]

PAGE = 50
_TAGGED = re.compile(r"^[A-Za-z]+_\d{4}$")  # a fiscal field: name_tag


class CabinetReceipts:
    def __init__(self, cabinet: Cabinet) -> None:
        self.cabinet = cabinet
        self.store = cabinet.store

    def routes(self) -> list[web.RouteDef]:
        page = self.cabinet.page
        return [web.get("/cabinet/receipts", page(self.receipts)),
                web.get("/cabinet/receipts/{receipt_id}", page(self.receipt)),
                web.get("/cabinet/courier", page(self.courier))]

    async def receipts(self, request: web.Request, user: CabinetUser) -> web.Response:
        q = request.query
        errors: list[FieldError] = []
        state_text = q.get("state", "")
        states = []
        if state_text:
            try:
                states = [State(state_text)]
            except ValueError:
                errors.append(FieldError("state", "code", "нет такого состояния", "there is no such state"))
        device_id = _int(q.get("device", ""), "device", errors)
        before = _int(q.get("before", ""), "before", errors)
        day_from = _day(q.get("from", ""), "from", errors)
        day_to = _day(q.get("to", ""), "to", errors)
        devices = await self.store.devices(user.account_id)
        found = [] if errors else await self.store.list_receipts(
            user.account_id, states=states, device_id=device_id, before_id=before, limit=PAGE + 1,
            created_from=day_from, created_to=day_to + timedelta(days=1) if day_to else None)
        rows = "".join(_receipt_row(r) for r in found[:PAGE]) or \
            f'<tr><td colspan="7" class="muted">{tr("чеков нет", "no receipts")}</td></tr>'
        more = ""
        if len(found) > PAGE:
            query = {k: v for k, v in q.items() if k != "before" and k in ("state", "device", "from", "to")}
            query["before"] = str(found[PAGE - 1].id)
            more = f'<p><a id="older" href="?{esc(_urlencode(query))}">{tr("Раньше →", "Older →")}</a></p>'
        state_options = "".join(f'<option value="{s.value}"{" selected" if s.value == state_text else ""}>'
                                f'{s.value}</option>' for s in State)
        device_options = "".join(f'<option value="{d.id}"{" selected" if str(d.id) == q.get("device") else ""}>'
                                 f'{esc(d.name)}</option>' for d in devices)
        body = fragment("cabinet_receipts.html", state_options=state_options, device_options=device_options,
                        day_from=esc(q.get("from", "")), day_to=esc(q.get("to", "")), errors=field_errors(errors),
                        rows=rows, more=more)
        return cabinet_page("receipts", "Чеки", "Receipts", body, csrf=user.csrf, login=user.session.login,
                            status=400 if errors else 200)

    async def receipt(self, request: web.Request, user: CabinetUser) -> web.Response:
        try:
            receipt_uuid = uuid.UUID(request.match_info["receipt_id"])
        except ValueError:
            return not_found_page(user)
        record = await self.store.receipt(user.account_id, receipt_uuid)
        if record is None:
            return not_found_page(user)
        view = receipt_view(record)
        history = "".join(
            f"<tr><th>{tr(ru, en)}</th><td>{esc(value) if value is not None else '—'}</td></tr>"
            for ru, en, value in (("создан", "created", view["created_at"]),
                                  ("передан драйверу", "delivered", view["delivered_at"]),
                                  ("исход неизвестен", "unknown since", view["unknown_at"]),
                                  ("завершён", "finished", view["finished_at"]),
                                  ("истекает", "expires", view["expires_at"]),
                                  ("передач драйверу", "deliveries", record.deliveries)))
        error = ""
        if record.error:
            error = f'<p class="error-box"><code>{esc(record.error.get("code"))}</code>: ' \
                    f'{tr(str(record.error.get("ru", "")), str(record.error.get("en", "")))}</p>'
        results = "".join(_command(item) for item in record.result) if isinstance(record.result, list) else \
            f'<p class="muted">{tr("результата пока нет", "no result yet")}</p>'
        body = fragment("cabinet_receipt.html", id=esc(view["id"]), order_id=esc(record.order_id),
                        device=esc(record.device_name), source=esc(record.source), state=esc(record.state.value),
                        error=error, history=history, results=results)
        return cabinet_page("receipt", "Чек", "Receipt", body, csrf=user.csrf, login=user.session.login)

    async def courier(self, request: web.Request, user: CabinetUser) -> web.Response:
        registers = [d for d in await self.store.devices(user.account_id) if d.role == "kkt"]
        options = "".join(f'<option value="{d.id}">{esc(d.name)} (#{d.id})</option>' for d in registers)
        packet = preset("receipt").text  # exact digits (11.00); the page's script indents it as it is
        body = fragment("cabinet_courier.html", options=options, packet=esc(packet))
        return cabinet_page("courier", "Курьер", "Courier", body, csrf=user.csrf, login=user.session.login)


def _int(text: str, name: str, errors: list[FieldError]) -> int | None:
    if not text:
        return None
    if text.isascii() and text.isdigit() and len(text) <= 18 and 0 < int(text) < 2**63:
        return int(text)
    errors.append(FieldError(name, "format", "нужно целое число", "a whole number is expected"))
    return None


def _day(text: str, name: str, errors: list[FieldError]) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None or day.year < 2000 or day.year > 9000:
        errors.append(FieldError(name, "format", "дата ГГГГ-ММ-ДД", "a date YYYY-MM-DD"))
        return None
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _urlencode(query: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(query)


def _receipt_row(record) -> str:
    view = receipt_view(record)
    payload = view["payload"] or {}
    return (f'<tr><td><a href="/cabinet/receipts/{esc(view["id"])}">{esc(timestamp(record.created_at))}</a></td>'
            f'<td>{esc(record.order_id)}</td><td>{esc(record.device_name)}</td><td>{esc(record.source)}</td>'
            f'<td class="state-{esc(record.state.value)}">{esc(record.state.value)}</td>'
            f'<td>{esc(payload.get("fiscal_document_number") or "")}</td>'
            f'<td>{esc(payload.get("total") or "")}</td></tr>')


def _command(item: Any) -> str:
    if not isinstance(item, dict):
        return f"<pre>{esc(item)}</pre>"
    ok = "success" in item
    text = item.get("success") if ok else item.get("error")
    fiscal = "".join(f"<tr><th><code>{esc(k)}</code></th><td>{esc(v)}</td></tr>"
                     for k, v in item.items() if _TAGGED.match(k))
    warnings = "".join(f"<li><code>{esc(w.get('path'))}</code>: {tr(str(w.get('ru', '')), str(w.get('en', '')))}</li>"
                       for w in item.get("warnings") or () if isinstance(w, dict))
    qr = item.get("qr")
    qr_html = f'<div class="qr">{qr_svg(qr)}</div>' if isinstance(qr, str) and 0 < len(qr) <= MAX_QR_TEXT \
        else ""
    return (f'<article class="command"><h3>{esc(item.get("name"))} '
            f'<small class="muted">{esc(item.get("type"))}</small></h3>'
            f'<p class="{"ok" if ok else "bad"}">{esc(text)}</p>'
            f'{f"<div class=table-wrap><table class=fiscal>{fiscal}</table></div>" if fiscal else ""}'
            f'{f"<ul class=warnings>{warnings}</ul>" if warnings else ""}{qr_html}</article>')
