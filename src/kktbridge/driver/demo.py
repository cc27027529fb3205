"""`kktbridge demo`: the driver with emulated devices (ATOL and Mercury registers, an Arcus2 terminal), ready for a
CMS page. With several registers, a packet names its register with BIT_KKT_TOKEN.

Everything lives in one data directory (kept between runs, so device tokens and document numbers stay):
the driver's configuration and journal, each emulator's fiscal storage, journal and paper tape, and the arccom
emulator library, compiled with the system C compiler on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import platformdirs

from ..emulators.arcus.build import build_library
from ..emulators.atol.server import AtolEmulator
from ..emulators.fncore import Registration
from ..emulators.mercury.server import MercuryEmulator
from ..fiscal import BridgeError
from .cli import serve_forever
from .config import DEFAULT_PORT, add_device, load_config, parse_config

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON line when ready (for scripts and tests)")
    parser.add_argument("--driver-port", type=int, default=DEFAULT_PORT, help="the driver's port (default 44735)")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(platformdirs.user_data_dir("kktbridge", appauthor=False)) / "demo",
                        help="where the demo keeps its configuration, journals and emulator state")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="a site allowed to send packets, e.g. https://my-cms.local (repeatable)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    data = args.data_dir
    data.mkdir(parents=True, exist_ok=True)
    config_path = data / "demo.toml"  # keeps the tokens between runs, so a CMS configured once keeps working
    kinds = {device.kind for device in load_config(config_path).devices} if config_path.exists() else set()
    if "atol" not in kinds:
        add_device(config_path, "atol", name="АТОЛ (эмулятор)", tcp="127.0.0.1:0")
    if "mercury" not in kinds:
        add_device(config_path, "mercury", name="Меркурий (эмулятор)", port_name="COM1")
    if "arcus" not in kinds:
        add_device(config_path, "arcus", name="Arcus2 (эмулятор)")
    tokens = {device.kind: device.token for device in load_config(config_path).devices}
    try:
        library: Path | None = build_library(data / "arcus")
    except BridgeError as exc:  # no C compiler (a bare Windows PC): the demo goes on with the register alone
        print(f"kktbridge demo: эмулятор терминала не собран, демонстрация без него / the terminal emulator was not "
              f"built, the demo runs without it: {exc.text()}", file=sys.stderr)
        library = None

    atol = AtolEmulator(state_path=data / "atol-fn.json", journal_path=data / "atol-journal.jsonl",
                        paper_path=data / "atol-paper.txt")
    host, port = await atol.serve_tcp("127.0.0.1", 0)
    mercury = MercuryEmulator(state_path=data / "mercury-fn.json", journal_path=data / "mercury-journal.jsonl",
                              paper_path=data / "mercury-paper.txt",
                              registration=Registration(fn_number="9999078900054321", reg_number="0000000002054321"))
    await mercury.serve_http("127.0.0.1", 0)
    terminal = {"state_file": str(data / "arcus-operations.txt"), "slip_file": str(data / "arcus-cheq.out")}
    configured: list[dict[str, Any]] = [
        {"name": "АТОЛ (эмулятор)", "kind": "atol", "token": tokens["atol"], "tcp": f"{host}:{port}"},
        {"name": "Меркурий (эмулятор)", "kind": "mercury", "token": tokens["mercury"], "url": mercury.url,
         "port_name": "COM1"}]
    devices: list[dict[str, Any]] = [
        {"kind": "atol", "token": tokens["atol"], "journal": str(data / "atol-journal.jsonl"),
         "paper": str(data / "atol-paper.txt")},
        {"kind": "mercury", "token": tokens["mercury"], "journal": str(data / "mercury-journal.jsonl"),
         "paper": str(data / "mercury-paper.txt")}]
    if library is not None:
        configured.append({"name": "Arcus2 (эмулятор)", "kind": "arcus", "token": tokens["arcus"],
                           "library": str(library), "emulator": terminal})
        devices.append({"kind": "arcus", "token": tokens["arcus"], "library": str(library),
                        "journal": terminal["state_file"], "slip": terminal["slip_file"]})
    config = parse_config({
        "driver": {"listen": f"127.0.0.1:{args.driver_port}", "data_dir": str(data)},
        "cors": {"allowed_origins": args.allow_origin},
        "devices": configured,
    }, base=data, source=str(config_path))

    async def ready(url: str, driver) -> None:
        if args.json:
            print(json.dumps({"driver_url": url, "devices": devices}, ensure_ascii=False), flush=True)
            return
        print(f"kktbridge demo: драйвер слушает {url} / the driver listens on {url}")
        for device in devices:
            header = "BIT_BNK_TRM_TOKEN" if device["kind"] == "arcus" else "BIT_KKT_TOKEN"
            print(f"  {device['kind']}: {header} {device['token']}")
            print(f"    журнал / journal: {device['journal']}")
        print(f"  статус и пример пакета / status and an example packet: {url}/")
        origins = ", ".join(args.allow_origin) or "нет / none (add --allow-origin https://your-cms)"
        print(f"  разрешённые сайты / allowed origins: {origins}")
        print("  Ctrl+C — остановить / to stop", flush=True)

    try:
        return await serve_forever(config, ready)
    finally:
        await atol.close()
        await mercury.close()
