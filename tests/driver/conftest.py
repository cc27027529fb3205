"""A driver on a real port with emulated ATOL registers behind it, and an HTTP client."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from kktbridge.driver.app import Driver
from kktbridge.driver.config import new_token, parse_config
from kktbridge.emulators.atol.server import AtolEmulator
from kktbridge.emulators.fncore import read_journal

ORIGIN = "https://shop.example.ru"


class Stand:
    def __init__(self, driver: Driver, url: str, emulators: list[AtolEmulator], tokens: list[str], tmp: Path,
                 session: aiohttp.ClientSession) -> None:
        self.driver, self.url, self.emulators, self.tokens, self.tmp, self.session = (
            driver, url, emulators, tokens, tmp, session)

    @property
    def token(self) -> str:
        return self.tokens[0]

    def receipts(self, index: int = 0) -> list[dict]:
        return [r for r in read_journal(self.tmp / f"atol{index}.jsonl") if r["doc"] == "receipt"]

    def documents(self, index: int = 0) -> list[dict]:
        return [r for r in read_journal(self.tmp / f"atol{index}.jsonl") if r.get("fd") is not None]

    async def post(self, body, headers: dict | None = None, *, origin: str | None = ORIGIN):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False)
        headers = dict(headers or {})
        if origin:
            headers["Origin"] = origin
        async with self.session.post(self.url, data=data.encode() if isinstance(data, str) else data,
                                     headers=headers) as response:
            return response.status, await response.json(content_type=None), response.headers


async def make_stand(tmp_path: Path, registers: int = 1, *, terminal: Path | None = None,
                     terminal_options: dict | None = None, mercury: bool = False, mercury_options: dict | None = None,
                     settings: dict | None = None, **driver_options) -> Stand:
    """Emulated ATOL registers (`registers` of them), optionally a Mercury register (its journal is
    `mercury.jsonl`, its token comes after the ATOL ones) and an Arcus terminal (its token last).
    `settings` go into the [driver] table."""
    emulators, devices, tokens = [], [], []
    for index in range(registers):
        emulator = AtolEmulator(state_path=tmp_path / f"atol{index}.json", journal_path=tmp_path / f"atol{index}.jsonl",
                                fsync=False)
        host, port = await emulator.serve_tcp("127.0.0.1", 0)
        token = new_token()
        emulators.append(emulator)
        tokens.append(token)
        devices.append({"name": f"Касса {index + 1}", "kind": "atol", "token": token, "tcp": f"{host}:{port}",
                        "vat": 6})
    if mercury:
        from kktbridge.emulators.fncore import Registration
        from kktbridge.emulators.mercury.server import MercuryEmulator

        service = MercuryEmulator(state_path=tmp_path / "mercury.json", journal_path=tmp_path / "mercury.jsonl",
                                  fsync=False, registration=Registration(fn_number="9999078900054321"))
        await service.serve_http("127.0.0.1", 0)
        emulators.append(service)
        token = new_token()
        tokens.append(token)
        devices.append({"name": "Меркурий", "kind": "mercury", "token": token, "url": service.url,
                        "port_name": "COM1", "vat": 6, **(mercury_options or {})})
    if terminal is not None:
        token = new_token()
        tokens.append(token)
        devices.append({"name": "Терминал", "kind": "arcus", "token": token, "library": str(terminal),
                        "emulator": {"state_file": str(tmp_path / "arcus.txt"), "slip_file": str(tmp_path / "cheq.out")},
                        **(terminal_options or {})})
    config = parse_config({"driver": {"listen": "127.0.0.1:0", "data_dir": str(tmp_path), **(settings or {})},
                           "cors": {"allowed_origins": [ORIGIN]}, "devices": devices, **driver_options})
    driver = Driver(config)
    url = await driver.start()
    await driver.ready()
    return Stand(driver, url, emulators, tokens, tmp_path, aiohttp.ClientSession())


async def close_stand(stand: Stand) -> None:
    await stand.session.close()
    await stand.driver.stop()
    for emulator in stand.emulators:
        await emulator.close()


@pytest.fixture
async def stand(tmp_path):
    stand = await make_stand(tmp_path)
    yield stand
    await close_stand(stand)


@pytest.fixture
async def two_registers(tmp_path):
    stand = await make_stand(tmp_path, registers=2)
    yield stand
    await close_stand(stand)


@pytest.fixture
async def shop(tmp_path, arccom_library):
    """An ATOL register and the Arcus emulator library behind the driver (the register's token first)."""
    stand = await make_stand(tmp_path, terminal=arccom_library)
    yield stand
    await close_stand(stand)
