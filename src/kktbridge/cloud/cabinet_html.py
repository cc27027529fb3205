"""The cabinet's HTML pieces: both languages side by side, every value escaped, one layout for every page.

Everything a page shows passes through `esc` (or `tr`, which escapes both texts), so a device name or an order
id a shop chose can never become markup. Pages go out through `cabinet_page`: the layout template
(`web/cabinet.html`), the session's CSRF token in a meta tag for the page's script, the shared strict policy
with forms allowed to post to the cabinet itself.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from string import Template

from aiohttp import web

from ..fiscal import FieldError
from ..web import asset
from ..web.routes import asset_version, page_response

__all__ = ["cabinet_page", "csrf_field", "esc", "field_errors", "fragment", "tr"]

NAV = (("devices", "/cabinet/devices", "Драйверы и кассы", "Drivers and devices"),
       ("receipts", "/cabinet/receipts", "Чеки", "Receipts"),
       ("courier", "/cabinet/courier", "Курьер", "Courier"),
       ("settings", "/cabinet/settings", "Настройки", "Settings"))


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def tr(ru: str, en: str) -> str:
    """Both languages; lang.js and base.css show the chosen one."""
    return f'<span lang="ru">{esc(ru)}</span><span lang="en">{esc(en)}</span>'


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf_token" value="{esc(token)}">'


def field_errors(errors: Iterable[FieldError], *names: str) -> str:
    """The errors of these fields (all of them when no name is given), as a list under the field."""
    items = [f'<li data-field="{esc(e.path)}"><code>{esc(e.path)}</code>: {tr(e.ru, e.en)}</li>'
             for e in errors if not names or e.path in names or e.path.split("[")[0] in names]
    return f'<ul class="error-box field-errors">{"".join(items)}</ul>' if items else ""


def fragment(name: str, **values: object) -> str:
    """A page body from its template in web/ (`$name` placeholders); the values are markup already escaped."""
    return Template(asset(name)).substitute({key: str(value) for key, value in values.items()})


def cabinet_page(page: str, title_ru: str, title_en: str, body: str, *, csrf: str = "", login: str = "",
                 status: int = 200) -> web.Response:
    nav = ""
    if csrf:
        links = "".join(f'<a href="{href}"{" aria-current=page" if key == page else ""}>{tr(ru, en)}</a>'
                        for key, href, ru, en in NAV)
        nav = (f'<nav class="cabinet-nav">{links}</nav><span class="who">{esc(login)}</span>'
               f'<form method="post" action="/cabinet/sign-out" class="sign-out">{csrf_field(csrf)}'
               f'<button type="submit" class="secondary" id="sign-out">{tr("Выйти", "Sign out")}</button></form>')
    text = Template(asset("cabinet.html")).substitute(
        v=asset_version(), page=esc(page), csrf=esc(csrf), title=f"{esc(title_ru)} / {esc(title_en)}", nav=nav,
        body=body)
    response = page_response(text, form_action="'self'")
    response.set_status(status)
    return response
