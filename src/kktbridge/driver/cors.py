"""Who may talk to the driver: every web page the cashier opens can reach 127.0.0.1:44735, so only the shop's
own sites (allowed origins) may use it from a browser.

Rules: a request with an Origin must come from an allowed origin (or the driver's own status page); a request
without one (curl, a shop server) must name its devices by token; so must any request that reaches the driver
from another machine ("режим извне"). Preflights of allowed origins are answered with the BIT headers and
Chrome's Private Network Access header.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["EXPOSED", "Gate", "preflight_headers", "response_headers"]

EXPOSED = "Server-Timing, X-Kktbridge-Packet, X-Kktbridge-Replayed"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class Gate:
    def __init__(self, allowed_origins: Iterable[str], own_port: int) -> None:
        self.allowed = {origin.lower().rstrip("/") for origin in allowed_origins}
        self.own = {f"http://127.0.0.1:{own_port}", f"http://localhost:{own_port}", f"http://[::1]:{own_port}"}

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.lower().rstrip("/")
        return origin in self.allowed or origin in self.own

    @staticmethod
    def is_local(peer: str | None) -> bool:
        return peer in _LOOPBACK or (peer or "").startswith("127.")

    def token_required(self, origin: str | None, peer: str | None) -> bool:
        return origin is None or not self.is_local(peer)

    def refusal(self, origin: str, config_source: str) -> tuple[str, str]:
        where = config_source or "config.toml"
        return (f"Сайт {origin} не разрешён для этого драйвера: добавьте \"{origin}\" в [cors] allowed_origins "
                f"файла {where} и перезапустите драйвер",
                f"The site {origin} is not allowed to use this driver: add \"{origin}\" to [cors] allowed_origins "
                f"in {where} and restart the driver")


def preflight_headers(origin: str, requested_headers: str | None, private_network: bool) -> dict[str, str]:
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": requested_headers or "Content-Type, Action, BIT_KKT_TOKEN, "
        "BIT_BNK_TRM_TOKEN, BIT_ORDER_ID, BIT_ENCODE_TYPE, BIT_ALLOW_INVALID_MRK_CODES_WITH_CASHIER",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin, Access-Control-Request-Headers",
    }
    if private_network:
        headers["Access-Control-Allow-Private-Network"] = "true"
    return headers


def response_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED, "Vary": "Origin"}
