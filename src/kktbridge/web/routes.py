"""The routes the driver and the cloud serve alike: the pages' assets, the QR image and the integrator's test page.

- `GET /static/<name>`: a file of `web/static` (or the generated `presets.json`), by a name of letters, digits,
  `-`, `_` and one extension of a fixed list, with its content type. Pages ask for `?v=<asset_version()>`, a
  digest of every asset: such a request is cached for a year (the digest changes with any asset), any other
  revalidates by ETag. Nothing else on disk can be named.
- `GET /qr.svg?t=<text>`: the receipt's QR code (web/qr.py), the text at most MAX_QR_TEXT characters.
- `page_response`: a page under a strict policy: its scripts and styles from /static only (plus its own inline
  ones, by hash), images from itself, calls to itself and to a driver on this computer (loopback, any port).
Refusals are JSON in both languages, in the shape of every other kktbridge answer (`result: false`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from importlib import resources
from string import Template

from aiohttp import web

from ..bitapi import dumps, encode_packet_error
from ..fiscal import BridgeError
from . import asset
from .qr import MAX_QR_TEXT, qr_svg_document

__all__ = ["LOOPBACK_DRIVERS", "add_routes", "asset_version", "page_policy", "integrator_page", "page_response"]

_TYPES = {".css": "text/css", ".js": "text/javascript", ".json": "application/json", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.[a-z0-9]{2,5}$")
_INLINE = re.compile(r"<(script|style)(?![^>]*\ssrc=)(?:\s[^>]*)?>(.*?)</\1>", re.DOTALL)  # not <script src>
LOOPBACK_DRIVERS = "http://localhost:* http://127.0.0.1:* https://localhost:* https://127.0.0.1:*"
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "same-origin"}


def _generated() -> dict[str, bytes]:
    from ..examples.presets import presets_document

    return {"presets.json": presets_document().encode("utf-8")}


@lru_cache(maxsize=1)
def _assets() -> dict[str, bytes]:
    """Every asset by name, read once (they ship with the package and do not change while it runs)."""
    folder = resources.files(__package__).joinpath("static")
    files = {entry.name: entry.read_bytes() for entry in folder.iterdir()
             if entry.is_file() and _NAME.match(entry.name) and _suffix(entry.name) in _TYPES}
    return {**files, **_generated()}


def _suffix(name: str) -> str:
    return name[name.rfind("."):]


@lru_cache(maxsize=1)
def asset_version() -> str:
    """A digest of every asset: the `?v=` of the pages' links."""
    digest = hashlib.sha256()
    for name, body in sorted(_assets().items()):
        digest.update(name.encode() + b"\0" + body)
    return digest.hexdigest()[:12]


def _refusal(status: int, code: str, ru: str, en: str) -> web.Response:
    body = encode_packet_error(BridgeError(code, ru, en))
    return web.Response(text=dumps(body), status=status, content_type="application/json", charset="utf-8",
                        headers={**_HEADERS, "Cache-Control": "no-store"})


async def static_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    body = _assets().get(name) if _NAME.match(name) else None
    if body is None:
        return _refusal(404, "not_found", f"нет файла {name[:64]!r} среди файлов страниц",
                        f"there is no page asset {name[:64]!r}")
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    versioned = request.query.get("v") == asset_version()
    headers = {**_HEADERS, "ETag": etag,
               "Cache-Control": "public, max-age=31536000, immutable" if versioned else "no-cache"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": _content_type(name)})


def _content_type(name: str) -> str:
    kind = _TYPES[_suffix(name)]
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith(("json", "svg+xml")) else kind


async def qr_image(request: web.Request) -> web.Response:
    text = request.query.get("t", "")
    if not text or len(text) > MAX_QR_TEXT:
        return _refusal(400, "qr_text", f"параметр t — текст QR-кода чека, от 1 до {MAX_QR_TEXT} символов",
                        f"the parameter t is the receipt's QR text, 1 to {MAX_QR_TEXT} characters")
    return web.Response(body=qr_svg_document(text), content_type="image/svg+xml",
                        headers={**_HEADERS, "Cache-Control": "public, max-age=86400"})


def add_routes(router: web.UrlDispatcher) -> None:
    """The asset and QR routes, the same in every app."""
    router.add_get("/static/{name}", static_asset)
    router.add_get("/qr.svg", qr_image)


def page_policy(page: str, *, connect: str = "'self'", form_action: str = "'none'") -> str:
    """The CSP of a page: scripts and styles from /static and its own inline ones (by hash), images from itself
    (and data: for inline QR codes), calls to `connect`, forms posted to `forms` only (none by default); no
    plugin, frame or base."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        if body.strip() and f"'sha256-{digest}'" not in hashes[kind]:
            hashes[kind].append(f"'sha256-{digest}'")
    scripts = " ".join(["'self'", *hashes["script"]])
    styles = " ".join(["'self'", *hashes["style"]])
    return (f"default-src 'none'; script-src {scripts}; style-src {styles}; img-src 'self' data:; "
            f"connect-src {connect}; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'")


def page_response(page: str, *, connect: str = "'self'", form_action: str = "'none'") -> web.Response:
    """A page, never framed, never cached (it may show tokens), under `page_policy`."""
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers={
        **_HEADERS, "Content-Security-Policy": page_policy(page, connect=connect, form_action=form_action),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


def integrator_page(mode: str, *, driver_url: str = "http://localhost:44735") -> web.Response:
    """The integrator's test page: `cloud` (served by the cloud, with its form) or `driver` (by the driver, for
    this computer only; the cloud's parts hidden). It may call drivers on this computer, whatever their port."""
    page = Template(asset("test_page.html")).substitute(mode=mode, v=asset_version(), driver_url=driver_url)
    return page_response(page, connect=f"'self' {LOOPBACK_DRIVERS}")
