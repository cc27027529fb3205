"""`kktbridge demo`: the driver with emulated devices (ATOL and Mercury registers, an Arcus2 terminal), ready for a
CMS page. A page that sends no token prints on the ATOL register (the default one); BIT_KKT_TOKEN picks the other.
A site is let in with `--allow-origin`, and a refused one is told so.

It also runs the cloud (issue 13) on SQLite in the data directory, with a demo account whose driver and devices
carry the demo's tokens, and links the driver to it: a shop server can post the vendor's cloud form to
`cloud_url` and get the result (callbacks to loopback are allowed in the demo). The account's secrets and the
driver key are kept in `cloud.json` in the data directory (the cloud keeps only the key's hash).

Everything lives in one data directory (kept between runs, so device tokens and document numbers stay):
the driver's configuration and journal, each emulator's fiscal storage, journal and paper tape, the cloud's
database, and the arccom emulator library, compiled with the system C compiler on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..emulators.arcus.build import build_library
from ..emulators.atol.server import AtolEmulator
from ..emulators.fncore import Registration
from ..emulators.mercury.server import MercuryEmulator
from ..fiscal import BridgeError
from .cli import serve_forever
from .config import DEFAULT_PORT, add_device, default_data_dir, load_config, parse_config

__all__ = ["add_arguments"]

DEFAULT_CLOUD_PORT = 44736


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON line when ready (for scripts and tests)")
    parser.add_argument("--driver-port", type=int, default=DEFAULT_PORT, help="the driver's port (default 44735)")
    parser.add_argument("--cloud-port", type=int, default=None,
                        help=f"the demo cloud's port (default {DEFAULT_CLOUD_PORT}, or a free one when that is taken; "
                        "0: any free port)")
    parser.add_argument("--data-dir", type=Path,
                        default=default_data_dir() / "demo",
                        help="where the demo keeps its configuration, journals and emulator state")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="a site allowed to send packets, e.g. https://my-cms.local (repeatable)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
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
        {"name": "АТОЛ (эмулятор)", "kind": "atol", "token": tokens["atol"], "tcp": f"{host}:{port}", "default": True},
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
    try:
        cloud, account = await _cloud(data, args.cloud_port, tokens)
    except OSError as exc:
        await atol.close()
        await mercury.close()
        print(f"kktbridge demo: облако не может слушать порт {args.cloud_port}: {exc.strerror} / the cloud cannot "
              f"listen on port {args.cloud_port}: {exc.strerror}", file=sys.stderr)
        return 1
    config = parse_config({
        "driver": {"listen": f"127.0.0.1:{args.driver_port}", "data_dir": str(data)},
        # The demo cloud's own test page (/api/test) runs packets on this driver too, under either loopback name.
        "cors": {"allowed_origins": [*args.allow_origin, *_own_origins(cloud.url)]},
        "devices": configured,
        "cloud": {"url": cloud.url, "key": account["driver_key"]},
    }, base=data, source=str(config_path))
    config = replace(config, origin_advice=("перезапустите демонстрацию с --allow-origin {origin}",
                                            "restart the demo with --allow-origin {origin}"))

    async def ready(url: str, driver) -> None:
        for _ in range(200):  # linked before a script is told to post to the cloud
            if driver.cloud.state == "online":
                break
            await asyncio.sleep(0.05)
        if args.json:
            print(json.dumps({"driver_url": url, "devices": devices, "cloud_url": cloud.url, **account},
                             ensure_ascii=False), flush=True)
            return
        print(f"kktbridge demo: драйвер слушает {url} / the driver listens on {url}")
        for device in devices:
            header = "BIT_BNK_TRM_TOKEN" if device["kind"] == "arcus" else "BIT_KKT_TOKEN"
            default = " (по умолчанию / the default)" if device["kind"] == "atol" else ""
            print(f"  {device['kind']}: {header} {device['token']}{default}")
            print(f"    журнал / journal: {device['journal']}")
        print(f"  статус и пример пакета / status and an example packet: {url}/")
        origins = ", ".join(args.allow_origin) or "нет / none (add --allow-origin https://your-cms)"
        print(f"  разрешённые сайты / allowed origins: {origins}")
        print("  страница с разрешённого сайта может не слать токены: чек пробивается на АТОЛ, оплата на Arcus2; "
              "для Меркурия укажите его BIT_KKT_TOKEN / a page on an allowed site may send no token: receipts go "
              "to the ATOL, card payments to the Arcus2; send the Mercury's BIT_KKT_TOKEN to print there")
        print(f"  облако / the cloud: {cloud.url} (аккаунт / account {account['account_id']}, BIT_DATAINTEGRITY_CODE "
              f"{account['integrity_code']}; связь драйвера / the driver's link: {driver.cloud.state})")
        print(f"  тестовая страница / the test page: {url}/test; {cloud.url}/api/test?BIT_ACCOUNT_ID="
              f"{account['account_id']}&BIT_KKT_TOKEN={tokens['atol']}&BIT_DATAINTEGRITY_CODE="
              f"{account['integrity_code']}&driver={url}")
        print(f"  кабинет / the cabinet: {cloud.url}/cabinet (логин / login {account['cabinet_login']}, пароль / "
              f"password {account['cabinet_password']})")
        print("  Ctrl+C — остановить / to stop", flush=True)

    try:
        return await serve_forever(config, ready)
    finally:
        await cloud.stop()
        await cloud.store.close()
        await atol.close()
        await mercury.close()


def _own_origins(cloud_url: str) -> list[str]:
    """The demo cloud's origin under both loopback names (its pages may be opened as either)."""
    return [cloud_url, cloud_url.replace("//127.0.0.1:", "//localhost:")]


async def _cloud(data: Path, port: int | None, tokens: dict[str, str]):
    """The demo cloud on SQLite in the data directory, with its account, driver and the demo's devices (made once,
    kept in cloud.json); (the running service, the account's credentials for the ready line)."""
    import errno

    from ..cloud import CloudConfig, CloudService
    from ..cloud.provision import add_device, add_driver, add_user, create_account
    from ..cloud.store import AlreadyExists, Store

    store = await Store.open(f"sqlite:///{data / 'cloud.sqlite3'}")
    try:
        saved_path = data / "cloud.json"
        saved = json.loads(saved_path.read_text(encoding="utf-8")) if saved_path.exists() else None
        if saved is None or await store.account(saved["account_id"]) is None:
            account = (await create_account(store, "Демо-магазин")).account
            driver, key = await add_driver(store, account.id, "Демо-драйвер")
            saved = {"account_id": account.id, "integrity_code": account.integrity_code,
                     "api_secret": account.api_secret, "webhook_secret": account.webhook_secret,
                     "driver_id": driver.id, "driver_key": key}
        if "cabinet_login" not in saved:  # the cabinet's user (a data directory from before it had one gets one now)
            user, password = await add_user(store, saved["account_id"], f"demo{saved['account_id']}")
            saved.update(cabinet_login=user.login, cabinet_password=password)
        saved_path.write_text(json.dumps(saved, ensure_ascii=False, indent=2), encoding="utf-8")
        for kind, token in tokens.items():
            try:
                await add_device(store, saved["driver_id"], kind, token=token)
            except AlreadyExists:
                pass
        for candidate in ([port] if port is not None else [DEFAULT_CLOUD_PORT, 0]):
            service = CloudService(CloudConfig(database_url=store.engine.url.render_as_string(), host="127.0.0.1",
                                               port=candidate, heartbeat=2.0, lease=30.0,
                                               allow_private_callbacks=True), store)
            try:
                await service.start()
                break
            except OSError as exc:
                await service.stop()
                if port is not None or exc.errno != errno.EADDRINUSE:
                    raise
    except BaseException:
        await store.close()
        raise
    account = {key: saved[key] for key in ("account_id", "integrity_code", "api_secret", "webhook_secret",
                                           "driver_key", "cabinet_login", "cabinet_password")}
    return service, account
