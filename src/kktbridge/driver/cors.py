"""Who may talk to the driver: every web page the cashier opens can reach 127.0.0.1:44735, so only the shop's
own sites (allowed origins) may use it from a browser, and only under a name the driver knows as its own.

Rules:
- Host: a request is served only under a loopback name (`localhost`, `127.0.0.1`, `[::1]`), an IP literal, or a
  name configured for "режим извне" (`external_names`). A page on a foreign name that rebinds its DNS to
  127.0.0.1 (DNS rebinding) sends that name as Host and is refused. An IP literal cannot be rebound, so any is
  served (a router's public address, port-forwarded, needs no setting).
- The status page and JSON: on this computer only, under a loopback Host, and never to another origin.
- Origin: a request with one must come from an allowed origin (or the driver's own status page).
- Tokens: a request without an Origin (curl, a shop server) must name its devices by token; so must any request
  that reaches the driver from another machine, and with `allow_external` every request (a proxy on this
  machine would make outside requests look local).
Preflights of allowed origins are answered with the BIT headers and Chrome's Private Network Access header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["EXPOSED", "Gate", "preflight_headers", "response_headers"]

EXPOSED = "Server-Timing, X-Kktbridge-Packet, X-Kktbridge-Replayed"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_LOOPBACK_NAMES = {"localhost"}


def host_name(host: str | None) -> str | None:
    """The name of a Host header, without its port, lower case; None when there is none or it is malformed."""
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        return name if bracket and (not rest or (rest[0] == ":" and rest[1:].isdigit())) else None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".") if host and ":" not in host else None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class Gate:
    def __init__(self, allowed_origins: Iterable[str], own_port: int, *, external_names: Iterable[str] = (),
                 external: bool = False, scheme: str = "http") -> None:
        self.allowed = {origin.lower().rstrip("/") for origin in allowed_origins}
        self.own = {f"{scheme}://127.0.0.1:{own_port}", f"{scheme}://localhost:{own_port}",
                    f"{scheme}://[::1]:{own_port}"}
        self.names = _LOOPBACK_NAMES | {name.lower().rstrip(".") for name in external_names}
        self.external = external

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.lower().rstrip("/")
        return origin in self.allowed or origin in self.own

    def is_own_origin(self, origin: str) -> bool:
        return origin.lower().rstrip("/") in self.own

    def host_allowed(self, host: str | None) -> bool:
        """Whether the driver answers under this Host header (DNS rebinding protection)."""
        name = host_name(host)
        return name is not None and (name in self.names or _ip(name) is not None)

    @staticmethod
    def loopback_host(host: str | None) -> bool:
        """Whether the Host header names this computer by a loopback name or address."""
        name = host_name(host)
        if name is None:
            return False
        address = _ip(name)
        return name in _LOOPBACK_NAMES if address is None else address.is_loopback

    @staticmethod
    def is_local(peer: str | None) -> bool:
        return peer in _LOOPBACK or (peer or "").startswith("127.")

    def token_required(self, origin: str | None, peer: str | None) -> bool:
        return origin is None or self.external or not self.is_local(peer)

    def refusal(self, origin: str, config_source: str,
                advice: tuple[str, str] | None = None) -> tuple[str, str]:
        """What a refused site is told: that it is not allowed, and how to allow it (`advice` as (ru, en) with
        `{origin}` in it, for a driver not run from a file, like the demo; by default the file's [cors])."""
        where = config_source or "config.toml"
        ru, en = advice or (f'добавьте "{{origin}}" в [cors] allowed_origins файла {where} и перезапустите драйвер',
                            f'add "{{origin}}" to [cors] allowed_origins in {where} and restart the driver')
        ru, en = ru.replace("{origin}", origin), en.replace("{origin}", origin)
        return (f"Сайт {origin} не разрешён для этого драйвера: {ru}",
                f"The site {origin} is not allowed to use this driver: {en}")

    def host_refusal(self, host: str, config_source: str) -> tuple[str, str]:
        where = config_source or "config.toml"
        return (f"Драйвер не отвечает под именем «{host}» (защита от DNS rebinding): откройте http://127.0.0.1 или "
                f"http://localhost, а имя для режима извне добавьте в [driver] external_names файла {where}",
                f"The driver does not answer under the name '{host}' (DNS rebinding protection): use 127.0.0.1 or "
                f"localhost, and add a name for outside use to [driver] external_names in {where}")


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
