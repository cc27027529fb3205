"""The command-list JSON text out of a request body, however the client wrapped it.

Clients of the BIT API send the same JSON in six ways (spec/bit-api.md §1, §6.1): raw JSON,
`encodeURIComponent(json)`, the form field `json=…` (1.2, jQuery: `+` for spaces), PHP `rawurlencode`,
base64 and hex, the last two as text/plain; the cloud form adds base64 of the URI-encoded text. Rather than
trust Content-Type and the obsolete BIT_ENCODE_TYPE, which clients set inconsistently, each layer is
recognised by its own shape and peeled off until JSON remains. Every layer either yields text that starts
a JSON array/object or is rejected, so no guess can turn a valid body into a wrong packet.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qsl, unquote_plus

from ..fiscal import FormatError

__all__ = ["MAX_LAYERS", "decode_body"]

MAX_LAYERS = 4
_HEX = re.compile(r"[0-9A-Fa-f\s]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-\s]+")
_FORM_JSON = re.compile(r"(?:^|&)json=", re.IGNORECASE)


def decode_body(body: bytes) -> str:
    """The JSON text inside a request body; FormatError names what the body looked like when it fails."""
    text = _utf8(body)
    for _ in range(MAX_LAYERS + 1):
        text = text.strip().strip("\ufeff").strip()
        if not text:
            raise FormatError("body_empty", "пустое тело запроса: нужен JSON-массив команд",
                              "the request body is empty: a JSON array of commands is expected")
        if text[0] in "[{":
            return text
        unwrapped = _peel(text)
        if unwrapped is None:
            break
        text = unwrapped
    raise FormatError(
        "body_format",
        "тело запроса не похоже на JSON (ни как есть, ни в json=, encodeURIComponent, base64 или hex): "
        f"начинается с «{text[:40]}»",
        "the request body is not JSON (raw, json= form field, encodeURIComponent, base64 or hex): "
        f"it begins with '{text[:40]}'",
    )


def _peel(text: str) -> str | None:
    """Remove one layer of wrapping, or None when the text has no layer we know."""
    if _FORM_JSON.search(text):
        fields = parse_qsl(text, keep_blank_values=True)
        for key, value in fields:
            if key.lower() == "json":
                return value
    if "%" in text[:16]:
        candidate = unquote_plus(text).strip()
        if candidate[:1] in ("[", "{", "%"):
            return candidate
    compact = "".join(text.split())
    if _HEX.fullmatch(text) and len(compact) % 2 == 0:
        candidate = _utf8_or_none(bytes.fromhex(compact))
        if candidate is not None and _starts_json_or_layer(candidate):
            return candidate
    if _BASE64.fullmatch(text):
        for decoder in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decoder(compact + "=" * (-len(compact) % 4))
            except (binascii.Error, ValueError):
                continue
            candidate = _utf8_or_none(raw)
            if candidate is not None and _starts_json_or_layer(candidate):
                return candidate
    return None


def _starts_json_or_layer(text: str) -> bool:
    head = text.lstrip().lstrip("\ufeff")[:5]
    return head[:1] in ("[", "{") or head[:1] == "%" or head.lower().startswith("json=")


def _utf8(body: bytes) -> str:
    text = _utf8_or_none(body)
    if text is None:
        raise FormatError("body_encoding", "тело запроса не в кодировке UTF-8",
                          "the request body is not valid UTF-8")
    return text


def _utf8_or_none(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
