"""The HTTP/JSON twin of the gRPC API on the pages' listener: ``POST /v1/<Method>`` and ``GET /v1/openapi.json``.

Only the HTTP side lives here; the calls themselves are the API's (``guard.transport.json_api.JsonApi``, handed in by
the process that has both transports, which stay apart).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class JsonCalls(Protocol):
    spec: bytes  # the OpenAPI document

    async def call(self, name: str, headers: Mapping[str, str], peer: str,
                   body: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes, dict[str, str]]: ...


def routes(api: JsonCalls) -> list[Route]:
    async def call(request: Request) -> Response:
        client = request.client
        status, body, headers = await api.call(
            request.path_params["method"], {k.lower(): v for k, v in request.headers.items()},
            f"ipv4:{client.host}:{client.port}" if client else "unknown", request.body)
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    async def document(request: Request) -> Response:
        return Response(api.spec, media_type="application/json")

    return [Route("/v1/openapi.json", document, methods=["GET"]), Route("/v1/{method}", call, methods=["POST"])]
