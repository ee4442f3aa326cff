"""The providers' webhook receivers: ``POST /hooks/<tenant>/<provider>`` on the pages' listener.

The body is read whole within ``GUARD_MAX_WEBHOOK_BYTES`` (``limits.BodyLimits``), never logged, and handed with
the URL the provider called (``GUARD_PUBLIC_URL`` + path: what a signature over the URL covers) to the hooks use
case. Each refusal answers the status the provider acts on: 403 (forged, stale, replayed: retrying cannot help),
400 naming the field (malformed), 404 (no such receiver for the tenant), 503 (guard's store: retry later).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guard import metrics
from guard.access.keys import check_tenant
from guard.errors import InvalidArgument
from guard.providers import Refused
from guard.providers import Request as HookRequest
from guard.usecases.hooks import PROVIDERS
from guard.web.toolkit import Web, plain

MAX_WEBHOOK_BYTES = 2 << 20  # GUARD_MAX_WEBHOOK_BYTES' default: SendGrid's largest batches fit


def routes(web: Web) -> list[Route]:
    async def receive(request: Request) -> Response:
        provider, tenant = request.path_params["provider"], request.path_params["tenant"]
        if web.hooks is None:
            return plain("webhook receivers are off", 404)
        try:
            check_tenant(tenant)
        except InvalidArgument:
            metrics.WEBHOOK_EVENTS.labels("unknown", "not_configured").inc()
            return plain("no such tenant", 404)
        query = f"?{request.url.query}" if request.url.query else ""
        url = web.public_url.rstrip("/") + request.url.path + query
        if request.method == "GET":  # a provider checking the URL is its receiver (WeCom, when the URL is saved)
            try:
                echo = await web.hooks.handshake(tenant, provider, HookRequest(url, {}, b"", web.hooks.now()))
            except Refused as refused:
                return plain(str(refused), refused.status)
            return Response(echo, media_type="text/plain; charset=utf-8")
        body = await request.body()
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            try:
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200))
            except (UnicodeDecodeError, ValueError):
                return plain("body: a form in UTF-8 is expected", 400)
        hook = HookRequest(url, {k.lower(): v for k, v in request.headers.items()}, body, web.hooks.now(), form,
                           request.path_params.get("secret", ""))
        try:
            outcome = await web.hooks.receive(tenant, provider, hook)
        except Refused as refused:
            return plain(str(refused), refused.status)
        fixed = getattr(PROVIDERS.get(provider), "ANSWER", None)  # a provider that expects its own answer says it
        if fixed is not None:
            return Response(fixed[0], media_type=fixed[1])
        return JSONResponse({"applied": outcome.applied, "replayed": outcome.replayed, "unmatched": outcome.unmatched,
                             "ignored": outcome.ignored})

    return [Route("/hooks/{tenant}/{provider}", receive, methods=["GET", "POST"]),
            Route("/hooks/{tenant}/{provider}/{secret}", receive, methods=["POST"])]
