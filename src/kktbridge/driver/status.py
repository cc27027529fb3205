"""What the driver shows about itself: devices with their live state, and the journal's recent packets.

A device busy with a packet is not asked (the cashier's receipt comes first); its last known state is shown.
"""

from __future__ import annotations

import asyncio
import html
from string import Template
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..devices.base import FiscalRegister
from ..fiscal import BridgeError

if TYPE_CHECKING:
    from .app import Driver

__all__ = ["status_json", "status_page"]

STATUS_TIMEOUT = 3.0


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
    return {"version": __version__, "listen": driver.url,
            "allowedOrigins": list(driver.config.allowed_origins), "journal": str(driver.journal.path),
            "devices": devices, "interrupted": interrupted}


def _qr_svg(text: str) -> str:
    import segno

    return segno.make(text, error="m").svg_inline(scale=2, border=1)


async def status_page(driver: "Driver") -> str:
    from ..examples import example_packet

    state = await status_json(driver)
    e = html.escape
    rows = []
    for device in state["devices"]:
        status = device["status"] or {}
        shift = "—"
        if status:
            shift = f"№{status['shiftNumber']} " + ("открыта / open" if status["shiftOpen"] else "закрыта / closed")
            if status.get("shiftExpired"):
                shift += " <b class=bad>&gt; 24 ч</b>"
        link = "<span class=ok>да / yes</span>" if device["connected"] else "<span class=bad>нет / no</span>"
        if device["busy"]:
            link += " (занято / busy)"
        error = device["lastError"]
        rows.append(
            f"<tr><td>{e(device['name'])}<br><span class=muted>{e(device['kind'])}</span></td>"
            f"<td><code>{e(device['token'])}</code></td><td>{link}<br><span class=muted>{e(device['connection'])}"
            f"</span></td><td>{shift}</td><td>{e(status.get('fnNumber', '—'))}</td>"
            f"<td>{'—' if not status else ('есть / yes' if status['paper'] else '<b class=bad>нет / no</b>')}</td>"
            f"<td class=bad>{e(error['ru'] + ' / ' + error['en']) if error else ''}</td></tr>")
    packets = []
    for packet in driver.journal.recent(30):
        commands, qrs = [], []
        for row in driver.journal.commands(packet.id):
            result = row.result or {}
            text = result.get("success") or result.get("error") or row.status
            css = "ok" if row.status == "done" else "bad" if row.status == "failed" else "muted"
            commands.append(f"<div><b>{e(row.name)}</b> <span class=muted>{e(row.type)}</span>: "
                            f"<span class={css}>{e(str(text))}</span></div>")
            if result.get("qr"):
                qrs.append(f"<div class=qr title='{e(result['qr'])}'>{_qr_svg(result['qr'])}</div>")
        notes = " (повтор / replayed ×%d)" % packet.replays if packet.replays else ""
        if packet.order_reused:
            notes += " <b class=bad>BIT_ORDER_ID уже был у другого пакета / order id reused</b>"
        status_css = "ok" if packet.status == "done" else "bad"
        packets.append(
            f"<tr><td>{packet.id}</td><td>{e(packet.received_at.replace('T', ' '))}</td>"
            f"<td>{e(packet.order_id or '—')}{notes}</td><td>{e(packet.source)}<br><span class=muted>"
            f"{e(packet.origin or '')}</span></td><td class={status_css}>{e(packet.status)}</td>"
            f"<td>{''.join(commands)}</td><td>{''.join(qrs)}</td></tr>")
    interrupted = ""
    if state["interrupted"]:
        ids = ", ".join(f"№{p['id']} ({e(p['orderId'] or '—')})" for p in state["interrupted"])
        interrupted = (f"<p class=bad>Прерваны остановкой драйвера, продолжатся при повторной отправке / "
                       f"interrupted by a stop, they resume when sent again: {ids}</p>")
    from ..web import asset

    return Template(asset("driver_status.html")).substitute(
        version=e(__version__), url=e(state["listen"]), journal=e(state["journal"]),
        origins=e(", ".join(state["allowedOrigins"]) or "—"), devices="\n".join(rows) or
        "<tr><td colspan=7>нет устройств / no devices</td></tr>", packets="\n".join(packets) or
        "<tr><td colspan=7 class=muted>пока пусто / empty</td></tr>", interrupted=interrupted,
        example=e(example_packet()), registers=_options(state["devices"], "kkt"),
        terminals=_options(state["devices"], "bnk"))


def _options(devices: list[dict[str, Any]], role: str) -> str:
    """<option>s of the devices of a role, for the page's form; "none" when there is none."""
    options = [f"<option value='{html.escape(d['token'])}'>{html.escape(d['name'])}</option>"
               for d in devices if d["role"] == role]
    return "".join(options) or "<option value=''>— нет / none —</option>"
