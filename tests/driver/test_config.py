"""The driver's configuration: the example file reads, every mistake is named, devices are added in place."""

import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from kktbridge.driver.config import OPTIONS, ConfigError, add_device, default_data_dir, load_config, parse_config
from kktbridge.fiscal import TaxationSystem, VatRate

EXAMPLE = Path(__file__).parents[2] / "config.example.toml"


def test_the_example_configuration_reads():
    config = load_config(EXAMPLE)
    assert (config.host, config.port, config.allow_external) == ("127.0.0.1", 44735, False)
    assert config.allowed_origins == ("https://shop.example.ru",)
    register, mercury, terminal = config.devices
    assert mercury.kind == "mercury" and mercury.options["port_name"] == "COM4"
    assert register.kind == "atol" and register.role == "kkt" and register.options == {"tcp": "192.168.1.50:5555"}
    assert terminal.kind == "arcus" and terminal.role == "bnk" and terminal.options["library"].endswith("arccom.dll")


def test_defaults_and_options():
    config = parse_config({"devices": [{"kind": "atol", "token": "A" * 32, "serial": "COM3", "baudrate": "auto",
                                        "taxation": "usn_income", "vat": 11, "max_items": 250}]})
    device = config.devices[0]
    assert device.token == "a" * 32 and device.defaults.taxation is TaxationSystem.USN_INCOME
    assert device.defaults.vat is VatRate.VAT22 and device.limits.max_items == 250
    assert parse_config({"devices": [{"kind": "atol", "token": "b" * 32, "taxation": 5}]}).devices[0].defaults.taxation \
        is TaxationSystem.PATENT


def errors(data) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return {f.path: f.en for f in info.value.fields}


def test_every_mistake_is_named():
    found = errors({
        "driver": {"listen": "0.0.0.0:44735"},
        "cors": {"allowed_origins": ["shop.example.ru"]},
        "devices": [{"kind": "shtrih", "token": "x"}, {"kind": "atol", "token": "c" * 32, "tpc": "1.2.3.4"},
                    {"kind": "atol", "token": "c" * 32, "vat": 99, "max_items": 0, "inn": "123"}],
    })
    assert set(found) == {"driver.listen", "cors.allowed_origins[0]", "devices[0].kind", "devices[1].tpc",
                          "devices[2].token", "devices[2].vat", "devices[2].max_items", "devices[2].inn"}
    assert "allow_external" in found["driver.listen"] and "tcp" in found["devices[1].tpc"]


def test_external_listening_must_be_allowed():
    assert parse_config({"driver": {"listen": "0.0.0.0:44736", "allow_external": True}}).host == "0.0.0.0"


def test_add_device_keeps_the_file(tmp_path):
    path = tmp_path / "kktbridge.toml"
    first = add_device(path, "atol", name="Касса 1", tcp="192.168.1.50:5555")
    path.write_text(path.read_text(encoding="utf-8") + "# a comment of the shop's admin\n", encoding="utf-8")
    second = add_device(path, "atol", name="Касса 2", serial="COM3", baudrate=115200)
    text = path.read_text(encoding="utf-8")
    assert "# a comment of the shop's admin" in text and len(first.token) == 32 and first.token != second.token
    assert [d.name for d in load_config(path).devices] == ["Касса 1", "Касса 2"]
    with pytest.raises(ConfigError):
        add_device(path, "atol", token=first.token)  # a token twice is refused, the file is left as it was
    assert path.read_text(encoding="utf-8") == text


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "add-device" in info.value.text_en() and info.value.text_en().count("add-device") == 1
    (tmp_path / "bad.toml").write_text("[driver\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bad.toml")
    assert info.value.fields[0].code == "toml"


def test_strict_for_the_driver_or_per_register():
    lenient = parse_config({"devices": [{"kind": "atol", "token": "a" * 32}]})
    assert lenient.strict is False and lenient.devices[0].strict is False
    config = parse_config({"driver": {"strict": True}, "devices": [
        {"kind": "atol", "token": "a" * 32}, {"kind": "mercury", "token": "b" * 32, "strict": False},
        {"kind": "arcus", "token": "c" * 32}]})
    assert config.strict and [d.strict for d in config.devices] == [True, False, True]
    only_one = parse_config({"devices": [{"kind": "atol", "token": "a" * 32, "strict": True},
                                         {"kind": "atol", "token": "b" * 32}]})
    assert [d.strict for d in only_one.devices] == [True, False]
    found = errors({"driver": {"strict": "yes"}, "devices": [{"kind": "atol", "token": "a" * 32, "strict": 1},
                                                             {"kind": "arcus", "token": "b" * 32, "strict": True}]})
    assert set(found) == {"driver.strict", "devices[0].strict", "devices[1].strict"}
    assert "registers" in found["devices[1].strict"]


def test_one_default_device_per_kind():
    config = parse_config({"devices": [{"kind": "atol", "token": "a" * 32, "default": True},
                                       {"kind": "mercury", "token": "b" * 32}, {"kind": "arcus", "token": "c" * 32}]})
    assert [d.default for d in config.devices] == [True, False, False]
    found = errors({"devices": [{"kind": "atol", "token": "a" * 32, "default": True, "name": "Касса 1"},
                                {"kind": "mercury", "token": "b" * 32, "default": True}]})
    assert set(found) == {"devices[1].default"} and "Касса 1" in found["devices[1].default"]


def test_each_configuration_file_has_its_own_journal(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kktbridge.toml").write_text("[driver]\n", encoding="utf-8")
    first, second = (load_config(tmp_path / name / "kktbridge.toml") for name in ("a", "b"))
    assert first.journal_path != second.journal_path  # the same file name, two folders: two journals
    assert first.journal_path.parent == second.journal_path.parent == default_data_dir()
    assert first.journal_path.name.startswith("journal-kktbridge-")
    assert load_config(tmp_path / "a" / "kktbridge.toml").journal_path == first.journal_path  # stable
    (tmp_path / "c.toml").write_text(f'[driver]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    assert load_config(tmp_path / "c.toml").journal_path == tmp_path / "data" / "journal.sqlite3"
    (tmp_path / "d.toml").write_text('[driver]\njournal = "mine.sqlite3"\n', encoding="utf-8")
    assert load_config(tmp_path / "d.toml").journal_path == tmp_path / "mine.sqlite3"


def test_the_defaults_the_example_shows_are_the_defaults():
    """A commented `# key = value` line not marked "example" shows the default: uncommenting it changes nothing
    (the settings read by the configuration itself; the connection options are the adapters' own)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    base = parse_config(tomllib.loads(text))

    def comparable(config):
        return replace(config, devices=tuple(replace(d, options={}) for d in config.devices))

    checked = []
    for line in text.splitlines():
        found = re.fullmatch(r"# (\w+) = (.+?)\s*(#.*)?", line)
        if not found or "example" in line or found.group(1) in OPTIONS["atol"] | OPTIONS["mercury"] | OPTIONS["arcus"]:
            continue
        changed = parse_config(tomllib.loads(text.replace(line, line[2:], 1)))
        assert comparable(changed) == comparable(base), line
        checked.append(found.group(1))
    assert {"listen", "allow_external", "strict", "default", "payment_method", "max_items", "header_timeout",
            "replay_window_hours", "retention_days"} <= set(checked)


def test_the_http_layer_settings(tmp_path):
    (tmp_path / "c.pem").write_text("x", encoding="utf-8")
    (tmp_path / "k.pem").write_text("x", encoding="utf-8")
    config = parse_config({"driver": {"external_names": ["Kassa.Shop.example."], "tls_cert": "c.pem",
                                      "tls_key": "k.pem", "header_timeout": 2.5, "body_timeout": 3,
                                      "max_connections": 7}}, base=tmp_path)
    assert config.external_names == ("kassa.shop.example",) and config.tls_cert == tmp_path / "c.pem"
    assert (config.header_timeout, config.body_timeout, config.max_connections) == (2.5, 3, 7)
    default = parse_config({})
    assert (default.header_timeout, default.body_timeout, default.max_connections, default.tls_cert) == (
        10.0, 10.0, 100, None)
    with pytest.raises(ConfigError) as info:
        parse_config({"driver": {"external_names": ["https://shop.example:443"], "tls_cert": "c.pem",
                                 "header_timeout": 0, "max_connections": 1.5},
                      "devices": [{"kind": "atol", "token": "a" * 32, "tcp": "h:70000", "baudrate": "fast",
                                   "protocol": "v9", "password": 10**5}]}, base=tmp_path)
    paths = {f.path for f in info.value.fields}
    assert paths == {"driver.external_names[0]", "driver.tls_key", "driver.header_timeout", "driver.max_connections",
                     "devices[0].tcp", "devices[0].baudrate", "devices[0].protocol", "devices[0].password"}
    assert info.value.text().count("driver.tls_key") == 1
