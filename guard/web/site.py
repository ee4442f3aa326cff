"""The pages assembled: the preference center, the desk, the static files and the probes, behind the body
limits and the security headers (the parts come from ``toolkit``, ``prefs`` and ``desk``)."""

from __future__ import annotations

from importlib import resources

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from guard.web import desk, prefs, receivers
from guard.web.api import JsonCalls
from guard.web.api import routes as json_routes
from guard.web.limits import ASGIApp, BodyLimits
from guard.web.toolkit import MAX_FORM_BYTES, SecurityHeaders, Web, exception_handlers, plain


def ready(web: Web) -> Response:
    """Kubernetes readiness: 200 while the store answers and is trusted, else 503 and why (liveness: /healthz)."""
    problem = web.readiness()
    return plain(f"not ready: {problem}", 503) if problem else plain("ready", 200)


def build_site(web: Web, *, body_timeout_s: float = 30.0, webhook_bytes: int = receivers.MAX_WEBHOOK_BYTES,
               api: JsonCalls | None = None, api_bytes: int = 4 << 20) -> ASGIApp:
    """``api``: the HTTP/JSON twin of the gRPC API (``POST /v1/<Method>``), handed in by the process that has both."""
    static = StaticFiles(directory=str(resources.files("guard.web").joinpath("static")))
    routes = [*prefs.routes(web), *desk.routes(web), *receivers.routes(web), *(json_routes(api) if api else []),
              Mount("/static", app=static, name="static"),
              Route("/healthz", lambda request: plain("ok", 200)), Route("/readyz", lambda request: ready(web))]
    site = Starlette(routes=routes, exception_handlers=exception_handlers())

    def limit_for(path: str) -> int:
        if path.startswith("/v1/"):
            return api_bytes  # the gRPC message limit (GUARD_MAX_MESSAGE_BYTES)
        return webhook_bytes if path.startswith("/hooks/") else MAX_FORM_BYTES
    return SecurityHeaders(BodyLimits(site, limit_for=limit_for, body_timeout_s=body_timeout_s))
