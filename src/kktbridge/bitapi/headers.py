"""The BIT request headers, in both styles, read case- and separator-insensitively.

1.3+ style: `Action: command_list`, `BIT_KKT_TOKEN: <32 hex>`, `BIT_BNK_TRM_TOKEN: <32 hex>`,
`BIT_ORDER_ID`, `BIT_ENCODE_TYPE` (obsolete), `BIT_ALLOW_INVALID_MRK_CODES_WITH_CASHIER: true`.
1.2 style: `Action: toLocalhost` and each token sent as a header *name* with the value `1` (or a device number
"for the future"); which token is the register's and which the terminal's is known only to the device
registry, so they are kept as a list. Names are matched ignoring case and `-`/`_` (`bit_order_id`,
`Bit_order_id`, `BIT-ORDER-ID`), because proxies and HTTP stacks rewrite them.

Bytes: a header value that is not UTF-8 is read as Windows-1251, which is what Russian Windows clients send (a
BIT_ORDER_ID like «Заказ-17» from a 1С or Delphi program). HTTP servers hand such bytes over as surrogate escapes
(aiohttp does, like Python's own `surrogateescape`); `header_text` turns them back into the bytes and reads those.
A value that is not Windows-1251 either, or holds control characters, is refused with the header's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..fiscal import FieldError, shown

__all__ = ["ACTIONS", "RequestHeaders", "header_text", "parse_headers"]

ACTIONS = {"command_list": "1.3", "tolocalhost": "1.2"}
_TOKEN = re.compile(r"[0-9a-f]{32}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
MAX_ORDER_ID = 128
# The headers parse_headers reads, by normalized name → as the docs spell them.
_KNOWN = {"action": "Action", "bit_kkt_token": "BIT_KKT_TOKEN", "bit_bnk_trm_token": "BIT_BNK_TRM_TOKEN",
          "bit_order_id": "BIT_ORDER_ID", "bit_encode_type": "BIT_ENCODE_TYPE",
          "bit_allow_invalid_mrk_codes_with_cashier": "BIT_ALLOW_INVALID_MRK_CODES_WITH_CASHIER"}


@dataclass(frozen=True, slots=True)
class RequestHeaders:
    style: str  # "1.3" (named headers) or "1.2" (tokens as header names)
    action: str | None
    kkt_token: str | None
    bnk_token: str | None
    legacy_tokens: tuple[str, ...]  # 1.2 style: tokens of either kind, in the order sent
    order_id: str | None
    encode_type: str | None
    allow_invalid_marking: bool

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token the request names, of either kind."""
        named = tuple(t for t in (self.kkt_token, self.bnk_token) if t)
        return named + tuple(t for t in self.legacy_tokens if t not in named)


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def header_text(value: str) -> str | None:
    """A header value as text: UTF-8 as it came, other bytes (surrogate escapes) read as Windows-1251; None
    when they are not Windows-1251 either."""
    if value.isascii() or not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("cp1251")
    except UnicodeError:
        return None


def parse_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[RequestHeaders, list[FieldError]]:
    """Read the BIT headers; problems come back as FieldErrors naming the header."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    legacy: list[str] = []
    errors: list[FieldError] = []
    for raw_name, raw_value in pairs:
        name = _norm(raw_name)
        if _TOKEN.fullmatch(name):
            if name not in legacy:
                legacy.append(name)
            continue
        if name not in _KNOWN:
            continue
        value = header_text(raw_value)
        if value is None or _CONTROL.search(value):
            errors.append(FieldError(
                f"headers.{_KNOWN[name]}", "header_encoding",
                f"заголовок {_KNOWN[name]} не читается: ни UTF-8, ни Windows-1251, или в нём управляющие символы",
                f"the {_KNOWN[name]} header cannot be read: neither UTF-8 nor Windows-1251, or it holds control "
                "characters",
            ))
            continue
        found[name] = value.strip()

    action = found.get("action") or None
    style = "1.3"
    if action is not None:
        style_of = ACTIONS.get(action.lower())
        if style_of is None:
            errors.append(FieldError(
                "headers.Action",
                "action",
                f"неизвестный Action «{shown(action)}»: ожидается command_list",
                f"unknown Action '{shown(action)}': command_list is expected",
            ))
        else:
            style = style_of
    if legacy and not (found.get("bit_kkt_token") or found.get("bit_bnk_trm_token")):
        style = "1.2"

    def token(header: str, label: str) -> str | None:
        value = found.get(header, "").lower()
        if not value:
            return None
        if not _TOKEN.fullmatch(value):
            errors.append(FieldError(
                f"headers.{label}",
                "token",
                f"{label}: токен — 32 шестнадцатеричных символа, получено «{shown(found[header])}»",
                f"{label}: a token is 32 hex characters, got '{shown(found[header])}'",
            ))
            return None
        return value

    kkt = token("bit_kkt_token", "BIT_KKT_TOKEN")
    bnk = token("bit_bnk_trm_token", "BIT_BNK_TRM_TOKEN")
    order_id = found.get("bit_order_id") or None
    if order_id is not None and len(order_id) > MAX_ORDER_ID:
        errors.append(FieldError(
            "headers.BIT_ORDER_ID",
            "too_long",
            f"BIT_ORDER_ID длиннее {MAX_ORDER_ID} символов",
            f"BIT_ORDER_ID is longer than {MAX_ORDER_ID} characters",
        ))
        order_id = None
    allow = found.get("bit_allow_invalid_mrk_codes_with_cashier", "").lower() in {"1", "true", "yes"}
    return (
        RequestHeaders(
            style=style,
            action=action,
            kkt_token=kkt,
            bnk_token=bnk,
            legacy_tokens=tuple(legacy),
            order_id=order_id,
            encode_type=found.get("bit_encode_type") or None,
            allow_invalid_marking=allow,
        ),
        errors,
    )
