"""The cabinet ("личный кабинет", issue 14): server-rendered pages under /cabinet for a signed-in account user.

Rules of every handler here (and in cabinet_receipts.py):
- A page needs a session (auth.py; a request signed with the API key is no cabinet user): without one the
  browser is sent to the sign-in page. A POST carries the session's CSRF token (`csrf_token`), which auth.py
  checks; a missing or wrong one is a 403 page.
- The account comes from the session and scopes every query: another account's ids find nothing (404).
- Bad input re-renders the form with each field's error in both languages (400); never a 500.
- A driver key or device token is shown once, in the answer of the POST that made it; pages after show none.
  After a change the handler calls `store.account_changed` (origins are pushed to linked drivers at once, and
  what every node remembers of the account is dropped: the others hear it as a note).
- Signing in is throttled as the API's is (auth.py's login limiter); the sign-in form's CSRF token is a
  double-submit cookie, since there is no session yet.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..fiscal import FieldError
from .auth import SESSION_COOKIE, Authenticator
from .cabinet_html import cabinet_page, csrf_field, esc, field_errors, fragment, tr
from .config import DEVICE_KINDS, CloudConfig
from .credentials import digest, equal, new_api_secret, new_driver_key, new_integrity_code, new_token
from .errors import CloudError
from .http import json_response
from .provision import ProvisionError, add_device, add_driver
from .store import MAX_ID, AlreadyExists, DeviceRecord, DriverRecord, SessionRecord, Store, utcnow
from .views import timestamp

__all__ = ["Cabinet", "CabinetUser", "check_origins"]

LOGIN_CSRF_COOKIE = "kktbridge_login_csrf"
MAX_ORIGINS = 50
MAX_ORIGIN = 255
MAX_FIELD = 4096  # a form field longer than this is refused before it is looked at


@dataclass(frozen=True)
class CabinetUser:
    account_id: int
    session: SessionRecord

    @property
    def csrf(self) -> str:
        return self.session.csrf_token


class SignInRequired(Exception):
    pass


def check_origins(text: str) -> tuple[list[str], list[FieldError]]:
    """Origins one per line (or separated by spaces or commas) → the normalized list and errors per line.
    An origin is scheme://host[:port], http or https, nothing after it."""
    origins: list[str] = []
    errors: list[FieldError] = []
    parts = [p for p in text.replace(",", "\n").split() if p]
    if len(parts) > MAX_ORIGINS:
        errors.append(FieldError("origins", "too_many", f"не больше {MAX_ORIGINS} адресов",
                                 f"at most {MAX_ORIGINS} origins"))
    for index, part in enumerate(parts[:MAX_ORIGINS]):
        path = f"origins[{index}]"
        try:
            url = urlsplit(part)
            port = url.port
            ok = (len(part) <= MAX_ORIGIN and url.scheme.lower() in ("http", "https") and bool(url.hostname)
                  and url.path in ("", "/") and not url.query and not url.fragment and not url.username
                  and not url.password and part.isprintable() and part.isascii())
        except ValueError:
            ok = False
        if not ok:
            errors.append(FieldError(path, "origin", f"«{part[:80]}»: нужен адрес вида https://shop.ru или "
                                     "http://127.0.0.1:8080 — схема, хост и порт, без пути",
                                     f"'{part[:80]}': an origin is like https://shop.ru or http://127.0.0.1:8080: "
                                     "scheme, host and port, no path"))
            continue
        host = url.hostname.lower()
        host = f"[{host}]" if ":" in host else host
        origin = f"{url.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
        if origin not in origins:
            origins.append(origin)
    return origins, errors


class Cabinet:
    def __init__(self, store: Store, config: CloudConfig, auth: Authenticator) -> None:
        self.store = store
        self.config = config
        self.auth = auth

    def routes(self) -> list[web.RouteDef]:
        from .cabinet_receipts import CabinetReceipts

        receipts = CabinetReceipts(self)
        return [
            web.get("/cabinet", self.home),
            web.get("/cabinet/", self.home),
            web.get("/cabinet/sign-in", self.sign_in_page),
            web.post("/cabinet/sign-in", self.sign_in),
            web.post("/cabinet/sign-out", self.page(self.sign_out)),
            web.get("/cabinet/devices", self.page(self.devices)),
            web.get("/cabinet/state.json", self.state),
            web.post("/cabinet/drivers", self.page(self.add_driver)),
            web.post("/cabinet/drivers/{driver_id}/key", self.page(self.rotate_driver_key)),
            web.post("/cabinet/devices", self.page(self.add_device)),
            web.post("/cabinet/devices/{device_id}/token", self.page(self.rotate_device_token)),
            web.get("/cabinet/settings", self.page(self.settings)),
            web.post("/cabinet/settings/origins", self.page(self.set_origins)),
            web.post("/cabinet/settings/integrity-code", self.page(self.rotate_integrity_code)),
            web.post("/cabinet/settings/webhook-secret", self.page(self.rotate_webhook_secret)),
            *receipts.routes(),
        ]

    # --- who is asking ---------------------------------------------------------------------------------------

    async def user(self, request: web.Request) -> CabinetUser:
        """The signed-in user, or SignInRequired; CloudError for a wrong CSRF token or too many failures."""
        if SESSION_COOKIE not in request.cookies:
            raise SignInRequired()
        try:
            principal = await self.auth.principal(request)  # reads the form's csrf_token on a POST
        except CloudError as error:
            if error.code == "session_expired":
                raise SignInRequired() from None
            raise
        except (UnicodeDecodeError, ValueError):
            raise _bad_form() from None
        if principal.session is None:
            raise SignInRequired()
        return CabinetUser(principal.account_id, principal.session)

    def page(self, handler):
        """A handler that needs a user: (request, user) → response; refusals become a page in both languages."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                user = await self.user(request)
                return await handler(request, user)
            except SignInRequired:
                raise self.to_sign_in() from None
            except CloudError as error:
                return refusal_page(error)

        return wrapped

    def to_sign_in(self) -> web.HTTPSeeOther:
        """The redirect to the sign-in page. It deletes the session cookie: a dead one sent again by every poll
        of a live page would count as a failed authentication each time and get the address blocked (429)."""
        response = web.HTTPSeeOther("/cabinet/sign-in")
        self.auth.clear_cookie(response)
        return response

    async def form(self, request: web.Request) -> dict[str, str]:
        """The posted form's text fields, each bounded."""
        try:
            data = await request.post()
        except (UnicodeDecodeError, ValueError):
            raise _bad_form() from None
        out: dict[str, str] = {}
        for key, value in data.items():
            if isinstance(value, str):
                out[key] = value[:MAX_FIELD + 1]
        return out

    # --- signing in and out ----------------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.user(request)
        except SignInRequired:
            raise self.to_sign_in() from None
        except CloudError:
            raise web.HTTPSeeOther("/cabinet/sign-in") from None
        raise web.HTTPSeeOther("/cabinet/devices")

    def _sign_in_form(self, token: str, login: str = "", errors: tuple[FieldError, ...] = (),
                      status: int = 200) -> web.Response:
        body = fragment("cabinet_sign_in.html", errors=field_errors(errors), csrf_field=csrf_field(token),
                        login=esc(login))
        response = cabinet_page("sign-in", "Вход", "Sign in", body, status=status)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, path="/cabinet", httponly=True, samesite="Strict",
                            secure=self.config.cookie_secure, max_age=3600)
        return response

    async def sign_in_page(self, request: web.Request) -> web.StreamResponse:
        try:
            await self.user(request)
        except (SignInRequired, CloudError) as why:
            form = self._sign_in_form(request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24))
            if isinstance(why, SignInRequired):
                self.auth.clear_cookie(form)
            return form
        raise web.HTTPSeeOther("/cabinet/devices")

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        fields = await self.form(request)
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        fresh = secrets.token_urlsafe(24)
        login, password = fields.get("login", "").strip(), fields.get("password", "")
        if not cookie or not equal(cookie, fields.get("csrf_token", "")):
            return self._sign_in_form(fresh, login[:64], (FieldError(
                "csrf_token", "csrf", "форма устарела или открыта не с этого сайта: войдите ещё раз",
                "the form is stale or came from another site: sign in again"),), status=403)
        errors = [FieldError(name, "required", f"нужна строка от 1 до {limit} символов",
                             f"a string of 1…{limit} characters is expected")
                  for name, value, limit in (("login", login, 64), ("password", password, 256))
                  if not 0 < len(value) <= limit]
        if errors:
            return self._sign_in_form(cookie, login[:64], tuple(errors), status=400)
        try:
            session, token = await self.auth.sign_in(request, login, password)
        except CloudError as error:
            return self._sign_in_form(cookie, login, error.fields or (FieldError("login", error.code, error.ru,
                                                                                 error.en),), status=error.status)
        response = web.HTTPSeeOther("/cabinet/devices")
        self.auth.set_cookie(response, token, session.expires_at)
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/cabinet")
        raise response

    async def sign_out(self, request: web.Request, user: CabinetUser) -> web.StreamResponse:
        await self.auth.sign_out(request)
        response = web.HTTPSeeOther("/cabinet/sign-in")
        self.auth.clear_cookie(response)
        raise response

    # --- drivers and devices ---------------------------------------------------------------------------------

    async def _drivers(self, account_id: int) -> list[tuple[DriverRecord, list[DeviceRecord]]]:
        devices = await self.store.devices(account_id)
        return [(d, [x for x in devices if x.driver_id == d.id]) for d in await self.store.drivers(account_id)]

    async def devices(self, request: web.Request, user: CabinetUser, *, shown: str = "",
                      errors: tuple[FieldError, ...] = (), status: int = 200) -> web.Response:
        drivers = await self._drivers(user.account_id)
        sections = []
        for driver, devices in drivers:
            rows = "".join(_device_row(device, driver, user.csrf) for device in devices) or \
                f'<tr><td colspan="9" class="muted">{tr("устройств нет", "no devices")}</td></tr>'
            cells = driver_cells(driver)
            sections.append(f"""<section class="card driver" id="driver-{driver.id}">
<h2>{esc(driver.name)} <small class="muted">#{driver.id}</small></h2>
<p>{_cell(f"driver-{driver.id}-online", cells["online"])} · {tr("на связи в", "last seen")}
{_cell(f"driver-{driver.id}-seen", cells["seen"])} · {tr("узел облака", "cloud node")}
{_cell(f"driver-{driver.id}-node", cells["node"])} · {tr("версия", "version")}
{_cell(f"driver-{driver.id}-version", cells["version"])}</p>
<form method="post" action="/cabinet/drivers/{driver.id}/key" class="inline">{csrf_field(user.csrf)}
<button type="submit" class="secondary" data-confirm="1">{tr("Новый ключ драйвера", "New driver key")}</button></form>
<div class="table-wrap"><table class="devices">
<thead><tr><th>{tr("Устройство", "Device")}</th>{"".join(f"<th>{tr(ru, en)}</th>" for _, ru, en in DEVICE_COLUMNS)}
<th></th></tr></thead>
<tbody>{rows}</tbody></table></div></section>""")
        options = "".join(f'<option value="{d.id}">{esc(d.name)} (#{d.id})</option>' for d, _ in drivers)
        kinds = "".join(f'<option value="{k}">{k}</option>' for k in DEVICE_KINDS)
        body = f"""{shown}{field_errors(errors)}
<h1>{tr("Драйверы и кассы", "Drivers and devices")}</h1>
<p class="muted" id="live-line">{tr("Состояние обновляется само.", "The state refreshes by itself.")}</p>
{"".join(sections) or f'<p class="notice">{tr("Драйверов пока нет.", "No drivers yet.")}</p>'}
<section class="card" id="add-driver"><h2>{tr("Добавить драйвер", "Add a driver")}</h2>
<form method="post" action="/cabinet/drivers">{csrf_field(user.csrf)}
<label for="driver-name">{tr("Название (компьютер, магазин)", "Name (the computer, the shop)")}</label>
<input id="driver-name" name="name" maxlength="200" required>
{field_errors(errors, "name")}
<p><button type="submit">{tr("Добавить драйвер", "Add the driver")}</button></p></form></section>
<section class="card" id="add-device"><h2>{tr("Добавить устройство", "Add a device")}</h2>
<form method="post" action="/cabinet/devices">{csrf_field(user.csrf)}
<div class="grid">
<div><label for="device-driver">{tr("Драйвер", "Driver")}</label>
<select id="device-driver" name="driver_id">{options}</select></div>
<div><label for="device-kind">{tr("Вид", "Kind")}</label><select id="device-kind" name="kind">{kinds}</select></div>
<div><label for="device-name">{tr("Название", "Name")}</label><input id="device-name" name="name" maxlength="200"></div>
<div><label for="device-token">{tr("Токен из конфигурации драйвера (или пусто: новый)",
                                    "The token from the driver's config (or empty: a new one)")}</label>
<input id="device-token" name="token" maxlength="32" autocomplete="off" spellcheck="false"></div>
</div>
<p><button type="submit" id="add-device-button">{tr("Добавить устройство", "Add the device")}</button></p></form>
</section>"""
        return cabinet_page("devices", "Драйверы и кассы", "Drivers and devices", body, csrf=user.csrf,
                            login=user.session.login, status=status)

    async def state(self, request: web.Request) -> web.Response:
        """The live cells of the devices page, as the page renders them: `{"at", "cells": {id: {ru, en, cls}}}`."""
        try:
            user = await self.user(request)
        except SignInRequired:
            response = json_response({"error": {"code": "sign_in", "ru": "войдите в кабинет", "en": "sign in",
                                                "retryable": False}}, status=401)
            self.auth.clear_cookie(response)  # see to_sign_in
            return response
        cells: dict[str, Any] = {}
        for driver, devices in await self._drivers(user.account_id):
            for key, value in driver_cells(driver).items():
                cells[f"driver-{driver.id}-{key}"] = _cell_json(value)
            for device in devices:
                for key, value in device_cells(device, driver).items():
                    cells[f"device-{device.id}-{key}"] = _cell_json(value)
        return json_response({"at": timestamp(utcnow()), "cells": cells})

    def _secret_shown(self, ru: str, en: str, secret: str, hint_ru: str, hint_en: str) -> str:
        return (f'<section class="card notice shown-once"><h2>{tr(ru, en)}</h2>'
                f'<p><code class="secret" id="shown-secret">{esc(secret)}</code></p>'
                f'<p>{tr("Показывается один раз: сохраните сейчас. ", "Shown once: keep it now. ")}'
                f'{tr(hint_ru, hint_en)}</p></section>')

    async def add_driver(self, request: web.Request, user: CabinetUser) -> web.Response:
        fields = await self.form(request)
        try:
            driver, key = await add_driver(self.store, user.account_id, fields.get("name", ""))
        except ProvisionError as error:
            return await self.devices(request, user, errors=(FieldError("name", error.code, error.ru, error.en),),
                                      status=400)
        shown = self._secret_shown(f"Драйвер «{driver.name}» добавлен, его ключ:",
                                   f"Driver '{driver.name}' added; its key:", key,
                                   f"На компьютере магазина: kktbridge driver link {self._url(request)} <ключ>.",
                                   f"On the shop's computer: kktbridge driver link {self._url(request)} <key>.")
        return await self.devices(request, user, shown=shown, status=201)

    def _url(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def rotate_driver_key(self, request: web.Request, user: CabinetUser) -> web.Response:
        driver_id = _path_id(request, "driver_id")
        key = new_driver_key()
        if driver_id is None or not await self.store.rotate_driver_key(user.account_id, driver_id, digest(key)):
            return not_found_page(user)
        await self.store.account_changed(user.account_id)  # the link made with the old key ends now
        shown = self._secret_shown(f"Новый ключ драйвера #{driver_id}:", f"The new key of driver #{driver_id}:",
                                   key, "Старый ключ больше не подключается: замените его в [cloud] key драйвера.",
                                   "The old key links no more: replace it in the driver's [cloud] key.")
        return await self.devices(request, user, shown=shown)

    async def add_device(self, request: web.Request, user: CabinetUser) -> web.Response:
        fields = await self.form(request)
        errors: list[FieldError] = []
        driver_text = fields.get("driver_id", "")
        driver = await self.store.driver(user.account_id, int(driver_text)) \
            if driver_text.isascii() and driver_text.isdigit() and len(driver_text) <= 10 else None
        if driver is None:
            errors.append(FieldError("driver_id", "unknown_driver", "в аккаунте нет такого драйвера",
                                     "the account has no such driver"))
        kind = fields.get("kind", "")
        if kind not in DEVICE_KINDS:
            errors.append(FieldError("kind", "kind", f"вид устройства: {', '.join(DEVICE_KINDS)}",
                                     f"the device kind is one of {', '.join(DEVICE_KINDS)}"))
        if not errors:
            try:
                device, token = await add_device(self.store, driver.id, kind, name=fields.get("name") or None,
                                                 token=fields.get("token") or None)
            except ProvisionError as error:
                path = "token" if "токен" in error.ru else "name"
                errors.append(FieldError(path, error.code, error.ru, error.en))
            except AlreadyExists as error:
                errors.append(FieldError("token", error.code, error.ru, error.en))
        if errors:
            return await self.devices(request, user, errors=tuple(errors), status=400)
        await self.store.account_changed(user.account_id)  # every node forgets what it remembered of the account
        shown = self._secret_shown(f"Устройство «{device.name}» добавлено, его токен:",
                                   f"Device '{device.name}' added; its token:", token,
                                   "Он же — token устройства в конфигурации драйвера и BIT_KKT_TOKEN магазина.",
                                   "It is the device's token in the driver's config and the shop's BIT_KKT_TOKEN.")
        return await self.devices(request, user, shown=shown, status=201)

    async def rotate_device_token(self, request: web.Request, user: CabinetUser) -> web.Response:
        device_id = _path_id(request, "device_id")
        token = new_token()
        if device_id is None or not await self.store.rotate_device_token(user.account_id, device_id, digest(token)):
            return not_found_page(user)
        await self.store.account_changed(user.account_id)  # the old token stops on every node now
        shown = self._secret_shown(f"Новый токен устройства #{device_id}:", f"The new token of device #{device_id}:",
                                   token, "Старый токен больше не принимается: замените его в конфигурации "
                                   "драйвера и на сайте.", "The old token is refused from now: replace it in the "
                                   "driver's config and on the site.")
        return await self.devices(request, user, shown=shown)

    # --- settings --------------------------------------------------------------------------------------------

    async def settings(self, request: web.Request, user: CabinetUser, *, shown: str = "",
                       errors: tuple[FieldError, ...] = (), origins_text: str | None = None,
                       status: int = 200) -> web.Response:
        account = await self.store.account(user.account_id)
        if account is None:
            return not_found_page(user)
        text = "\n".join(account.allowed_origins) if origins_text is None else origins_text
        body = fragment("cabinet_settings.html", shown=shown, account_id=account.id, account_name=esc(account.name),
                        csrf_field=csrf_field(user.csrf), origins=esc(text), errors=field_errors(errors, "origins"),
                        integrity_code=esc(account.integrity_code), webhook_secret=esc(account.webhook_secret))
        return cabinet_page("settings", "Настройки", "Settings", body, csrf=user.csrf, login=user.session.login,
                            status=status)

    async def set_origins(self, request: web.Request, user: CabinetUser) -> web.Response:
        text = (await self.form(request)).get("origins", "")
        if len(text) > MAX_FIELD:
            origins, errors = [], [FieldError("origins", "too_long", f"не больше {MAX_FIELD} символов",
                                              f"at most {MAX_FIELD} characters")]
        else:
            origins, errors = check_origins(text)
        if errors:
            return await self.settings(request, user, errors=tuple(errors), origins_text=text[:MAX_FIELD],
                                       status=400)
        await self.store.set_allowed_origins(user.account_id, origins)
        await self.store.account_changed(user.account_id)  # the link pushes them to linked drivers now
        return await self.settings(request, user, shown=_saved("Сохранено; подключённые драйверы уже знают.",
                                                               "Saved; linked drivers know already."))

    async def rotate_integrity_code(self, request: web.Request, user: CabinetUser) -> web.Response:
        await self.store.set_integrity_code(user.account_id, new_integrity_code())
        await self.store.account_changed(user.account_id)
        return await self.settings(request, user, shown=_saved("Новый код целостности сохранён.",
                                                               "A new integrity code is saved."))

    async def rotate_webhook_secret(self, request: web.Request, user: CabinetUser) -> web.Response:
        await self.store.set_webhook_secret(user.account_id, new_api_secret())
        await self.store.account_changed(user.account_id)
        return await self.settings(request, user, shown=_saved("Новый секрет сохранён.", "A new secret is saved."))


# --- cells of the live state ---------------------------------------------------------------------------------

Cell = tuple[str, str, str]  # ru, en, css class
DEVICE_COLUMNS = (("online", "Связь", "Link"), ("shift", "Смена", "Shift"), ("fn", "ФН", "FN"),
                  ("fnExpiry", "ФН до", "FN expires"), ("ofdUnsent", "Не отправлено в ОФД", "Unsent to OFD"),
                  ("paper", "Бумага", "Paper"), ("error", "Ошибка", "Error"))


def driver_cells(driver: DriverRecord) -> dict[str, Cell]:
    if driver.link:
        online: Cell = (f"на связи ({driver.link})", f"online ({driver.link})", "ok")
    else:
        online = ("не на связи", "offline", "bad")
    seen = timestamp(driver.seen_at) or "—"
    node = driver.node if driver.link and driver.node else "—"
    return {"online": online, "seen": (seen, seen, "muted"), "node": (node, node, "muted"),
            "version": (driver.version or "—",) * 2 + ("",)}


def device_cells(device: DeviceRecord, driver: DriverRecord) -> dict[str, Cell]:
    s = device.status or {}

    def plain(value: Any) -> Cell:
        text = "—" if value is None else str(value)
        return text, text, ""

    if not driver.link or not s:
        online: Cell = ("нет данных", "no data", "muted") if not s else ("драйвер не на связи", "driver offline", "bad")
    elif s.get("online"):
        online = ("на связи", "online", "ok")
    else:
        online = ("не отвечает", "not answering", "bad")
    shift_open = s.get("shiftOpen")
    number = s.get("shiftNumber")
    if shift_open is None:
        shift: Cell = ("—", "—", "")
    elif shift_open:
        shift = (f"открыта №{number}", f"open #{number}", "ok")
    else:
        shift = (f"закрыта (№{number})", f"closed (#{number})", "")
    paper = s.get("paper")
    paper_cell: Cell = ("—", "—", "") if paper is None else (("есть", "yes", "ok") if paper else ("нет", "out", "bad"))
    unsent = s.get("ofdUnsent")
    unsent_cell: Cell = plain(unsent) if not unsent else (str(unsent), str(unsent), "warn")
    error = s.get("error")
    if isinstance(error, dict):
        error_cell: Cell = (str(error.get("ru", "")), str(error.get("en", "")), "bad")
    else:
        error_cell = plain(error) if error else ("—", "—", "")
    return {"online": online, "shift": shift, "fn": plain(s.get("fnNumber")), "fnExpiry": plain(s.get("fnExpiry")),
            "ofdUnsent": unsent_cell, "paper": paper_cell, "error": error_cell}


def _cell(cell_id: str, cell: Cell) -> str:
    ru, en, cls = cell
    return f'<span data-cell="{esc(cell_id)}" class="{esc(cls)}">{tr(ru, en)}</span>'


def _cell_json(cell: Cell) -> dict[str, str]:
    return {"ru": cell[0], "en": cell[1], "cls": cell[2]}


def _device_row(device: DeviceRecord, driver: DriverRecord, csrf: str) -> str:
    cells = device_cells(device, driver)
    shown = "".join(f'<td><span class="label">{tr(ru, en)}:</span> '
                    f'{_cell(f"device-{device.id}-{key}", cells[key])}</td>' for key, ru, en in DEVICE_COLUMNS)
    return (f'<tr id="device-{device.id}"><td><b>{esc(device.name)}</b> <small class="muted">#{device.id} '
            f'{esc(device.kind)}</small></td>{shown}<td><form method="post" action="/cabinet/devices/{device.id}/token"'
            f' class="inline">{csrf_field(csrf)}<button type="submit" class="secondary rotate-token">'
            f'{tr("Новый токен", "New token")}</button></form></td></tr>')


def _saved(ru: str, en: str) -> str:
    return f'<p class="notice" id="saved">{tr(ru, en)}</p>'


def _bad_form() -> CloudError:
    return CloudError("body_encoding", "форма не в UTF-8 или испорчена", "the form is not UTF-8 or is broken",
                      status=400)


def _path_id(request: web.Request, name: str) -> int | None:
    text = request.match_info[name]
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_ID else None


def not_found_page(user: CabinetUser) -> web.Response:
    body = f'<section class="card error-box" id="not-found"><h1>{tr("Не найдено", "Not found")}</h1>' \
           f'<p>{tr("В вашем аккаунте этого нет.", "Your account has nothing with this id.")}</p></section>'
    return cabinet_page("not-found", "Не найдено", "Not found", body, csrf=user.csrf, login=user.session.login,
                        status=404)


def refusal_page(error: CloudError) -> web.Response:
    body = f'<section class="card error-box" id="refused"><h1>{tr("Отказано", "Refused")}</h1>' \
           f'<p><code>{esc(error.code)}</code>: {tr(error.ru, error.en)}</p>' \
           f'<p><a href="/cabinet/sign-in">{tr("Войти", "Sign in")}</a></p></section>'
    response = cabinet_page("refused", "Отказано", "Refused", body, status=error.status)
    if error.retry_after:
        response.headers["Retry-After"] = str(error.retry_after)
    return response
