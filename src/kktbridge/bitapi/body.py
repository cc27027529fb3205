"""The command-list JSON text out of a request body, however the client wrapped it.

Clients of the BIT API send the same JSON in six ways (spec/bit-api.md §1, §6.1): raw JSON,
`encodeURIComponent(json)`, the form field `json=…` (1.2, jQuery: `+` for spaces), PHP `rawurlencode`,
base64 and hex, the last two as text/plain; the cloud form adds base64 of the URI-encoded text. Rather than
trust Content-Type and the obsolete BIT_ENCODE_TYPE, which clients set inconsistently, each layer is
recognised by its own shape and peeled off until JSON remains. Every layer either yields text that starts
a JSON array/object or is rejected, so no guess can turn a valid body into a wrong packet.

Every layer is peeled in time linear in the body (regular expressions and C codecs, no per-field loops), so the
largest body (2 MB, driver/app.py) costs milliseconds here whatever it holds.
"""

from __future__ import annotations

import base64
import binascii
import re

from ..fiscal import FormatError, shown

__all__ = ["MAX_LAYERS", "decode_body"]

MAX_LAYERS = 4
_HEX = re.compile(r"[0-9A-Fa-f\s]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-\s]+")
_FORM_JSON = re.compile(r"(?:^|&)json=([^&]*)", re.IGNORECASE)


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
        f"начинается с «{shown(text)}»",
        "the request body is not JSON (raw, json= form field, encodeURIComponent, base64 or hex): "
        f"it begins with '{shown(text)}'",
    )


def _peel(text: str) -> str | None:
    """Remove one layer of wrapping, or None when the text has no layer we know."""
    form = _FORM_JSON.search(text)
    if form is not None:  # the first json= field of a form, found without splitting every field
        return _unquote_plus(form[1])
    if "%" in text[:16]:
        candidate = (_unquote_plus(text) or "").strip()
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


_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _unquote_plus(text: str) -> str | None:
    """urllib's unquote_plus at C speed (it loops in Python over every %XX): `+` is a space, %XX a byte, the bytes
    UTF-8; None when a `%` is not followed by two hex digits. Done by the documented `unicode_escape` codec over
    the text with its own backslashes doubled, so only the `\\x` escapes made here are decoded."""
    if _PERCENT.search(text):
        return None
    escaped = text.replace("\\", "\\\\").replace("+", " ").replace("%", "\\x").encode("utf-8")
    return escaped.decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


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
