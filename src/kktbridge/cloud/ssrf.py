"""Which callback URLs the cloud may POST to: the one place of the SSRF rules.

A shop names its callback URLs, so a URL is hostile until checked: the cloud must not be made to reach its own
loopback, the provider's private network, or a metadata service. The rules:
- http or https only, with a host; port 80, 443, or an unprivileged one (1024–65535): no SSH, SMTP and the like;
- the host is resolved and **every** address must be public: loopback, private, shared (CGN), link-local,
  multicast, reserved, unspecified and documentation ranges are refused, and so are IPv6 forms that carry such an
  IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo); one bad address refuses the URL;
- the POST then connects to exactly the addresses that were checked (`PinnedResolver`), never resolving the name
  again, so a DNS answer that changes between the check and the connection (DNS rebinding) changes nothing;
- `allow_private_callbacks = true` in the cloud's config lifts the address rule (not the scheme or port rules), for
  a demo or a shop on the same network.
At submit time `submit_problem` applies what can be known without DNS (scheme, port, a literal address, localhost),
so most bad URLs are refused to the shop at once with a field error; the rest are refused at delivery, recorded as
a `refused` callback with the reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import yarl
from aiohttp.abc import AbstractResolver

from ..fiscal import FieldError

__all__ = ["Refused", "Target", "PinnedResolver", "address_problem", "resolve", "submit_problem"]

RESOLVE_TIMEOUT = 5.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL breaks a rule: `ru` and `en` say which (shown to the account, never a secret)."""

    def __init__(self, ru: str, en: str) -> None:
        super().__init__(en)
        self.ru, self.en = ru, en

    def text(self) -> str:
        return f"{self.ru} / {self.en}"


@dataclass(frozen=True)
class Target:
    """A checked URL: its host as aiohttp will ask for it, its port, and the addresses to connect to."""

    url: yarl.URL
    host: str
    port: int
    addresses: tuple[str, ...]


def address_problem(address: IPAddress) -> tuple[str, str] | None:
    """Why this address is not a public one (ru, en), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:  # judged by the IPv4 address it carries (the IPv6 range itself is "special")
            problem = address_problem(inner)
            if problem is not None:
                return f"{problem[0]} (внутри адреса IPv6)", f"{problem[1]} (inside an IPv6 address)"
            return None
    checks = (("is_unspecified", "неопределённый адрес", "an unspecified address"),
              ("is_loopback", "адрес loopback", "a loopback address"),
              ("is_link_local", "локальный адрес канала (link-local)", "a link-local address"),
              ("is_multicast", "групповой адрес (multicast)", "a multicast address"),
              ("is_reserved", "зарезервированный адрес", "a reserved address"),
              ("is_private", "частный адрес", "a private address"))
    for attribute, ru, en in checks:
        if getattr(address, attribute):
            return ru, en
    if not address.is_global:
        return "адрес не из публичной сети", "not a public address"
    return None


def _static(url: str) -> tuple[yarl.URL, str, int, IPAddress | None]:
    """The rules that need no DNS: (url, host, port, the host as an address if it is one), or Refused."""
    try:
        parsed = yarl.URL(url)
        scheme, host, port = parsed.scheme.lower(), parsed.raw_host, parsed.port
    except (ValueError, TypeError, UnicodeError):
        raise Refused("адрес не разобрать", "the URL cannot be parsed") from None
    if scheme not in ("http", "https") or not host:
        raise Refused("нужен адрес http:// или https:// с именем хоста",
                      "an http:// or https:// URL with a host is expected")
    if port is None or not (port in (80, 443) or 1024 <= port <= 65535):
        raise Refused(f"порт {port} не разрешён: только 80, 443 и 1024–65535",
                      f"port {port} is not allowed: only 80, 443 and 1024–65535")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        literal = None
        try:  # the C library's old forms: 2130706433, 0x7f.1, 127.1 are all 127.0.0.1 to getaddrinfo
            literal = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            pass
    return parsed, host.rstrip(".").lower() if literal is None else host, port, literal


def _refuse_address(host: str, address: IPAddress) -> None:
    problem = address_problem(address)
    if problem is not None:
        raise Refused(f"{host} → {address}: {problem[0]}; такие адреса разрешает allow_private_callbacks",
                      f"{host} → {address}: {problem[1]}; allow_private_callbacks allows such addresses")


def submit_problem(path: str, url: str, *, allow_private: bool) -> FieldError | None:
    """The rules that can be checked when the shop submits (no DNS): a field error naming `path`, or None."""
    try:
        _, host, _, literal = _static(url)
        if not allow_private:
            if literal is not None:
                _refuse_address(host, literal)
            elif host in _LOCAL_NAMES or host.endswith(".localhost"):
                _refuse_address(host, ipaddress.ip_address("127.0.0.1"))
    except Refused as refused:
        return FieldError(path, "callback_refused", f"облако не будет слать сюда ответ: {refused.ru}",
                          f"the cloud will not post callbacks here: {refused.en}")
    return None


async def resolve(url: str, *, allow_private: bool, timeout: float = RESOLVE_TIMEOUT) -> Target:
    """The URL checked and its host resolved: a Target to connect to, Refused when a rule is broken, OSError when
    the name does not resolve (which may pass: the caller retries)."""
    parsed, host, port, literal = _static(url)
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except asyncio.TimeoutError:
            raise OSError(f"the name {host} did not resolve within {timeout:g} s") from None
        addresses = []
        for family, *_, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
                if address not in addresses:
                    addresses.append(address)
        if not addresses:
            raise OSError(f"the name {host} has no address")
    if not allow_private:
        for address in addresses:
            _refuse_address(host, address)
    return Target(parsed, parsed.raw_host or host, port, tuple(str(a) for a in addresses))


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver for one checked Target: it answers with the checked addresses, and only for its host."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        if host.rstrip(".").lower() != self.target.host.rstrip(".").lower():
            raise OSError(f"{host} is not the host that was checked")
        return [{"hostname": host, "host": address, "port": port,
                 "family": socket.AF_INET6 if ":" in address else socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST} for address in self.target.addresses]

    async def close(self) -> None:
        return None
