"""One way into the executor: headers and body of a request → a validated packet and the devices it names.

The HTTP handler, the cloud link and courier packets all call `admit`, so a packet is decoded, validated
and bound to its devices by the same rules wherever it came from: the register a request names gives the
receipt defaults, limits and strictness (`strict`: what the vendor's clients send short or inconsistent is refused
instead of adjusted), the tokens pick the devices, and `token_required` says whether a missing token may fall
back to the only (or the default) device of its kind. Nothing here touches a device.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ..bitapi import Packet, PacketError, ReceiptDefaults, decode_request, parse_headers
from ..fiscal import DEFAULT_LIMITS
from .registry import DeviceEntry, Registry

__all__ = ["Admitted", "admit"]

log = logging.getLogger("kktbridge.driver")


@dataclass(frozen=True)
class Admitted:
    packet: Packet
    devices: dict[str, DeviceEntry]  # role (`kkt`, `bnk`) → the device that runs that role's commands


def admit(registry: Registry, headers: Iterable[tuple[str, str]], body: bytes, *,
          token_required: bool) -> Admitted:
    """The packet ready to run, or PacketError naming every problem (fields with the caller's key paths)."""
    headers = list(headers)
    parsed, _ = parse_headers(headers)
    kkt = registry.resolve(parsed, {"kkt"}, token_required=token_required)[0].get("kkt")
    packet = decode_request(headers, body, defaults=kkt.config.defaults if kkt else ReceiptDefaults(),
                            limits=kkt.config.limits if kkt else DEFAULT_LIMITS,
                            strict=kkt.config.strict if kkt else False)
    if packet.unread:
        log.debug("packet (order %s): keys ignored, not part of the BIT format: %s", packet.order_id,
                  ", ".join(packet.unread))
    roles = packet.device_kinds()
    if "bnk" in roles and _names_a_register(registry, packet):
        roles.add("kkt")  # a bank-only packet with a register token: the slip is printed there
    devices, errors = registry.resolve(packet.headers, roles, token_required=token_required)
    if errors:
        raise PacketError(errors)
    return Admitted(packet, devices)


def _names_a_register(registry: Registry, packet: Packet) -> bool:
    headers = packet.headers
    if headers.kkt_token:
        return True
    return any((entry := registry.by_token(token)) is not None and entry.role == "kkt"
               for token in headers.legacy_tokens)
