"""`kktbridge driver`: run the driver from a configuration file, or add a device to that file."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from ..arguments import baudrate
from ..fiscal import BridgeError
from ..process import until_stopped
from .config import CLOUD_VIA, DriverConfig, add_device, load_config, set_cloud

__all__ = ["add_arguments", "serve_forever"]

log = logging.getLogger("kktbridge.driver")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default="kktbridge.toml",
                        help="the driver's TOML configuration (see config.example.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    parser.set_defaults(run=_run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add-device", help="добавить устройство и выдать ему токен / add a device with a token")
    add.add_argument("--kind", required=True, choices=("atol", "mercury", "arcus"))
    add.add_argument("--name", help="a name to recognise it by on the status page")
    add.add_argument("--token", help="a 32-hex token to use instead of a new one")
    add.add_argument("--tcp", metavar="HOST:PORT", help="ATOL over the network (port 5555)")
    add.add_argument("--serial", metavar="PORT", help="ATOL on a serial port (COM3, /dev/ttyACM0)")
    add.add_argument("--baudrate", type=baudrate, help="serial speed, or auto (default 115200)")
    add.add_argument("--protocol", choices=("v3", "v2"), help="ATOL transport protocol (default v3)")
    add.add_argument("--url", help="Mercury: the Incotex service (default http://127.0.0.1:50010/api.json)")
    add.add_argument("--port-name", help="Mercury: the register's port as the service names it (COM2, /dev/ttyS0)")
    add.add_argument("--model", choices=("185F", "119F"), help="Mercury: 185F (115Ф/130Ф/180Ф/185Ф) or 119F")
    add.add_argument("--library", help="Arcus: the path of arccom.dll / libarccom.so")
    add.set_defaults(run=_add_device)
    link = actions.add_parser("link", help="связать драйвер с облаком kktbridge / link the driver to a kktbridge cloud")
    link.add_argument("url", metavar="URL", nargs="+",
                      help="the cloud's address, e.g. https://cloud.example.ru (several: tried in turn)")
    link.add_argument("key", metavar="KEY", help="the driver key the cloud issued (kktbridge cloud driver add)")
    link.add_argument("--via", choices=CLOUD_VIA, default="auto",
                      help="auto (WebSocket, long-poll when it is blocked), ws or poll (default auto)")
    link.set_defaults(run=_link)


def _link(args: argparse.Namespace) -> int:
    try:
        cloud = set_cloud(args.config, args.url, args.key, via=args.via)
    except BridgeError as exc:
        print(exc.text(), file=sys.stderr)
        return 2
    print(json.dumps({"config": str(Path(args.config).resolve()), "cloud": list(cloud.urls), "via": cloud.via},
                     ensure_ascii=False))
    return 0


def _add_device(args: argparse.Namespace) -> int:
    options = {"tcp": args.tcp, "serial": args.serial, "protocol": args.protocol, "url": args.url,
               "port_name": args.port_name, "model": args.model, "library": args.library}
    if args.baudrate is not None:
        options["baudrate"] = args.baudrate
    try:
        device = add_device(args.config, args.kind, name=args.name, token=args.token, **options)
    except BridgeError as exc:
        print(exc.text(), file=sys.stderr)
        return 2
    print(json.dumps({"config": str(Path(args.config).resolve()), "name": device.name, "kind": device.kind,
                      "token": device.token}, ensure_ascii=False))
    return 0


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except BridgeError as exc:
        print(exc.text(), file=sys.stderr)
        return 2
    return asyncio.run(serve_forever(config))


async def serve_forever(config: DriverConfig, on_ready=None) -> int:
    """Run the driver until SIGINT/SIGTERM; `on_ready(url, driver)` is called once it listens."""
    from .app import Driver

    driver = Driver(config)
    try:
        url = await driver.start()
    except OSError as exc:
        await driver.stop()  # the devices it began to connect are let go, before their emulators or links go away
        print(f"kktbridge driver: не удалось слушать {config.host}:{config.port}: {exc.strerror} / cannot listen on "
              f"{config.host}:{config.port}: {exc.strerror} (another driver running?)", file=sys.stderr)
        return 1
    log.info("listening on %s; %d device(s); journal %s", url, len(config.devices), config.journal_path)
    if on_ready is not None:
        await on_ready(url, driver)
    await until_stopped()
    await driver.stop()
    return 0
