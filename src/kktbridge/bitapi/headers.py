"""The BIT request headers, in both styles, read case- and separator-insensitively.

1.3+ style: `Action: command_list`, `BIT_KKT_TOKEN: <32 hex>`, `BIT_BNK_TRM_TOKEN: <32 hex>`,
`BIT_ORDER_ID`, `BIT_ENCODE_TYPE` (obsolete), `BIT_ALLOW_INVALID_MRK_CODES_WITH_CASHIER: true`.
1.2 style: `Action: toLocalhost` and each token sent as a header *name* with the value `1` (or a device number
"for the future"); which token is the register's and which the terminal's is known only to the device
registry, so they are kept as a list. Names are matched ignoring case and `-`/`_` (`bit_order_id`,
`Bit_order_id`, `BIT-ORDER-ID`), because proxies and HTTP stacks rewrite them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..fiscal import FieldError

__all__ = ["ACTIONS", "RequestHeaders", "parse_headers"]

ACTIONS = {"command_list": "1.3", "tolocalhost": "1.2"}
_TOKEN = re.compile(r"[0-9a-f]{32}")
MAX_ORDER_ID = 128


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


def parse_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[RequestHeaders, list[FieldError]]:
    """Read the BIT headers; problems come back as FieldErrors naming the header."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    legacy: list[str] = []
    for raw_name, raw_value in pairs:
        name = _norm(raw_name)
        value = raw_value.strip()
        if _TOKEN.fullmatch(name):
            if name not in legacy:
                legacy.append(name)
            continue
        found[name] = value
    errors: list[FieldError] = []

    action = found.get("action") or None
    style = "1.3"
    if action is not None:
        style_of = ACTIONS.get(action.lower())
        if style_of is None:
            errors.append(FieldError(
                "headers.Action",
                "action",
                f"неизвестный Action «{action}»: ожидается command_list",
                f"unknown Action '{action}': command_list is expected",
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
                f"{label}: токен — 32 шестнадцатеричных символа, получено «{found[header]}»",
                f"{label}: a token is 32 hex characters, got '{found[header]}'",
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
