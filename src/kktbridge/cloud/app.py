"""The cloud service: one aiohttp application over one store, the same stack as the driver.

This file wires endpoints to their handlers and turns every failure into a JSON answer with a stable code:
a refusal (CloudError), a bad request aiohttp itself refuses (too large, wrong method, no such path), the database
gone (503, retryable), or a bug (503, logged with its traceback here and nowhere else). No answer is ever an
HTTP 500 or carries a traceback. A process holds no state that another process needs: any number of them may
serve one PostgreSQL database. A background task expires queued receipts and applies the retention; another
delivers the callbacks owed to shops (`callbacks.CallbackWorker`, in every node).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from aiohttp import web

from ..web.routes import add_routes as add_page_routes
from ..web.routes import integrator_page
from .api import JsonApi
from .auth import Authenticator
from .cabinet import Cabinet
from .callbacks import CallbackWorker
from .config import CloudConfig
from .dialogs import Dialogs
from .errors import CloudError, form_error_body, json_error_body, too_large, unavailable
from .http import MAX_BODY, json_response
from .intake import FORM_PATHS, FormIntake
from .link import LinkHub
from .openapi import openapi_document
from .ratelimit import Limiter
from .receipt_state import STATE_PATH, ReceiptState
from .store import Store, is_unavailable, utcnow
from .views import API

__all__ = ["CloudService"]

log = logging.getLogger("kktbridge.cloud")

TEST_PAGE_PATHS = ("/api/test", "/api/test.php")  # the integrator's test page, at the vendor's address too


class CloudService:
    """Everything one cloud process holds: its config, the store, the limits, and the web app over them."""

    def __init__(self, config: CloudConfig, store: Store | None = None, *, auth_failure_limit: str = "30/minute",
                 login_limit: str = "10/minute") -> None:
        self.config = config
        self.store = store
        self.node = config.node or f"{socket.gethostname()}:{os.getpid()}"
        self.accounts = Limiter(config.rate_limit)
        self.failures = Limiter(auth_failure_limit)
        self.logins = Limiter(login_limit)
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        self.app.on_startup.append(self._startup)
        self.app.on_shutdown.append(self._shutdown)
        self.app.on_cleanup.append(self._cleanup)
        self.link: LinkHub | None = None
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task | None = None
        self.callbacks: CallbackWorker | None = None
        self._owns_store = store is None
        self.url = ""

    def _routes(self) -> None:
        intake = FormIntake(self.store, self.config, self.accounts, self.failures)
        auth = Authenticator(self.store, self.config, self.failures, self.logins)
        api = JsonApi(self.store, self.config, auth, self.accounts)
        self.app.router.add_routes([web.post(path, intake.handle) for path in FORM_PATHS])
        self.app.router.add_routes(Dialogs(self.store, intake).routes())
        self.app.router.add_routes(api.routes(API))
        self.app.router.add_routes(Cabinet(self.store, self.config, auth).routes())
        self.link = LinkHub(self.store, self.config, self.node, self.failures)
        self.app.router.add_routes(self.link.routes())
        document = openapi_document(API)

        async def openapi(_: web.Request) -> web.Response:
            return json_response(document)

        self.app.router.add_get(f"{API}/openapi.json", openapi)
        self.app.router.add_get(STATE_PATH, ReceiptState(self.store, self.failures).handle)
        add_page_routes(self.app.router)

        async def test_page(_: web.Request) -> web.Response:
            return integrator_page("cloud")

        for path in TEST_PAGE_PATHS:
            self.app.router.add_get(path, test_page)

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def _startup(self, app: web.Application) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self.callbacks = CallbackWorker(self.store, self.config, self.node)
        self.callbacks.start()
        await self.link.start()

    async def _shutdown(self, app: web.Application) -> None:
        if self.link is not None:  # linked drivers are let go first: they reconnect to another node
            await self.link.close()

    async def _cleanup(self, app: web.Application) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)  # off the database before it closes
        if self.callbacks is not None:
            await self.callbacks.stop()
        if self._owns_store and self.store is not None:
            await self.store.close()

    async def start(self) -> str:
        """Open (and migrate) the database, listen; returns the URL."""
        if self.store is None:
            self.store = await Store.open(self.config.database_url)
        self._routes()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024)
        await site.start()
        port = self._runner.addresses[0][1]
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _sweep(self) -> None:
        """Expire receipts that waited too long, delete those past retention, drop ended sessions."""
        while True:
            try:
                now = utcnow()
                expired = await self.store.expire_queued(now=now)
                for record in expired:
                    log.info("receipt %s (account %s, order %s) expired: its driver did not connect",
                             record.uuid, record.account_id, record.order_id)
                await self.store.purge_finished(before=now - self.config.retention)
                await self.store.purge_sessions(now=now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next pass tries again; nothing is lost by waiting
                log.warning("sweep failed: %s", type(exc).__name__)
            await asyncio.sleep(self.config.sweep_every)

    # --- answers -----------------------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        render = json_error_body if request.path.startswith(API + "/") else form_error_body
        try:
            return await handler(request)
        except CloudError as error:
            return _error_response(error, render)
        except web.HTTPException as exc:
            if exc.status == 413:
                return _error_response(too_large(MAX_BODY), render)
            if exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "bad_request")
            response = _error_response(CloudError(code, _HTTP_RU.get(exc.status, "ошибка запроса"), exc.reason,
                                                  status=exc.status), render)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception as exc:
            if is_unavailable(exc):
                log.error("database unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
                return _error_response(unavailable(), render)
            log.exception("internal error on %s %s", request.method, request.path)
            return _error_response(CloudError("internal", "внутренняя ошибка облака; она записана в журнал",
                                              "internal error of the cloud; it is logged", retryable=True,
                                              status=503, retry_after=5), render)


_HTTP_RU = {404: "нет такого адреса", 405: "этот метод здесь не принимается"}


def _error_response(error: CloudError, render) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return json_response(render(error), status=error.status, headers=headers)
