"""The driver's configuration: the example file reads, every mistake is named, devices are added in place."""

from pathlib import Path

import pytest

from kktbridge.driver.config import ConfigError, add_device, load_config, parse_config
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
    assert "add-device" in info.value.en
    (tmp_path / "bad.toml").write_text("[driver\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bad.toml")
    assert info.value.fields[0].code == "toml"
