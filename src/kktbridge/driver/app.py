"""The driver's HTTP server: the BIT endpoint (POST /), CORS, and the status page and JSON.

This file turns HTTP into calls of the executor and back; it holds no fiscal logic. Answers to BIT packets are
HTTP 200 with the BIT JSON, including failures (`{"result": false, ...}`): the vendor's clients read the error
from the body of a successful response, and show nothing useful for an HTTP error. Timing is reported in
`Server-Timing` (device time and total), so overhead can be measured from outside.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from ..bitapi import PacketError, ReceiptDefaults, decode_request, dumps, encode_packet_error, parse_headers
from ..fiscal import BridgeError, DEFAULT_LIMITS
from .config import DriverConfig
from .cors import Gate, preflight_headers, response_headers
from .executor import Executor
from .journal import Journal
from .registry import Registry
from .status import status_json, status_page

__all__ = ["MAX_BODY", "Driver"]

log = logging.getLogger("kktbridge.driver")
MAX_BODY = 2 * 1024 * 1024


class Driver:
    """Everything the driver process holds: config, devices, journal, executor, and the web app over them."""

    def __init__(self, config: DriverConfig, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry or Registry.from_config(config)
        self.journal = Journal(config.journal_path)
        self.executor = Executor(self.journal)
        self.gate = Gate(config.allowed_origins, config.port)
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        self.app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
        self.app.router.add_post("/", self._packet)
        self.app.router.add_get("/", self._page)
        self.app.router.add_get("/status", self._status)
        self.app.on_startup.append(self._startup)
        self.app.on_cleanup.append(self._cleanup)
        self._runner: web.AppRunner | None = None
        self.url = f"http://{config.host}:{config.port}"

    # --- lifecycle -------------------------------------------------------------------------------------

    async def _startup(self, app: web.Application) -> None:
        for packet in self.journal.interrupted():
            log.warning("packet %d (order %s) was interrupted by a stop; it resumes when sent again",
                        packet.id, packet.order_id)
        self._connecting = asyncio.get_running_loop().create_task(self.registry.connect_all())
        self._merging = asyncio.get_running_loop().create_task(self._merge_wal())

    async def _merge_wal(self, every: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.journal.merge_wal)
            except Exception as exc:  # the journal stays correct without it; it only grows until the next try
                log.warning("journal: could not merge the WAL: %s", exc)

    async def _cleanup(self, app: web.Application) -> None:
        self._connecting.cancel()
        self._merging.cancel()
        await self.registry.close_all()
        self.journal.close()

    async def start(self) -> str:
        """Listen; returns the URL."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.gate = Gate(self.config.allowed_origins, port)
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- handlers --------------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:  # a bug must not reach the cashier as a stack trace or an HTTP 500
            log.exception("internal error on %s %s", request.method, request.path)
            error = BridgeError("internal", "внутренняя ошибка драйвера; подробности в журнале драйвера",
                                "internal driver error; see the driver's log", retryable=True)
            return self._json(encode_packet_error(error), request.headers.get("Origin"))

    def _json(self, body, origin: str | None, *, status: int = 200, headers: dict[str, str] | None = None):
        out = dict(headers or {})
        if origin and self.gate.origin_allowed(origin):
            out.update(response_headers(origin))
        return web.Response(text=dumps(body), status=status, content_type="application/json", charset="utf-8",
                            headers=out)

    def _refuse_origin(self, origin: str) -> web.Response:
        ru, en = self.gate.refusal(origin, self.config.source)
        log.warning("refused a request from %s: origin not allowed", origin)
        return web.Response(status=403, text=dumps({"result": False, "error": f"{ru} / {en}",
                                                    "errorCode": "origin_not_allowed", "errorRu": ru, "errorEn": en}),
                            content_type="application/json", charset="utf-8")

    async def _preflight(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if origin is None:
            return web.Response(status=204, headers={"Allow": "POST, GET, OPTIONS"})
        if not self.gate.origin_allowed(origin):
            return self._refuse_origin(origin)
        private = request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true"
        return web.Response(status=204, headers=preflight_headers(
            origin, request.headers.get("Access-Control-Request-Headers"), private))

    async def _packet(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        origin = request.headers.get("Origin")
        if origin is not None and not self.gate.origin_allowed(origin):
            return self._refuse_origin(origin)
        token_required = self.gate.token_required(origin, request.remote)
        body = await request.read()
        headers = list(request.headers.items())
        parsed, _ = parse_headers(headers)
        kkt = self.registry.resolve(parsed, {"kkt"}, token_required=token_required)[0].get("kkt")
        try:
            packet = decode_request(headers, body, defaults=kkt.config.defaults if kkt else ReceiptDefaults(),
                                    limits=kkt.config.limits if kkt else DEFAULT_LIMITS)
            devices, errors = self.registry.resolve(packet.headers, packet.device_kinds(),
                                                    token_required=token_required)
            if errors:
                raise PacketError(errors)
        except PacketError as exc:
            log.info("packet refused: %s", exc.text())
            return self._json(encode_packet_error(exc), origin)
        outcome = await self.executor.run(packet, devices, source="browser" if origin else "http", origin=origin)
        total = time.perf_counter() - started
        timing = f"device;dur={outcome.device_seconds * 1000:.3f}, total;dur={total * 1000:.3f}"
        extra = {"Server-Timing": timing}
        if outcome.packet_id is not None:
            extra["X-Kktbridge-Packet"] = str(outcome.packet_id)
        if outcome.replayed:
            extra["X-Kktbridge-Replayed"] = "true"
        log.info("packet %s (order %s, %d commands): %s%s in %.1f ms (device %.1f ms)", outcome.packet_id,
                 packet.order_id, len(packet.commands), "ok" if outcome.ok else "failed",
                 ", from the journal" if outcome.replayed else "", total * 1000, outcome.device_seconds * 1000)
        return self._json(outcome.response, origin, headers=extra)

    async def _status(self, request: web.Request) -> web.Response:
        if not self.gate.is_local(request.remote):
            raise web.HTTPForbidden(text="the status is shown on this computer only")
        return self._json(await status_json(self), request.headers.get("Origin"))

    async def _page(self, request: web.Request) -> web.Response:
        if not self.gate.is_local(request.remote):
            raise web.HTTPForbidden(text="the status page is shown on this computer only")
        return web.Response(text=await status_page(self), content_type="text/html", charset="utf-8")
