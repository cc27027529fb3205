"""The driver's configuration: a TOML file, read into typed values, every mistake named with its key.

The commented example is `config.example.toml` at the repository root; keep the two in step. Each device gets a
32-hex token (the one CMS pages send as BIT_KKT_TOKEN / BIT_BNK_TRM_TOKEN); `add_device` appends a device to a
file without touching the rest of it, comments included. Each configuration file gets its own journal unless
it names one: two drivers with different files never share packets or numbering.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from ..bitapi import ReceiptDefaults
from ..fiscal import (BridgeError, FieldError, Limits, Measure, PaymentMethod, PaymentObject, TaxationSystem, VatRate,
                      shown)

__all__ = [
    "DEFAULT_PORT",
    "CloudSettings",
    "ConfigError",
    "DeviceConfig",
    "DriverConfig",
    "add_device",
    "default_data_dir",
    "load_config",
    "new_token",
    "parse_config",
    "set_cloud",
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
        super().__init__(code="config", ru=f"ошибка в настройках{where}", en=f"configuration error{where}",
                         fields=tuple(fields))


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
    strict: bool = False  # refuse what the vendor's clients send short or inconsistent instead of adjusting it
    default: bool = False  # with several devices of its kind, the one a page without a token means

    @property
    def role(self) -> str:
        """`kkt` for registers, `bnk` for bank terminals."""
        return KINDS[self.kind]


@dataclass(frozen=True)
class CloudSettings:
    """The [cloud] section: the driver's outbound link to the kktbridge cloud (issue 13)."""

    urls: tuple[str, ...]  # the cloud's base URLs (https://cloud.example.ru); several: tried in turn
    key: str  # the driver key the cloud issued (`kktbridge cloud driver add`)
    via: str = "auto"  # auto (WebSocket, long-poll when it is blocked) | ws | poll

    @property
    def url(self) -> str:
        return self.urls[0]


@dataclass(frozen=True)
class DriverConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow_external: bool = False  # "режим извне": listen beyond loopback; then every request needs a token
    external_names: tuple[str, ...] = ()  # Host names (beyond loopback and IP literals) the driver answers to
    tls_cert: Path | None = None  # both set: the driver speaks HTTPS
    tls_key: Path | None = None
    header_timeout: float = 10.0  # seconds to send the request line and headers (and to finish a TLS handshake)
    body_timeout: float = 10.0  # seconds to send the body once the headers are in; also to take the answer
    max_connections: int = 100  # connections open at once; more are answered 503 and closed
    allowed_origins: tuple[str, ...] = ()
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    journal: Path | None = None
    devices: tuple[DeviceConfig, ...] = ()
    source: str = ""
    replay_window: timedelta = timedelta(hours=72)  # a sale, payment or refund resent under its order id replays
    service_retry: timedelta = timedelta(minutes=10)  # a shift or report command resent under its order id replays
    retention: timedelta = timedelta(days=180)  # finished packets kept this long; commands in doubt always
    strict: bool = False  # the default of every device's `strict`
    origin_advice: tuple[str, str] | None = None  # (ru, en) how to allow a refused site; None: the file's [cors]
    cloud: CloudSettings | None = None  # the link to the cloud; None: not linked

    @property
    def journal_path(self) -> Path:
        return self.journal if self.journal is not None else self.data_dir / "journal.sqlite3"


def default_data_dir() -> Path:
    """The user's data folder: ~/.local/share/kktbridge on Linux, %LOCALAPPDATA%\\kktbridge on Windows."""
    return Path(platformdirs.user_data_dir("kktbridge", appauthor=False))


def journal_for(config_file: Path, data_dir: Path) -> Path:
    """The default journal of a configuration file: named after the file and its full path, in the data folder."""
    resolved = config_file.resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:8]
    return data_dir / f"journal-{resolved.stem}-{digest}.sqlite3"


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
    return parse_config(data, base=path.parent, source=str(path), config_file=path)


def parse_config(data: dict[str, Any], *, base: Path = Path("."), source: str = "",
                 config_file: Path | None = None) -> DriverConfig:
    """A configuration from TOML data. Without a `journal` key the journal is `journal.sqlite3` in `data_dir`, or,
    for a `config_file` and no `data_dir` key, one of its own in the user's data folder (`journal_for`)."""
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
    network = _network_settings(driver, base, bad)
    data_dir = Path(driver["data_dir"]).expanduser() if "data_dir" in driver else None
    journal = Path(driver["journal"]).expanduser() if "journal" in driver else None
    if data_dir is not None and not data_dir.is_absolute():
        data_dir = base / data_dir
    if journal is not None and not journal.is_absolute():
        journal = (data_dir or base) / journal
    if journal is None and data_dir is None and config_file is not None:
        journal = journal_for(config_file, default_data_dir())
    strict = driver.get("strict", False)
    if not isinstance(strict, bool):
        bad("driver.strict", "ожидается true или false", "true or false is expected")
        strict = False

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

    windows = _journal_settings(data.get("journal", {}), bad)
    cloud = _cloud_settings(data["cloud"], bad) if "cloud" in data else None

    devices: list[DeviceConfig] = []
    raw_devices = data.get("devices", [])
    if not isinstance(raw_devices, list):
        bad("devices", "ожидается список [[devices]]", "a list of [[devices]] is expected")
        raw_devices = []
    tokens: set[str] = set()
    defaults_of: dict[str, str] = {}  # role → the device marked default
    for index, raw in enumerate(raw_devices):
        device = _device(raw, f"devices[{index}]", bad, strict)
        if device is None:
            continue
        if device.token in tokens:
            bad(f"devices[{index}].token", "этот токен уже есть у другого устройства",
                "another device has this token already")
        tokens.add(device.token)
        if device.default:
            if device.role in defaults_of:
                bad(f"devices[{index}].default", f"устройство по умолчанию этого типа уже есть: "
                    f"{defaults_of[device.role]}", f"a default device of this kind is set already: "
                    f"{defaults_of[device.role]}")
            defaults_of.setdefault(device.role, device.name)
        devices.append(device)
    if errors:
        raise ConfigError(errors, source)
    kwargs: dict[str, Any] = {}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    return DriverConfig(host=host, port=port, allow_external=allow_external, allowed_origins=tuple(clean_origins),
                        journal=journal, devices=tuple(devices), source=source, strict=strict, cloud=cloud, **windows,
                        **network, **kwargs)


_CLOUD_URL = re.compile(r"https?://[^/\s?#]+(/[^\s?#]*)?")
CLOUD_VIA = ("auto", "ws", "poll")


def _cloud_settings(table: Any, bad) -> CloudSettings | None:
    """The [cloud] table: url (one or a list), key, via."""
    if not isinstance(table, dict):
        bad("cloud", "ожидается таблица [cloud]", "a [cloud] table is expected")
        return None
    for key in sorted(set(table) - {"url", "key", "via"}):
        bad(f"cloud.{key}", "неизвестная настройка; допустимы: url, key, via", "unknown setting; known: url, key, via")
    urls = table.get("url")
    urls = [urls] if isinstance(urls, str) else urls
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and _CLOUD_URL.fullmatch(u.strip())
                                                         for u in urls):
        bad("cloud.url", "ожидается адрес облака вида https://cloud.example.ru (или список адресов)",
            "a cloud address like https://cloud.example.ru (or a list of them) is expected")
        urls = []
    key = table.get("key")
    if not isinstance(key, str) or not 8 <= len(key.strip()) <= 200 or not key.strip().isprintable():
        bad("cloud.key", "ожидается ключ драйвера, выданный облаком (kktbridge cloud driver add)",
            "the driver key the cloud issued is expected (kktbridge cloud driver add)")
        key = ""
    via = table.get("via", "auto")
    if via not in CLOUD_VIA:
        bad("cloud.via", f"ожидается одно из: {', '.join(CLOUD_VIA)}", f"one of {', '.join(CLOUD_VIA)} is expected")
        via = "auto"
    if not urls or not key:
        return None
    return CloudSettings(tuple(u.strip().rstrip("/") for u in urls), key.strip(), via)


def set_cloud(path: Path | str, url: str | list[str], key: str, *, via: str = "auto") -> CloudSettings:
    """Write the [cloud] section of a configuration file (replacing one that is there); returns it as read back."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else _NEW_FILE
    kept, skipping = [], False
    for line in text.splitlines():
        header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]", line)
        if header:
            skipping = header[1] == "cloud" and not line.lstrip().startswith("[[")
        if not skipping:
            kept.append(line)
    urls = [url] if isinstance(url, str) else list(url)
    block = (f"[cloud]\nurl = {_toml_value(urls[0] if len(urls) == 1 else urls)}\nkey = {_toml_value(key)}\n"
             f"via = {_toml_value(via)}\n")
    candidate = "\n".join(kept).rstrip("\n") + "\n\n" + block
    config = parse_config(tomllib.loads(candidate), base=path.parent, source=str(path))  # validate before writing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(candidate, encoding="utf-8")
    assert config.cloud is not None
    return config.cloud


_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?")
# setting → (default, lowest, highest)
_LIMITS: dict[str, tuple[float, float, float]] = {"header_timeout": (10.0, 0.1, 600.0),
                                                   "body_timeout": (10.0, 0.1, 600.0),
                                                   "max_connections": (100, 1, 10_000)}


def _network_settings(driver: dict[str, Any], base: Path, bad) -> dict[str, Any]:
    """The [driver] settings of the HTTP layer: outside names, TLS, deadlines, the connection cap."""
    out: dict[str, Any] = {}
    names = driver.get("external_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        bad("driver.external_names", "ожидается список имён, например [\"kassa.shop.ru\"]",
            "a list of names is expected, e.g. [\"kassa.shop.ru\"]")
        names = []
    clean = []
    for index, name in enumerate(names):
        name = name.strip().lower()
        if not _NAME.fullmatch(name):
            bad(f"driver.external_names[{index}]", f"«{shown(name)}» — не имя хоста (без схемы и порта, как "
                "kassa.shop.ru)", f"'{shown(name)}' is not a host name (no scheme or port, like kassa.shop.ru)")
        clean.append(name.rstrip("."))
    out["external_names"] = tuple(clean)
    paths = {}
    for key in ("tls_cert", "tls_key"):
        if key in driver:
            if not isinstance(driver[key], str) or not driver[key]:
                bad(f"driver.{key}", "ожидается путь к файлу PEM", "the path of a PEM file is expected")
                continue
            path = Path(driver[key]).expanduser()
            paths[key] = path if path.is_absolute() else base / path
            if not paths[key].is_file():
                bad(f"driver.{key}", f"файл {paths[key]} не найден", f"the file {paths[key]} does not exist")
    if len(paths) == 1:
        missing = "tls_key" if "tls_cert" in paths else "tls_cert"
        bad(f"driver.{missing}", "для TLS нужны оба файла: tls_cert и tls_key", "TLS needs both tls_cert and tls_key")
    elif paths:
        out.update(paths)
    for key, (default, lowest, highest) in _LIMITS.items():
        value = driver.get(key, default)
        kind = int if isinstance(default, int) else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not lowest <= value <= highest:
            what = "целое число" if kind is int else "число секунд"
            bad(f"driver.{key}", f"ожидается {what} от {lowest:g} до {highest:g}",
                f"a {'whole number' if kind is int else 'number of seconds'} from {lowest:g} to {highest:g} is "
                "expected")
            value = default
        out[key] = value
    return out


# [journal] key → (DriverConfig field, unit, lowest, highest)
_JOURNAL_SETTINGS = {"replay_window_hours": ("replay_window", "hours", 1, 24 * 365),
                     "service_retry_minutes": ("service_retry", "minutes", 0, 24 * 60),
                     "retention_days": ("retention", "days", 1, 3650)}


def _journal_settings(table: Any, bad) -> dict[str, timedelta]:
    """The [journal] table: how long order ids replay, how long finished packets are kept."""
    if not isinstance(table, dict):
        bad("journal", "ожидается таблица [journal]", "a [journal] table is expected")
        return {}
    out: dict[str, timedelta] = {}
    for key in sorted(set(table) - set(_JOURNAL_SETTINGS)):
        bad(f"journal.{key}", f"неизвестная настройка; допустимы: {', '.join(_JOURNAL_SETTINGS)}",
            f"unknown setting; known: {', '.join(_JOURNAL_SETTINGS)}")
    for key, (name, unit, low, high) in _JOURNAL_SETTINGS.items():
        if key not in table:
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            bad(f"journal.{key}", f"ожидается целое число от {low} до {high}", f"a whole number from {low} to {high}"
                " is expected")
            continue
        out[name] = timedelta(**{unit: value})
    if "replay_window" in out and "retention" in out and out["retention"] < out["replay_window"]:
        bad("journal.retention_days", "хранение журнала короче окна повторов", "the retention is shorter than the "
            "replay window")
    return out


def _device(raw: Any, at: str, bad, driver_strict: bool) -> DeviceConfig | None:
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
             "time_zone", "max_items", "strict", "default"}
    options = {key: value for key, value in raw.items() if key not in known}
    for key in sorted(set(options) - OPTIONS[kind]):
        bad(f"{at}.{key}", f"неизвестная настройка «{key}» для {kind}; допустимы: {', '.join(sorted(OPTIONS[kind]))}",
            f"unknown setting '{key}' for {kind}; known: {', '.join(sorted(OPTIONS[kind]))}")
    if kind == "arcus":
        _arcus_options(options, at, bad)
    if kind == "atol":
        _atol_options(options, at, bad)
    inn = raw.get("inn")
    if inn is not None:
        from ..fiscal import is_valid_inn

        if not (isinstance(inn, str) and is_valid_inn(inn)):
            bad(f"{at}.inn", "ИНН — строка из 10 или 12 цифр с верной контрольной суммой",
                "the INN is a string of 10 or 12 digits with a correct checksum")
    flags = {}
    for flag, default in (("strict", driver_strict), ("default", False)):
        flags[flag] = raw.get(flag, default)
        if not isinstance(flags[flag], bool):
            bad(f"{at}.{flag}", "ожидается true или false", "true or false is expected")
            flags[flag] = default
    if "strict" in raw and KINDS[kind] != "kkt":
        bad(f"{at}.strict", "strict задаётся для касс (atol, mercury): он решает, как читаются их чеки",
            "strict is set on registers (atol, mercury): it decides how their receipts are read")
    return DeviceConfig(name=str(raw.get("name") or f"{kind} {token[:6]}"), kind=kind, token=token,
                        options=options, defaults=defaults, limits=limits, inn=inn, **flags)


_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[\w.-]+):(\d{1,5})")


def _atol_options(options: dict[str, Any], at: str, bad) -> None:
    """An ATOL register's link settings, checked here so that a typo is named at once, not when it connects."""
    tcp = options.get("tcp")
    if tcp is not None:
        match = _ADDRESS.fullmatch(tcp) if isinstance(tcp, str) else None
        if match is None or not int(match[2]) <= 65535:
            bad(f"{at}.tcp", "ожидается «адрес:порт» с портом до 65535, например 192.168.1.50:5555",
                "'host:port' with a port up to 65535 is expected, e.g. 192.168.1.50:5555")
    baudrate = options.get("baudrate")
    if baudrate is not None and baudrate != "auto" and (isinstance(baudrate, bool) or not isinstance(baudrate, int)
                                                        or not 300 <= baudrate <= 4_000_000):
        bad(f"{at}.baudrate", "ожидается скорость порта (например 115200) или \"auto\"",
            "a serial speed (e.g. 115200) or \"auto\" is expected")
    if options.get("protocol", "v3") not in ("v3", "v2"):
        bad(f"{at}.protocol", "ожидается \"v3\" или \"v2\"", "\"v3\" or \"v2\" is expected")
    for key, digits in (("password", 4), ("mode_password", 8)):  # BCD widths of the ATOL commands
        value = options.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**digits:
            bad(f"{at}.{key}", f"ожидается число из не более чем {digits} цифр", f"a number of at most {digits} "
                "digits is expected")


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
    # Also sets how much JSON a packet for this register may hold (bitapi.jsontext.Bounds.for_items).
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
