"""The driver's configuration: a TOML file, read into typed values, every mistake named with its key.

The commented example is `config.example.toml` at the repository root; keep the two in step. Each device gets a
32-hex token (the one CMS pages send as BIT_KKT_TOKEN / BIT_BNK_TRM_TOKEN); `add_device` appends a device to a
file without touching the rest of it, comments included.
"""

from __future__ import annotations

import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from ..bitapi import ReceiptDefaults
from ..fiscal import BridgeError, FieldError, Limits, Measure, PaymentMethod, PaymentObject, TaxationSystem, VatRate

__all__ = [
    "DEFAULT_PORT",
    "ConfigError",
    "DeviceConfig",
    "DriverConfig",
    "add_device",
    "load_config",
    "new_token",
    "parse_config",
]

DEFAULT_PORT = 44735
KINDS = {"atol": "kkt", "mercury": "kkt", "arcus": "bnk"}
# The connection settings each kind takes (besides name, kind, token and the receipt defaults).
OPTIONS = {
    "atol": {"tcp", "serial", "baudrate", "protocol", "password", "mode_password"},
    "mercury": {"url", "port_name", "baudrate", "model", "serial_number", "timeout"},
    "arcus": {"library", "operations", "print_slip", "reverse_on_failure", "slip_file", "emulator"},
}
_TOKEN = re.compile(r"[0-9a-f]{32}")
_TAXATION_NAMES = {"osn": TaxationSystem.OSN, "usn_income": TaxationSystem.USN_INCOME,
                   "usn_income_outcome": TaxationSystem.USN_INCOME_OUTCOME, "envd": TaxationSystem.ENVD,
                   "esn": TaxationSystem.ESHN, "eshn": TaxationSystem.ESHN, "patent": TaxationSystem.PATENT}


class ConfigError(BridgeError):
    def __init__(self, fields: list[FieldError], source: str = "") -> None:
        where = f" ({source})" if source else ""
        first = fields[0]
        super().__init__(code="config", ru=f"ошибка в настройках{where}: {first.path}: {first.ru}",
                         en=f"configuration error{where}: {first.path}: {first.en}", fields=tuple(fields))


def new_token() -> str:
    """A device token: 32 hex characters, as the vendor's cabinet issues them."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    kind: str  # atol, mercury, arcus
    token: str
    options: dict[str, Any] = field(default_factory=dict)  # the kind's own connection settings, as written
    defaults: ReceiptDefaults = ReceiptDefaults()
    limits: Limits = Limits()
    inn: str | None = None

    @property
    def role(self) -> str:
        """`kkt` for registers, `bnk` for bank terminals."""
        return KINDS[self.kind]


@dataclass(frozen=True)
class DriverConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow_external: bool = False  # "режим извне": listen beyond loopback; then every request needs a token
    allowed_origins: tuple[str, ...] = ()
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("kktbridge", appauthor=False)))
    journal: Path | None = None
    devices: tuple[DeviceConfig, ...] = ()
    source: str = ""

    @property
    def journal_path(self) -> Path:
        return self.journal if self.journal is not None else self.data_dir / "journal.sqlite3"


def load_config(path: Path | str) -> DriverConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([FieldError(str(path), "missing", "файл настроек не найден; создайте его командой "
                                      "`kktbridge driver add-device`", "the configuration file does not exist; "
                                      "create it with `kktbridge driver add-device`")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([FieldError(str(path), "toml", f"неверный TOML: {exc}", f"invalid TOML: {exc}")]) from None
    return parse_config(data, base=path.parent, source=str(path))


def parse_config(data: dict[str, Any], *, base: Path = Path("."), source: str = "") -> DriverConfig:
    errors: list[FieldError] = []

    def bad(path: str, ru: str, en: str, code: str = "value") -> None:
        errors.append(FieldError(path, code, ru, en))

    driver = data.get("driver", {})
    if not isinstance(driver, dict):
        bad("driver", "ожидается таблица [driver]", "a [driver] table is expected")
        driver = {}
    host, port = "127.0.0.1", DEFAULT_PORT
    listen = driver.get("listen", f"{host}:{port}")
    if isinstance(listen, str) and re.fullmatch(r"\[?[\w.:-]*\]?:\d{1,5}", listen):
        host, _, port_text = listen.rpartition(":")
        host, port = host.strip("[]") or "127.0.0.1", int(port_text)
    else:
        bad("driver.listen", "ожидается «адрес:порт», например 127.0.0.1:44735",
            "'host:port' is expected, e.g. 127.0.0.1:44735")
    allow_external = driver.get("allow_external", False)
    if not isinstance(allow_external, bool):
        bad("driver.allow_external", "ожидается true или false", "true or false is expected")
        allow_external = False
    if host not in ("127.0.0.1", "localhost", "::1") and not allow_external:
        bad("driver.listen", f"адрес {host} доступен из сети: включите allow_external = true (режим извне; тогда "
            "каждый запрос должен нести токен устройства)", f"{host} is reachable from the network: set "
            "allow_external = true (then every request must carry a device token)")
    data_dir = Path(driver["data_dir"]).expanduser() if "data_dir" in driver else None
    journal = Path(driver["journal"]).expanduser() if "journal" in driver else None
    if data_dir is not None and not data_dir.is_absolute():
        data_dir = base / data_dir
    if journal is not None and not journal.is_absolute():
        journal = (data_dir or base) / journal

    origins = data.get("cors", {}).get("allowed_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        bad("cors.allowed_origins", "ожидается список строк", "a list of strings is expected")
        origins = []
    clean_origins = []
    for index, origin in enumerate(origins):
        origin = origin.strip().rstrip("/")
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            bad(f"cors.allowed_origins[{index}]", f"«{origin}» не похоже на адрес сайта вида https://shop.ru",
                f"'{origin}' is not a site origin like https://shop.ru")
        clean_origins.append(origin.lower())

    devices: list[DeviceConfig] = []
    raw_devices = data.get("devices", [])
    if not isinstance(raw_devices, list):
        bad("devices", "ожидается список [[devices]]", "a list of [[devices]] is expected")
        raw_devices = []
    tokens: set[str] = set()
    for index, raw in enumerate(raw_devices):
        device = _device(raw, f"devices[{index}]", bad)
        if device is None:
            continue
        if device.token in tokens:
            bad(f"devices[{index}].token", "этот токен уже есть у другого устройства",
                "another device has this token already")
        tokens.add(device.token)
        devices.append(device)
    if errors:
        raise ConfigError(errors, source)
    kwargs: dict[str, Any] = {}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    return DriverConfig(host=host, port=port, allow_external=allow_external, allowed_origins=tuple(clean_origins),
                        journal=journal, devices=tuple(devices), source=source, **kwargs)


def _device(raw: Any, at: str, bad) -> DeviceConfig | None:
    if not isinstance(raw, dict):
        bad(at, "ожидается таблица [[devices]]", "a [[devices]] table is expected")
        return None
    kind = raw.get("kind")
    if kind not in KINDS:
        bad(f"{at}.kind", f"неизвестный тип устройства «{kind}»; известны: {', '.join(KINDS)}",
            f"unknown device kind '{kind}'; known: {', '.join(KINDS)}")
        return None
    token = str(raw.get("token", "")).lower()
    if not _TOKEN.fullmatch(token):
        bad(f"{at}.token", "токен — 32 шестнадцатеричных символа (создаётся `kktbridge driver add-device`)",
            "a token is 32 hex characters (made by `kktbridge driver add-device`)")
        return None
    defaults, limits = _receipt_settings(raw, at, bad)
    known = {"name", "kind", "token", "inn", "taxation", "vat", "payment_method", "payment_object", "measure",
             "time_zone", "max_items"}
    options = {key: value for key, value in raw.items() if key not in known}
    for key in sorted(set(options) - OPTIONS[kind]):
        bad(f"{at}.{key}", f"неизвестная настройка «{key}» для {kind}; допустимы: {', '.join(sorted(OPTIONS[kind]))}",
            f"unknown setting '{key}' for {kind}; known: {', '.join(sorted(OPTIONS[kind]))}")
    if kind == "arcus":
        _arcus_options(options, at, bad)
    inn = raw.get("inn")
    if inn is not None:
        from ..fiscal import is_valid_inn

        if not (isinstance(inn, str) and is_valid_inn(inn)):
            bad(f"{at}.inn", "ИНН — строка из 10 или 12 цифр с верной контрольной суммой",
                "the INN is a string of 10 or 12 digits with a correct checksum")
    return DeviceConfig(name=str(raw.get("name") or f"{kind} {token[:6]}"), kind=kind, token=token,
                        options=options, defaults=defaults, limits=limits, inn=inn)


def _arcus_options(options: dict[str, Any], at: str, bad) -> None:
    from ..devices.arcus.adapter import OPERATIONS

    operations = options.get("operations", {})
    if not isinstance(operations, dict):
        bad(f"{at}.operations", "ожидается таблица { purchase = 1, ... }", "a table { purchase = 1, ... } is expected")
    else:
        for name, code in operations.items():
            if name not in OPERATIONS:
                bad(f"{at}.operations.{name}", f"неизвестная операция; допустимы: {', '.join(OPERATIONS)}",
                    f"unknown operation; known: {', '.join(OPERATIONS)}")
            elif not isinstance(code, int) or isinstance(code, bool):
                bad(f"{at}.operations.{name}", "код операции — целое число из ops.ini терминала",
                    "an operation code is an integer from the terminal's ops.ini")
    for flag in ("print_slip", "reverse_on_failure"):
        if flag in options and not isinstance(options[flag], bool):
            bad(f"{at}.{flag}", "ожидается true или false", "true or false is expected")
    if "emulator" in options and not isinstance(options["emulator"], dict):
        bad(f"{at}.emulator", "ожидается таблица настроек эмулятора", "a table of emulator settings is expected")


def _receipt_settings(raw: dict, at: str, bad) -> tuple[ReceiptDefaults, Limits]:
    taxation = None
    if "taxation" in raw:
        value = raw["taxation"]
        try:
            taxation = _TAXATION_NAMES[value] if isinstance(value, str) else TaxationSystem.from_client_value(value)
        except (KeyError, ValueError, TypeError):
            bad(f"{at}.taxation", f"неизвестная система налогообложения «{value}»; допустимы "
                f"{', '.join(_TAXATION_NAMES)} или 0–5", f"unknown taxation '{value}'; use "
                f"{', '.join(_TAXATION_NAMES)} or 0–5")

    def code(key: str, enum, default):
        if key not in raw:
            return default
        try:
            return enum(raw[key])
        except (ValueError, TypeError):
            bad(f"{at}.{key}", f"неизвестный код {raw[key]!r}", f"unknown code {raw[key]!r}")
            return default

    defaults = ReceiptDefaults(
        taxation=taxation,
        vat=code("vat", VatRate, None),
        payment_method=code("payment_method", PaymentMethod, PaymentMethod.FULL_PAYMENT),
        payment_object=code("payment_object", PaymentObject, PaymentObject.COMMODITY),
        measure=code("measure", Measure, Measure.PIECE),
        time_zone=raw.get("time_zone"),
    )
    max_items = raw.get("max_items", Limits().max_items)
    if not isinstance(max_items, int) or not 1 <= max_items <= 1000:
        bad(f"{at}.max_items", "ожидается число позиций от 1 до 1000", "a number of items from 1 to 1000 is expected")
        max_items = Limits().max_items
    return defaults, Limits(max_items=max_items)


def add_device(path: Path | str, kind: str, *, name: str | None = None, token: str | None = None,
               **options: Any) -> DeviceConfig:
    """Append a device to the configuration file (created if missing); returns it with its token."""
    path = Path(path)
    entry: dict[str, Any] = {"name": name or f"{kind}", "kind": kind, "token": (token or new_token()).lower()}
    entry.update({key: value for key, value in options.items() if value is not None})
    text = path.read_text(encoding="utf-8") if path.exists() else _NEW_FILE
    block = "[[devices]]\n" + "".join(f"{key} = {_toml_value(value)}\n" for key, value in entry.items())
    candidate = text.rstrip("\n") + "\n\n" + block
    config = parse_config(tomllib.loads(candidate), base=path.parent, source=str(path))  # validate before writing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(candidate, encoding="utf-8")
    return config.devices[-1]


def _toml_value(value: Any) -> str:
    """A value as TOML, tables inline (they belong to the [[devices]] entry being written)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


_NEW_FILE = """# kktbridge driver configuration. The commented example with every setting: config.example.toml

[driver]
listen = "127.0.0.1:44735"

[cors]
# The sites whose pages may send commands to this driver, e.g. ["https://shop.example.ru"].
allowed_origins = []
"""
