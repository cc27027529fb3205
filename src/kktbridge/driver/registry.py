"""The devices the driver serves: token → adapter, one lock per device, and which device a request means.

A request names its devices by token (BIT_KKT_TOKEN, BIT_BNK_TRM_TOKEN, or 1.2-style tokens as header names);
two different devices of one kind named in one request are refused, never one of them picked. With one device of
a kind (or one marked `default`) and a request from an allowed browser page, a missing token selects that device,
as the vendor's demos expect; requests without an Origin, or from outside the machine, must name it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..bitapi import RequestHeaders
from ..devices.base import FiscalRegister, PaymentTerminal, RegisterStatus
from ..fiscal import BridgeError, FieldError
from .config import DeviceConfig, DriverConfig

__all__ = ["DeviceEntry", "Registry", "register_factory"]

log = logging.getLogger("kktbridge.driver")

Adapter = FiscalRegister | PaymentTerminal
_FACTORIES: dict[str, Callable[[DeviceConfig], Adapter]] = {}


def register_factory(kind: str, factory: Callable[[DeviceConfig], Adapter]) -> None:
    """How a device kind's adapter is built from its [[devices]] options."""
    _FACTORIES[kind] = factory


def _atol(config: DeviceConfig) -> Adapter:
    from ..devices.atol.adapter import AtolRegister
    from ..devices.transport import parse_address

    options = config.options
    common = {"password": int(options.get("password", 0)), "mode_password": int(options.get("mode_password", 30))}
    if "serial" in options:
        return AtolRegister.serial(str(options["serial"]), options.get("baudrate", 115200),
                                   protocol=str(options.get("protocol", "v3")), **common)
    host, port = parse_address(str(options.get("tcp", "127.0.0.1:5555")), 5555)
    return AtolRegister.tcp(host, port, **common)


def _mercury(config: DeviceConfig) -> Adapter:
    from ..devices.mercury import MercuryRegister

    return MercuryRegister.from_options(config.options)


def _arcus(config: DeviceConfig) -> Adapter:
    from ..devices.arcus import ArcusTerminal
    from ..devices.arcus.library import default_library_name

    options = config.options
    settings = {f"emu_{key}": value for key, value in (options.get("emulator") or {}).items()}
    return ArcusTerminal(options.get("library", default_library_name()), operations=options.get("operations"),
                         slip_file=options.get("slip_file"), settings=settings)


register_factory("atol", _atol)
register_factory("mercury", _mercury)
register_factory("arcus", _arcus)


@dataclass(eq=False)
class DeviceEntry:
    config: DeviceConfig
    adapter: Adapter
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connected: bool = False
    last_error: BridgeError | None = None
    last_status: RegisterStatus | None = None

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def role(self) -> str:
        return self.config.role

    def describe(self) -> str:
        options = self.config.options
        for key in ("tcp", "serial", "url", "library"):
            if key in options:
                return f"{key} {options[key]}"
        return self.config.kind

    async def ensure_connected(self) -> None:
        if not self.connected:
            try:
                await self.adapter.connect()
            except BridgeError as exc:
                self.last_error = exc
                raise
            self.connected = True
            log.info("%s (%s) connected: %s", self.config.name, self.config.kind, self.describe())

    def lost(self, error: BridgeError) -> None:
        """After a link failure the next use reconnects."""
        self.last_error = error
        if error.code in ("link", "outcome_unknown"):
            self.connected = False


class Registry:
    def __init__(self, entries: list[DeviceEntry]) -> None:
        self.entries = entries
        self._by_token = {entry.token: entry for entry in entries}

    @classmethod
    def from_config(cls, config: DriverConfig) -> "Registry":
        entries = []
        for device in config.devices:
            factory = _FACTORIES.get(device.kind)
            if factory is None:
                raise BridgeError("config", f"тип устройства {device.kind} не поддерживается этой сборкой",
                                  f"device kind {device.kind} is not supported by this build")
            entries.append(DeviceEntry(device, factory(device)))
        return cls(entries)

    def by_token(self, token: str | None) -> DeviceEntry | None:
        return self._by_token.get(token.lower()) if token else None

    def resolve(self, headers: RequestHeaders, roles: set[str], *,
                token_required: bool) -> tuple[dict[str, DeviceEntry], list[FieldError]]:
        """The device of each role (`kkt`, `bnk`) a request needs, or the reasons it names none."""
        found: dict[str, DeviceEntry] = {}
        errors: list[FieldError] = []
        for legacy in headers.legacy_tokens:
            if legacy not in self._by_token:
                errors.append(FieldError(f"headers.{legacy}", "unknown_token",
                                         "неизвестный токен устройства (в имени заголовка, стиль API 1.2)",
                                         "unknown device token (as a header name, API 1.2 style)"))
        for role in sorted(roles):
            header = "BIT_KKT_TOKEN" if role == "kkt" else "BIT_BNK_TRM_TOKEN"
            what_ru, what_en = ("ККТ", "register") if role == "kkt" else ("банковский терминал", "bank terminal")
            named = headers.kkt_token if role == "kkt" else headers.bnk_token
            legacy = [e for t in headers.legacy_tokens if (e := self.by_token(t)) is not None and e.role == role]
            if named and any(entry.token != named for entry in legacy):
                errors.append(FieldError(f"headers.{header}", "conflicting_tokens",
                                         f"в запросе два разных токена устройств типа «{what_ru}»: {header} и "
                                         "токен в имени заголовка (стиль API 1.2); оставьте один",
                                         f"the request names two different {what_en}s: {header} and a token as a "
                                         "header name (API 1.2 style); send one"))
                continue
            if named:
                entry = self.by_token(named)
                if entry is None:
                    errors.append(FieldError(f"headers.{header}", "unknown_token",
                                             f"нет устройства с таким токеном; проверьте {header} в настройках CMS",
                                             f"no device has this token; check {header} in the CMS settings"))
                elif entry.role != role:
                    errors.append(FieldError(f"headers.{header}", "wrong_token",
                                             f"этот токен принадлежит не устройству типа «{what_ru}»",
                                             f"this token belongs to a device that is not a {what_en}"))
                else:
                    found[role] = entry
                continue
            if len(legacy) == 1:
                found[role] = legacy[0]
                continue
            if len(legacy) > 1:
                errors.append(FieldError("headers", "ambiguous_token",
                                         f"в запросе несколько токенов устройств типа «{what_ru}»",
                                         f"the request names several {what_en}s"))
                continue
            if token_required:
                errors.append(FieldError(f"headers.{header}", "token_required",
                                         f"нужен заголовок {header}: запрос без Origin или извне должен указать токен",
                                         f"{header} is required: a request without an Origin, or from outside, must "
                                         "name the device"))
                continue
            candidates = [e for e in self.entries if e.role == role]
            marked = [e for e in candidates if e.config.default]
            if len(candidates) == 1 or len(marked) == 1:
                found[role] = marked[0] if marked else candidates[0]
            elif not candidates:
                errors.append(FieldError(f"headers.{header}", "no_device",
                                         f"в настройках драйвера нет устройства типа «{what_ru}»",
                                         f"the driver has no {what_en} configured"))
            else:
                errors.append(FieldError(f"headers.{header}", "token_required",
                                         f"настроено несколько устройств типа «{what_ru}»: укажите {header} "
                                         "(или отметьте одно default = true в настройках драйвера)",
                                         f"several {what_en}s are configured: send {header} (or mark one "
                                         "default = true in the driver's configuration)"))
        return found, errors

    async def connect_all(self) -> None:
        """Connect every device now, so the first request does not wait; failures are only logged."""
        for entry in self.entries:
            async with entry.lock:
                try:
                    await entry.ensure_connected()
                except BridgeError as exc:
                    log.warning("%s (%s): %s", entry.config.name, entry.describe(), exc.text())

    async def close_all(self) -> None:
        for entry in self.entries:
            try:
                await entry.adapter.close()
            except Exception as exc:  # closing must not stop the others from closing
                log.warning("%s: close failed: %s", entry.config.name, exc)
            entry.connected = False
