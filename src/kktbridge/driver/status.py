"""What the driver shows about itself: devices with their live state, the journal's recent packets, what is in
doubt, and the cloud link; as JSON (`/status`) and as the status page (`/`), both for this computer only.

A device busy with a packet is not asked (the cashier's receipt comes first); its last known state is shown.
The page is rendered here alone, from `status_json`: its script (web/static/driver_status.js) asks `/status`
now and then and, when anything changed, takes the fresh sections from the page, so there is one renderer.
The cloud link adds its `"cloud"` key to `status_json` (driver/cloudlink); the page shows it when present.
"""

from __future__ import annotations

import asyncio
import html
from string import Template
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..bitapi import dumps, loads
from ..bitapi.results import ADJUSTED
from ..devices.base import FiscalRegister
from ..fiscal import BridgeError, kopecks_to_decimal
from ..web.qr import qr_svg

if TYPE_CHECKING:
    from .app import Driver

__all__ = ["status_json", "status_page"]

STATUS_TIMEOUT = 3.0
RECENT = 30  # packets on the page and in /status


async def _device(entry) -> dict[str, Any]:
    info: dict[str, Any] = {"name": entry.config.name, "kind": entry.config.kind, "role": entry.role,
                            "token": entry.token, "connection": entry.describe(), "connected": entry.connected,
                            "busy": entry.lock.locked()}
    if isinstance(entry.adapter, FiscalRegister) and not entry.lock.locked():
        async with entry.lock:
            try:
                await asyncio.wait_for(entry.ensure_connected(), STATUS_TIMEOUT)
                entry.last_status = await asyncio.wait_for(entry.adapter.status(), STATUS_TIMEOUT)
            except BridgeError as exc:
                entry.lost(exc)
            except asyncio.TimeoutError:
                entry.connected = False
                entry.last_error = BridgeError("link", "устройство не отвечает", "the device does not answer",
                                               retryable=True)
    info["connected"] = entry.connected
    info["status"] = entry.last_status.to_dict() if entry.last_status else None
    info["lastError"] = entry.last_error.to_dict() if entry.last_error else None
    return info


async def status_json(driver: "Driver") -> dict[str, Any]:
    devices = [await _device(entry) for entry in driver.registry.entries]
    interrupted = [{"id": p.id, "orderId": p.order_id, "receivedAt": p.received_at}
                   for p in driver.journal.interrupted()]
    in_doubt = [{"packetId": row.packet_id, "command": row.idx, "name": row.name, "type": row.type,
                 "device": row.device, "startedAt": row.started_at, "fdBefore": row.fd_before,
                 "reversal": row.reversal == "started", "orderId": _order_id(driver, row.packet_id),
                 "expected": _expected(row.expect)} for row in driver.journal.open_commands()]
    return {"version": __version__, "listen": driver.url,
            "allowedOrigins": list(driver.config.allowed_origins), "journal": str(driver.journal.path),
            "devices": devices, "interrupted": interrupted, "inDoubt": in_doubt, "recent": _recent(driver),
            "cloud": driver.cloud.describe() if driver.cloud is not None else None}


def _order_id(driver: "Driver", packet_id: int) -> str | None:
    packet = driver.journal.get(packet_id)
    return packet.order_id if packet is not None else None


def _expected(expect: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the driver looks for on the device to settle the command: a document's kind and total (kopecks), the
    drawer's change, or a card operation's amount and RRN."""
    if not expect:
        return None
    document = expect.get("document")
    if document:
        return {"document": document.get("kind"), "total": document.get("total")}
    return {key: value for key, value in expect.items() if key in ("cash", "amount", "rrn")}


def _recent(driver: "Driver", limit: int = RECENT) -> list[dict[str, Any]]:
    """The journal's last packets, newest first, each command with its device, outcome, warnings and QR."""
    names = {entry.token: entry.config.name for entry in driver.registry.entries}
    out = []
    for packet in driver.journal.recent(limit):
        commands = []
        for row in driver.journal.commands(packet.id):
            result = row.result or {}
            text = result.get("error") or result.get("success") or row.status
            if "success" in result and result.get("warnings"):  # the adjustments are listed apart, not twice
                text = text.split(ADJUSTED)[0]
            commands.append({"name": row.name, "type": row.type, "device": row.device,
                             "deviceName": names.get(row.device or "", row.device), "status": row.status,
                             "text": str(text), "fdNumber": result.get("fdNumber_1040"), "qr": result.get("qr"),
                             "warnings": list(result.get("warnings", ()))})
        out.append({"id": packet.id, "receivedAt": packet.received_at, "orderId": packet.order_id,
                    "source": packet.source, "origin": packet.origin, "status": packet.status,
                    "replays": packet.replays, "orderReused": packet.order_reused, "commands": commands})
    return out


def _bi(ru: str, en: str) -> str:
    """Both languages side by side (base.css shows the chosen one); the texts are escaped here."""
    return f'<span lang="ru">{html.escape(ru)}</span><span lang="en">{html.escape(en)}</span>'


async def status_page(driver: "Driver") -> str:
    from ..web import asset
    from ..web.routes import asset_version

    state = await status_json(driver)
    e = html.escape
    names = {d["token"]: d["name"] for d in state["devices"]}
    return Template(asset("driver_status.html")).substitute(
        version=e(__version__), url=e(state["listen"]), journal=e(state["journal"]), v=asset_version(),
        origins=e(", ".join(state["allowedOrigins"])) or _bi("нет", "none"),
        devices=_devices(state["devices"]), cloud=_cloud(state.get("cloud")),
        doubt=_doubt(state["inDoubt"], state["interrupted"], names), packets=_packets(state["recent"]),
        example=e(_example(state["devices"])), registers=_options(state["devices"], "kkt"),
        terminals=_options(state["devices"], "bnk"))


def _devices(devices: list[dict[str, Any]]) -> str:
    e = html.escape
    rows = []
    for device in devices:
        status = device["status"] or {}
        shift = "—"
        if status:
            shift = f"№{status['shiftNumber']} " + (_bi("открыта", "open") if status["shiftOpen"] else
                                                     _bi("закрыта", "closed"))
            if status.get("shiftExpired"):
                shift += " <b class=bad>&gt; 24 ч / h</b>"
        link = (f"<span class=ok>{_bi('на связи', 'connected')}</span>" if device["connected"] else
                f"<span class=bad>{_bi('нет связи', 'not connected')}</span>")
        if device["busy"]:
            link += f" ({_bi('занято', 'busy')})"
        paper = "—" if not status else _bi("есть", "yes") if status["paper"] else f"<b class=bad>{_bi('нет', 'no')}</b>"
        error = device["lastError"]
        rows.append(
            f"<tr><td>{e(device['name'])}<br><span class=muted>{e(device['kind'])}</span></td>"
            f"<td><code>{e(device['token'])}</code></td><td>{link}<br><span class=muted>{e(device['connection'])}"
            f"</span></td><td>{shift}</td><td>{e(status.get('fnNumber', '—'))}</td><td>{paper}</td>"
            f"<td class=bad>{_bi(error['ru'], error['en']) if error else ''}</td></tr>")
    return "\n".join(rows) or f"<tr><td colspan=7>{_bi('нет устройств', 'no devices')}</td></tr>"


_LINK_STATES = {"off": ("выключена", "off", "muted"), "connecting": ("подключается", "connecting", "warn"),
                "online": ("на связи", "online", "ok"), "offline": ("нет связи", "offline", "bad")}


def _cloud(cloud: dict[str, Any] | None) -> str:
    """The cloud link's state, as the link reports it in status_json's "cloud"; absent: not configured."""
    e = html.escape
    if not cloud:
        text = _bi("Связь с облаком не настроена (раздел [cloud] файла настроек).",
                   "The cloud link is not configured (the [cloud] table of the config file).")
        return f"<p class=muted data-cloud=none>{text}</p>"
    state = str(cloud.get("state", "off"))
    ru, en, css = _LINK_STATES.get(state, (state, state, "muted"))
    via = {"ws": "WebSocket", "poll": _bi("опрос", "long-poll")}.get(str(cloud.get("via")), e(str(cloud.get("via") or "—")))
    error = cloud.get("lastError")
    rows = [(_bi("Облако", "Cloud"), f"<code>{e(str(cloud.get('url') or '—'))}</code>"),
            (_bi("Состояние", "State"), f"<b class={css} data-cloud={e(state)}>{_bi(ru, en)}</b> · {via}"),
            (_bi("С", "Since"), e(str(cloud.get("since") or "—"))),
            (_bi("Получено / отчитано", "Received / reported"),
             f"{e(str(cloud.get('received', 0)))} / {e(str(cloud.get('reported', 0)))}")]
    if cloud.get("origins"):
        rows.append((_bi("Сайты из кабинета", "Origins from the cabinet"), e(", ".join(map(str, cloud["origins"])))))
    waiting = cloud.get("waiting") or []
    if waiting:
        rows.append((_bi("Ждут кассу", "Waiting for the register"), "<br>".join(
            f"<code>{e(str(w.get('id')))}</code>: {_bi(str(w.get('ru', '')), str(w.get('en', '')))}"
            for w in waiting[:20]) + (f" … +{len(waiting) - 20}" if len(waiting) > 20 else "")))
    if error:
        rows.append((_bi("Ошибка", "Last error"), f"<span class=bad>{_bi(error.get('ru', ''), error.get('en', ''))}</span>"))
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


_DOUBT = _bi("Команда начата, но не известно, пробит ли документ. Прежде чем выполнить что-то ещё на этом устройстве, "
             "драйвер спросит его и найдёт документ по содержимому; вслепую команда не повторяется.",
             "A command was begun and whether its document was printed is not known. Before anything else runs on "
             "that device the driver asks it and finds the document by what it contains; it is never repeated "
             "blindly.")
_INTERRUPTED = _bi("Прерваны остановкой драйвера, продолжатся при повторной отправке:",
                   "Interrupted by a stop, they resume when sent again:")
_NO_DOUBT = _bi("Нет: исход каждой команды известен.", "None: the outcome of every command is known.")


def _doubt(in_doubt: list[dict[str, Any]], interrupted: list[dict[str, Any]], names: dict[str, str]) -> str:
    """Commands begun on a device whose outcome the driver does not know, and packets a stop interrupted."""
    e = html.escape
    out = []
    if in_doubt:
        out.append(f"<p class=warn>{_DOUBT}</p>")
        rows = "".join(
            f"<tr data-doubt='{row['packetId']}'><td>{row['packetId']} / {row['command'] + 1}<br><span class=muted>"
            f"{e(row['orderId'] or '—')}</span></td><td>{e(row['name'])}<br>"
            f"<span class=muted>{e(row['type'])}</span></td><td>{e(names.get(row['device'] or '', row['device'] or '—'))}"
            f"</td><td>{e(str(row['startedAt'] or '—'))}</td><td>{e(str(row['fdBefore'] if row['fdBefore'] is not None else '—'))}"
            f"</td><td>{_sought(row['expected'])}{_bi(' отмена оплаты начата', ' reversal begun') if row['reversal'] else ''}"
            "</td></tr>"
            for row in in_doubt)
        out.append("<div class=table-wrap><table><tr><th>" + _bi("Пакет / команда", "Packet / command") + "</th><th>"
                   + _bi("Команда", "Command") + "</th><th>" + _bi("Устройство", "Device") + "</th><th>"
                   + _bi("Начата", "Begun") + "</th><th>" + _bi("ФД до неё", "FD before it") + "</th><th>"
                   + _bi("Что ищется на устройстве", "What is looked for on the device") + "</th></tr>"
                   + rows + "</table></div>")
    if interrupted:
        ids = ", ".join(f"№{p['id']} ({e(p['orderId'] or '—')})" for p in interrupted)
        out.append(f"<p class=bad>{_INTERRUPTED} {ids}</p>")
    return "".join(out) or f"<p class=ok data-doubt=none>{_NO_DOUBT}</p>"


def _sought(expected: dict[str, Any] | None) -> str:
    if not expected:
        return "—"
    if "document" in expected:
        total = expected.get("total")
        money = f", {kopecks_to_decimal(total)} ₽" if isinstance(total, int) else ""
        return html.escape(f"{expected['document']}{money}")
    return html.escape(", ".join(f"{key} {value}" for key, value in expected.items() if value is not None))


def _packets(recent: list[dict[str, Any]]) -> str:
    """The journal's recent packets as table rows: which device did what, with the adjustments and QR codes."""
    e = html.escape
    out = []
    for packet in recent:
        commands, qrs, devices = [], [], []
        for row in packet["commands"]:
            device = row["deviceName"] or "—"
            if device not in devices:
                devices.append(device)
            css = "ok" if row["status"] == "done" else "bad" if row["status"] == "failed" else "muted"
            notes = "".join(f"<li class=warn>{_bi(w['ru'], w['en'])} <span class=muted>{e(w['path'])}</span></li>"
                            for w in row["warnings"])
            commands.append(f"<div><b>{e(row['name'])}</b> <span class=muted>{e(row['type'])} · {e(device)}</span>: "
                            f"<span class={css}>{e(row['text'])}</span>{f'<ul>{notes}</ul>' if notes else ''}</div>")
            if row["qr"]:
                qrs.append(f"<div class=qr title='{e(row['qr'])}'>{qr_svg(row['qr'])}</div>")
        notes = f" ({_bi('повтор', 'replayed')} ×{packet['replays']})" if packet["replays"] else ""
        if packet["orderReused"]:
            notes += f" <b class=bad>{_bi('BIT_ORDER_ID уже был у другого пакета', 'order id reused')}</b>"
        status_css = "ok" if packet["status"] == "done" else "bad"
        out.append(
            f"<tr><td>{packet['id']}</td><td>{e(packet['receivedAt'].replace('T', ' '))}</td>"
            f"<td>{e(packet['orderId'] or '—')}{notes}</td><td>{e(packet['source'])}<br><span class=muted>"
            f"{e(packet['origin'] or '')}</span></td><td>{'<br>'.join(e(d) for d in devices)}</td>"
            f"<td class={status_css}>{e(packet['status'])}</td><td class=wide>{''.join(commands)}</td>"
            f"<td>{''.join(qrs)}</td></tr>")
    return "\n".join(out) or f"<tr><td colspan=8 class=muted>{_bi('пока пусто', 'empty')}</td></tr>"


def _example(devices: list[dict[str, Any]]) -> str:
    """The API 1.2 example packet; without a bank terminal, its receipt alone (the card payment would be refused).
    The page indents it (its numbers keep their digits: 11.00 stays 11.00)."""
    from ..examples import example_packet

    text = example_packet()
    if any(d["role"] == "bnk" for d in devices):
        return text
    return dumps([command for command in loads(text) if not str(command.get("type", "")).startswith("bnk")])


def _options(devices: list[dict[str, Any]], role: str) -> str:
    """<option>s of the devices of a role, for the page's form; "none" when there is none."""
    options = [f"<option value='{html.escape(d['token'])}'>{html.escape(d['name'])}</option>"
               for d in devices if d["role"] == role]
    return "".join(options) or "<option value=''>— нет / none —</option>"
