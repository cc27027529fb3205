"""The driver's HTTP server: the BIT endpoint (POST /), CORS, and the status page and JSON.

This file turns HTTP into calls of the executor and back; it holds no fiscal logic. Answers to BIT packets are
HTTP 200 with the BIT JSON, including failures (`{"result": false, ...}`): the vendor's clients read the error
from the body of a successful response, and show nothing useful for an HTTP error. Every other answer (a refused
Host, origin or body, an unknown path) is JSON too, with its HTTP status and a text in both languages. Timing is
reported in `Server-Timing` (device time and total), so overhead can be measured from outside.

Every answer carries `X-Frame-Options: DENY` and a Content-Security-Policy with `frame-ancestors 'none'`: no page
may frame the driver (its status page has a Run button). The pages (status at `/`, the integrator's test page at
`/test`, both for this computer only) run under web/routes.py's policy: scripts and styles from the package's
/static and their own inline ones by hash. Who may send what is cors.py; how long and how much, listener.py.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from ..bitapi import PacketError, dumps, encode_packet_error
from ..fiscal import BridgeError, shown
from ..web.routes import add_routes as add_page_routes
from ..web.routes import integrator_page, page_policy
from .cloudlink import CloudLink
from .config import DriverConfig
from .cors import Gate, preflight_headers, response_headers
from .executor import Executor
from .intake import admit
from .journal import Journal
from .listener import MAX_BODY, BodyRefused, ClientGone, Listener, ServerLog, read_body, tls_context
from .registry import Registry
from .status import status_json, status_page
from .throttle import WRONG_TOKEN_CODES, WrongTokens

__all__ = ["MAX_BODY", "Driver"]

log = logging.getLogger("kktbridge.driver")

_STRICT = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_NOTHING = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _answer(status: int, code: str, ru: str, en: str, *, retryable: bool = False,
            headers: dict[str, str] | None = None) -> web.Response:
    """A refusal that is not a BIT packet's answer: JSON with the HTTP status, in both languages."""
    body = {"result": False, "error": f"{ru} / {en}", "errorCode": code, "errorRu": ru, "errorEn": en,
            "retryable": retryable}
    return web.Response(body=dumps(body).encode("utf-8", "backslashreplace"), status=status,
                        content_type="application/json", charset="utf-8", headers=headers)


class Driver:
    """Everything the driver process holds: config, devices, journal, executor, and the web app over them."""

    def __init__(self, config: DriverConfig, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry or Registry.from_config(config)
        self.journal = Journal(config.journal_path)
        self.executor = Executor(self.journal, replay_window=config.replay_window,
                                 service_retry=config.service_retry)
        self.scheme = "https" if config.tls_cert else "http"
        self.pushed_origins: tuple[str, ...] = ()  # allowed origins the cloud pushed (the cabinet's), on top
        self.port = config.port
        self.gate = self._gate(config.port)
        self.cloud = CloudLink(self, config.cloud) if config.cloud is not None else None
        self.wrong_tokens = WrongTokens()
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        self.app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
        self.app.router.add_post("/", self._packet)
        self.app.router.add_get("/", self._page)
        self.app.router.add_get("/status", self._status)
        self.app.router.add_get("/test", self._test_page)
        add_page_routes(self.app.router)
        self.app.on_response_prepare.append(self._secure)
        self.app.on_startup.append(self._startup)
        self.app.on_cleanup.append(self._cleanup)
        self._runner: web.AppRunner | None = None
        self._listener: Listener | None = None
        self.url = f"{self.scheme}://{config.host}:{config.port}"

    def _gate(self, port: int) -> Gate:
        return Gate((*self.config.allowed_origins, *self.pushed_origins), port, external_names=self.config.external_names,
                    external=self.config.allow_external, scheme=self.scheme)

    def apply_origins(self, origins: tuple[str, ...]) -> None:
        """Origins from the cloud take effect at once, on top of the configuration's own."""
        self.pushed_origins = tuple(origins)
        self.gate = self._gate(self.port)

    # --- lifecycle -------------------------------------------------------------------------------------

    async def _startup(self, app: web.Application) -> None:
        for packet in self.journal.interrupted():
            log.warning("packet %d (order %s) was interrupted by a stop; it resumes when sent again",
                        packet.id, packet.order_id)
        loop = asyncio.get_running_loop()
        self._background = [loop.create_task(self._connect_and_settle()), loop.create_task(self._housekeeping())]
        if self.cloud is not None:
            self._background.append(loop.create_task(self.cloud.run()))

    async def ready(self) -> None:
        """Wait until the devices are connected and what a stop left in flight is resolved."""
        await asyncio.shield(self._background[0])

    async def _connect_and_settle(self) -> None:
        """Connect every device, then resolve what a stop left in flight on each, before any packet runs there
        (a packet arriving meanwhile waits for the device's lock, and settles first itself)."""
        await self.registry.connect_all()
        in_doubt = self.journal.devices_in_doubt()
        for entry in self.registry.entries:
            if entry.token in in_doubt:
                await self.executor.settle(entry)

    async def _housekeeping(self, every: float = 30.0) -> None:
        """Fold the WAL into the journal now and then, and forget old packets once a day."""
        pruned_at = 0.0
        while True:
            try:
                if time.monotonic() - pruned_at > 86400 or not pruned_at:
                    pruned_at = time.monotonic()
                    removed = await self.journal.prune(self.config.retention)
                    if removed:
                        log.info("journal: %d packets older than %s removed", removed, self.config.retention)
                await asyncio.sleep(every)
                await self.journal.merge_wal()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the journal stays correct without it; it only grows until the next try
                log.warning("journal housekeeping: %s", exc)

    async def _cleanup(self, app: web.Application) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.registry.close_all()
        self.journal.close()

    async def start(self) -> str:
        """Listen; returns the URL."""
        config = self.config
        context = tls_context(str(config.tls_cert), str(config.tls_key)) if config.tls_cert else None
        self._runner = web.AppRunner(self.app, access_log=None, logger=ServerLog(log), auto_decompress=False,
                                     keepalive_timeout=config.header_timeout,
                                     lingering_time=min(2.0, config.body_timeout))
        await self._runner.setup()
        self._listener = Listener(self._runner.server, header_timeout=config.header_timeout,
                                  max_connections=config.max_connections)
        try:
            port = await self._listener.start(config.host, config.port, context)
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = port
        self.gate = self._gate(port)
        host = config.host if ":" not in config.host else f"[{config.host}]"
        self.url = f"{self.scheme}://{host}:{port}"
        if config.allow_external and context is None:
            log.warning("listening for other machines without TLS: device tokens travel in clear text; set "
                        "tls_cert and tls_key in [driver]")
        return self.url

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- every request ---------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        """Host allowlist, errors as JSON, the answer written within the deadline, the connection's timers."""
        listener = self._listener
        if listener is not None:
            listener.request_started(request.protocol)
        try:
            try:
                response = await self._respond(request, handler)
            except ClientGone:  # logged where it was seen; nobody is there to read an answer
                return web.Response(status=400)
            try:
                async with asyncio.timeout(self.config.body_timeout):
                    await response.prepare(request)
                    await response.write_eof()
            except TimeoutError:
                log.info("%s did not take its answer within %g s; connection closed", shown(request.remote or "?"),
                         self.config.body_timeout)
                if request.transport is not None:
                    request.transport.close()
            except ConnectionError:
                log.info("%s went away before its answer was sent", shown(request.remote or "?"))
            return response
        finally:
            if listener is not None:
                listener.request_done(request.protocol)

    async def _respond(self, request: web.Request, handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if host is None and request.version >= (1, 1):
            return _answer(400, "host_required", "в запросе HTTP/1.1 нет заголовка Host",
                           "an HTTP/1.1 request without a Host header")
        if host is not None and not self.gate.host_allowed(host):
            ru, en = self.gate.host_refusal(shown(host, 80), self.config.source)
            log.warning("refused a request for host %s from %s", shown(host, 80), shown(request.remote or "?"))
            return _answer(421, "host_not_allowed", ru, en)
        try:
            return await handler(request)
        except web.HTTPException as exc:  # the router's 404 and 405
            return _answer(exc.status, "not_found" if exc.status == 404 else "method",
                           f"нет такого адреса или метода: {shown(request.method, 10)} {shown(request.path, 60)}; "
                           "команды принимает POST /", f"no such path or method: {shown(request.method, 10)} "
                           f"{shown(request.path, 60)}; commands go to POST /", headers=_allow(exc))
        except ClientGone:
            raise
        except Exception:  # a bug must not reach the cashier as a stack trace or an HTTP 500
            log.exception("internal error on %s %s", request.method, shown(request.path, 60))
            error = BridgeError("internal", "внутренняя ошибка драйвера; подробности в журнале драйвера",
                                "internal driver error; see the driver's log", retryable=True)
            return self._json(encode_packet_error(error), request.headers.get("Origin"))

    async def _secure(self, request: web.Request, response: web.StreamResponse) -> None:
        """No answer may be framed or sniffed; none is cached."""
        response.headers.update(_STRICT)
        response.headers.setdefault("Content-Security-Policy", _NOTHING)
        response.headers.setdefault("Cache-Control", "no-store")

    def _json(self, body, origin: str | None, *, status: int = 200, headers: dict[str, str] | None = None):
        out = dict(headers or {})
        if origin and self.gate.origin_allowed(origin):
            out.update(response_headers(origin))
        # A lone surrogate cannot be UTF-8: written as its \u escape, which is still the same JSON string.
        return web.Response(body=dumps(body).encode("utf-8", "backslashreplace"), status=status,
                            content_type="application/json", charset="utf-8", headers=out)

    def _refuse_origin(self, origin: str) -> web.Response:
        ru, en = self.gate.refusal(shown(origin, 80), self.config.source, self.config.origin_advice)
        log.warning("refused a request from %s: origin not allowed", shown(origin, 80))
        return _answer(403, "origin_not_allowed", ru, en)

    # --- handlers --------------------------------------------------------------------------------------

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
        peer = request.remote or ""
        remote = not self.gate.is_local(peer)
        wait = self.wrong_tokens.wait(peer) if remote else 0.0
        if wait:
            return _answer(429, "too_many_wrong_tokens", f"слишком много неверных токенов с адреса {shown(peer)}: "
                           f"повторите через {wait:.0f} с", f"too many wrong tokens from {shown(peer)}: try again "
                           f"in {wait:.0f} s", retryable=True, headers={"Retry-After": str(max(1, round(wait)))})
        try:
            body = await read_body(request, self.config.body_timeout)
        except BodyRefused as exc:
            return _answer(exc.status, exc.code, exc.ru, exc.en, headers={"Connection": "close"})
        token_required = self.gate.token_required(origin, peer)
        try:
            admitted = admit(self.registry, request.headers.items(), body, token_required=token_required)
        except PacketError as exc:
            if remote and any(field.code in WRONG_TOKEN_CODES for field in exc.fields):
                self.wrong_tokens.wrong(peer)
            log.info("packet refused: %s", shown(exc.text(), 2000))
            return self._json(encode_packet_error(exc), origin)
        if remote:
            self.wrong_tokens.right(peer)
        packet = admitted.packet
        outcome = await self.executor.run(packet, admitted.devices, source="browser" if origin else "http",
                                          origin=origin)
        total = time.perf_counter() - started
        timing = f"device;dur={outcome.device_seconds * 1000:.3f}, total;dur={total * 1000:.3f}"
        extra = {"Server-Timing": timing}
        if outcome.packet_id is not None:
            extra["X-Kktbridge-Packet"] = str(outcome.packet_id)
        if outcome.replayed:
            extra["X-Kktbridge-Replayed"] = "true"
        log.info("packet %s (order %s, %d commands): %s%s in %.1f ms (device %.1f ms)", outcome.packet_id,
                 shown(packet.order_id or "", 128), len(packet.commands), "ok" if outcome.ok else "failed",
                 ", from the journal" if outcome.replayed else "", total * 1000, outcome.device_seconds * 1000)
        return self._json(outcome.response, origin, headers=extra)

    def _local_only(self, request: web.Request) -> web.Response | None:
        """The status shows every token: on this computer, under its own name, to no other page."""
        origin = request.headers.get("Origin")
        if not (self.gate.is_local(request.remote) and self.gate.loopback_host(request.headers.get("Host"))):
            return _answer(403, "local_only", "состояние драйвера показывается только на этом компьютере "
                           "(http://127.0.0.1 или http://localhost)", "the driver's status is shown on this computer "
                           "only (http://127.0.0.1 or http://localhost)")
        if (origin is not None and not self.gate.is_own_origin(origin)) or \
                request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            return _answer(403, "origin_not_allowed", "состояние драйвера не показывается другим сайтам",
                           "the driver's status is not shown to other sites")
        return None

    async def _status(self, request: web.Request) -> web.Response:
        refused = self._local_only(request)
        if refused is not None:
            return refused
        return self._json(await status_json(self), None, headers={"Cross-Origin-Resource-Policy": "same-origin"})

    async def _page(self, request: web.Request) -> web.Response:
        refused = self._local_only(request)
        if refused is not None:
            return refused
        page = await status_page(self)
        return web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": page_policy(page),
                                     "Cross-Origin-Resource-Policy": "same-origin"})

    async def _test_page(self, request: web.Request) -> web.Response:
        """The integrator's test page, for this computer (the cloud serves it to everyone at /api/test)."""
        refused = self._local_only(request)
        return refused if refused is not None else integrator_page("driver", driver_url=self.url)


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
