"""The pages' application: routes, templates, the security headers, one log line per request.

Server-rendered HTML that works without JavaScript; the one script (the desk's live queue) is a
static file, so the Content-Security-Policy allows no inline script at all. Every page answers
``Referrer-Policy: no-referrer`` (tokenised addresses never leak to another site) and
``Cache-Control: no-store``. The log line names the route, never a token or a user id.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from guard import logs
from guard.errors import StoreUnavailable
from guard.store.control import ControlStore
from guard.tenants import Tenants
from guard.transport.authn import Authenticator
from guard.web import i18n

log = logs.get("guard.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_TOKENISED = re.compile(r"^/(p|u)/[^/?]+")


@dataclass
class Web:
    """What the pages share: the tenants' use cases, the key check, the pages' secret, the shutdown signal."""

    tenants: Tenants
    auth: Authenticator
    control: ControlStore
    public_url: str
    session_hours: float = 8.0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _secret: bytes = b""
    templates: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("guard.web", "templates"), autoescape=True, undefined=jinja2.StrictUndefined)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    async def secret(self) -> bytes:
        """The deployment's pages secret (one for every process, made by the first to need it)."""
        if not self._secret:
            self._secret = await self.control.web_secret(secrets.token_bytes(32))
        return self._secret

    def render(self, request: Request, name: str, locale: str, status: int = 200, **values: Any) -> HTMLResponse:
        switch = {lang: _with_lang(request, lang) for lang in i18n.LOCALES}
        html = self.templates.get_template(name).render(t=i18n.words(locale), locale=locale, switch=switch, **values)
        return HTMLResponse(html, status_code=status)


def _with_lang(request: Request, lang: str) -> str:
    """This page's address in another language (the visible switch)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "saved")]
    query.append(("lang", lang))
    return request.url.path + "?" + urlencode(query)


def locale_for(request: Request) -> str:
    return i18n.negotiate(request.query_params.get("lang", ""), request.headers.get("accept-language", ""))


class SecurityHeaders:
    """Adds the security headers to every answer and writes the request's one log line (route, status, time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in SECURITY_HEADERS if name not in names]
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        finally:
            route = _TOKENISED.sub(r"/\1/{token}", scope.get("path", ""))
            log.info("http", method=scope.get("method"), route=route, status=status[0],
                     ms=round((time.perf_counter() - started) * 1000, 2))


def plain(text: str, status: int) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8")


MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> FormData | Response:
    """A posted form, or the 413 answer to one larger than any page of guard's sends."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return plain("the form is too large", 413)
    return await request.form()


def build_site(web: Web) -> ASGIApp:
    from guard.web import desk, prefs

    static = StaticFiles(directory=str(resources.files("guard.web").joinpath("static")))
    routes = [*prefs.routes(web), *desk.routes(web), Mount("/static", app=static, name="static"),
              Route("/healthz", lambda request: plain("ok", 200))]
    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("http_store_unavailable", error=str(exc))
        return plain("guard's store is not answering; please try again in a minute", 503)

    return SecurityHeaders(Starlette(routes=routes, exception_handlers={StoreUnavailable: unavailable}))
