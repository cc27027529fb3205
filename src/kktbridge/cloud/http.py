"""Small HTTP helpers shared by the cloud's endpoints: JSON answers with exact decimals, the caller's address."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..bitapi import dumps

__all__ = ["MAX_BODY", "client_address", "json_response"]

MAX_BODY = 1024 * 1024  # a receipt of 100 items, base64 of its URI-encoded Cyrillic text, fits several times over


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer. Most answers hold no Decimal and go through the C encoder; one that holds money (a result)
    goes through bitapi's writer, which keeps its digits (11.00 stays 11.00)."""
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    except TypeError:
        text = dumps(body)
    return web.Response(text=text, status=status, content_type="application/json", charset="utf-8",
                        headers=headers)


def client_address(request: web.Request) -> str:
    """The peer's address (a node behind a balancer sees the balancer; limits are then per balancer)."""
    return request.remote or "unknown"
