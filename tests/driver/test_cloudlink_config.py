"""The driver's [cloud] section: read with every mistake named, and written by `kktbridge driver link`."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from kktbridge.driver.config import ConfigError, add_device, load_config, parse_config, set_cloud


def test_the_cloud_section_is_read_with_its_urls_key_and_transport():
    config = parse_config({"cloud": {"url": "https://cloud.example.ru/", "key": "kkd_secret123"}})
    assert config.cloud.urls == ("https://cloud.example.ru",) and config.cloud.via == "auto"
    several = parse_config({"cloud": {"url": ["http://a:8080", "https://b.example.ru"], "key": "kkd_secret123",
                                      "via": "poll"}})
    assert several.cloud.urls == ("http://a:8080", "https://b.example.ru") and several.cloud.via == "poll"
    assert parse_config({}).cloud is None


@pytest.mark.parametrize("table, path", [
    ({"url": "ftp://cloud", "key": "kkd_secret123"}, "cloud.url"),
    ({"url": [], "key": "kkd_secret123"}, "cloud.url"),
    ({"url": "https://cloud.example.ru", "key": "short"}, "cloud.key"),
    ({"url": "https://cloud.example.ru"}, "cloud.key"),
    ({"url": "https://cloud.example.ru", "key": "kkd_secret123", "via": "carrier pigeon"}, "cloud.via"),
    ({"url": "https://cloud.example.ru", "key": "kkd_secret123", "proxy": "x"}, "cloud.proxy"),
])
def test_a_wrong_cloud_setting_is_named(table, path):
    with pytest.raises(ConfigError) as caught:
        parse_config({"cloud": table})
    assert path in [field.path for field in caught.value.fields]


def test_link_writes_the_section_once_and_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "kktbridge.toml"
    device = add_device(path, "atol", name="Касса", tcp="127.0.0.1:5555")
    set_cloud(path, "https://old.example.ru", "kkd_oldkey123")
    add_device(path, "mercury", name="Меркурий", port_name="COM1")
    done = subprocess.run([sys.executable, "-m", "kktbridge", "driver", "--config", str(path), "link",
                           "https://a.example.ru", "https://b.example.ru", "kkd_newkey123", "--via", "ws"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cloud"] == ["https://a.example.ru", "https://b.example.ru"]
    config = load_config(path)
    assert config.cloud.urls == ("https://a.example.ru", "https://b.example.ru") and config.cloud.key == "kkd_newkey123"
    assert config.cloud.via == "ws"
    assert [d.token for d in config.devices][0] == device.token and len(config.devices) == 2
    assert path.read_text(encoding="utf-8").count("[cloud]") == 1
    assert tomllib.loads(path.read_text(encoding="utf-8"))["cloud"]["key"] == "kkd_newkey123"
    refused = subprocess.run([sys.executable, "-m", "kktbridge", "driver", "--config", str(path), "link",
                              "not a url", "kkd_newkey123"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "cloud.url" in refused.stderr and "Traceback" not in refused.stderr
    assert load_config(path).cloud.key == "kkd_newkey123"  # a refused link changes nothing
