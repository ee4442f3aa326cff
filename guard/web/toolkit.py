"""The pages' toolkit: the per-process ``Web`` (templates, sessions, tenants), the security headers, one log
line per request, form reading, and the one failure table (errors to statuses) every page shares.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jinja2
import structlog
from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response

from guard import logs, metrics, tracing
from guard.access.authn import Authenticator
from guard.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    StoreUnavailable,
    TooManyFailures,
    Unauthenticated,
)
from guard.store.control import ControlStore
from guard.usecases.hooks import PROVIDERS, HookService
from guard.usecases.tenants import Tenants
from guard.web import i18n
from guard.web.limits import ASGIApp, BodyTooLarge, BodyTooSlow, Message, Receive, Scope, Send

log = logs.get("guard.web")

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
_TOKENISED = re.compile(r"^/(p|u|c)/[^/?]+")


@dataclass
class Web:
    """What the pages share: the tenants' use cases, the key check, the pages' secret, the shutdown signal."""

    tenants: Tenants
    auth: Authenticator
    control: ControlStore
    public_url: str
    session_hours: float = 8.0
    streams_per_session: int = 3  # the desk's live queues one sign-in may hold open
    streams_per_key: int = 10  # and all sign-ins of one key together
    # Why this process should get no traffic ('' when it should): what /readyz answers (the gRPC health's reason).
    readiness: Callable[[], str] = lambda: ""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    hooks: HookService | None = None  # the providers' webhook receivers (guard.web.receivers)
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
    """Adds the security headers to every answer, gives the request its id (answered as ``x-request-id``, bound
    to its log lines) and span, and writes its one log line (route, status, time; a refusal at warning)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]
        route = _route(scope.get("path", ""))
        headers = tracing.carrier(scope.get("headers"))
        with tracing.server_span(f"HTTP {scope.get('method')} {route}", headers,
                                 {"http.request.method": str(scope.get("method")), "http.route": route}) as span:
            request_id = tracing.request_id(headers, span)

            async def with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    names = {name.lower() for name, _ in message.get("headers", [])}
                    message["headers"] = list(message.get("headers", [])) + [
                        (name, value) for name, value in SECURITY_HEADERS if name not in names] + [
                        (b"x-request-id", request_id.encode("ascii"))]
                await send(message)

            with structlog.contextvars.bound_contextvars(request_id=request_id):
                try:
                    await self.app(scope, receive, with_headers)
                finally:
                    span.set_attribute("http.response.status_code", status[0])
                    (log.info if status[0] < 400 else log.warning)(
                        "http", method=scope.get("method"), route=route, status=status[0],
                        ms=round((time.perf_counter() - started) * 1000, 2))


def plain(text: str, status: int) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8")


MAX_FORM_BYTES = 64 * 1024  # the largest body any page of guard's sends, counted as it arrives


async def read_form(request: Request) -> FormData:
    """A posted form; the body's limit and deadline are ``limits.BodyLimits``' (413 and 408 through the handlers)."""
    return await request.form()


def _closing(text: str, status: int) -> Response:
    """An answer after which the connection closes: the rest of a refused body is never read."""
    response = plain(text, status)
    response.headers["connection"] = "close"
    return response


async def _too_large(request: Request, exc: Exception) -> Response:
    log.info("http_body_too_large", route=_route(request.url.path), limit=getattr(exc, "limit", 0))
    parts = request.url.path.split("/")
    if len(parts) > 3 and parts[1] == "hooks":  # a provider's webhook: counted with its refusals
        metrics.WEBHOOK_EVENTS.labels(parts[3] if parts[3] in PROVIDERS else "unknown", "too_large").inc()
    return _closing("the request body is too large", 413)


async def _too_slow(request: Request, exc: Exception) -> Response:
    log.info("http_body_timeout", route=_route(request.url.path), timeout_s=getattr(exc, "timeout_s", 0))
    return _closing("the request body did not arrive in time", 408)


async def _client_gone(request: Request, exc: Exception) -> Response:
    log.info("http_client_disconnected", route=_route(request.url.path))
    return _closing("the client went away", 400)  # nobody reads it; the log line says what happened


# The pages' one table from failure type to HTTP status (the gRPC transport has its twin in transport/calls.py):
# a handler catches only what it answers in its own way (a stale form, a claim someone else made); every other
# failure reaches this table through Starlette's exception handlers.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (InvalidArgument, 400), (Unauthenticated, 401), (PermissionDenied, 403), (NotFound, 404), (Conflict, 409),
    (PreconditionFailed, 409), (TooManyFailures, 429), (StoreUnavailable, 503),
)


async def _failed(request: Request, exc: Exception) -> Response:
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
    if status == 503:
        log.warning("http_store_unavailable", error=str(exc))
        return plain("guard's store is not answering; please try again in a minute", 503)
    return plain(str(exc), status)


def _route(path: str) -> str:
    """A path as logged: a token in it is never written."""
    return _TOKENISED.sub(r"/\1/{token}", path)


def exception_handlers() -> dict[Any, Any]:
    """Starlette's handlers for everything a page can raise: the one failure table, body limits, vanished clients."""
    handlers: dict[Any, Any] = {kind: _failed for kind, _ in STATUS_BY_ERROR}
    handlers.update({BodyTooLarge: _too_large, BodyTooSlow: _too_slow, ClientDisconnect: _client_gone})
    return handlers
