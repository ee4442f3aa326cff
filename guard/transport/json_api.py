"""guard's API over HTTP/JSON: ``POST /v1/<Method>`` for every unary ``EngagementGuard`` and ``RecoveryDesk`` method,
on the pages' listener, for callers without gRPC (a PHP campaign engine, a low-code flow, a Lua gateway, curl).

This module is the API's side (no web framework: the pages' listener, ``guard.web.api``, hands each request to
``JsonApi.call``). The body and the answer are proto3 JSON (protobuf's own mapping, the .proto's field names); the key is the same
``Authorization: Bearer`` key, checked for the same roles; the request goes to the very method the gRPC servicer
runs, so validation and answers are the same. A failure is the gRPC status mapped to HTTP the usual way, with a
JSON body ``{code, message, details}``; a DEFER or a BLOCK is an answer like any other (200).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
import orjson
import structlog
from google.protobuf import json_format
from google.protobuf.message import Message

from guard import logs, metrics, tracing
from guard.access.authn import Authenticator
from guard.errors import InvalidArgument
from guard.transport import openapi
from guard.transport.calls import Caller, status_for
from guard.usecases.tenants import Tenants
from guard.v1 import guard_pb2 as pb

log = logs.get("guard.rpc")

# gRPC status → HTTP status (as Google's HTTP/JSON transcoding maps them).
HTTP_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ABORTED: 409, grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.INTERNAL: 500,
}
SERVICES = ("EngagementGuard", "RecoveryDesk")
Handler = Callable[[Any, Caller, Any, Any, dict[str, Any]], Awaitable[Message]]


def methods(servicers: dict[str, Any]) -> dict[str, tuple[Any, Handler, type[Message]]]:
    """Every unary method of the two services: (servicer, the method the gRPC wrapper runs, its request type)."""
    out: dict[str, tuple[Any, Handler, type[Message]]] = {}
    for service in SERVICES:
        servicer = servicers[service]
        for m in pb.DESCRIPTOR.services_by_name[service].methods:
            if m.client_streaming or m.server_streaming:
                continue
            out[m.name] = (servicer, getattr(type(servicer), m.name).__wrapped__, getattr(pb, m.input_type.name))
    return out


def _field_of(message: str) -> str:
    """The field a protobuf JSON parse error is about ('request' when it names none)."""
    for pattern in (r'no field named "([^"]+)"', r"Failed to parse ([A-Za-z0-9_]+) field", r" at [A-Za-z0-9_]+\.(\S+?)\.?$"):
        found = re.search(pattern, message)
        if found:
            return found.group(1)
    return "request"


Answer = tuple[int, bytes, dict[str, str]]  # HTTP status, JSON body, headers


def _error(status: grpc.StatusCode, message: str) -> Answer:
    body = {"code": status.value[0], "status": status.name, "message": message, "details": []}
    return HTTP_BY_STATUS.get(status, 500), orjson.dumps(body), {}


class JsonApi:
    """Every unary method of the two services, called with proto3 JSON; ``spec`` is the OpenAPI document."""

    def __init__(self, servicers: dict[str, Any], auth: Authenticator, tenants: Tenants) -> None:
        self.table = methods(servicers)
        self.auth = auth
        self.tenants = tenants
        self.spec = orjson.dumps(openapi.document(SERVICES))

    async def call(self, name: str, headers: Mapping[str, str], peer: str,
                   body: Callable[[], Awaitable[bytes]]) -> Answer:
        """One call: ``headers`` with lower-case names, ``peer`` as gRPC writes it (ipv4:host:port); the body is read
        only once the key is checked."""
        started = time.perf_counter()
        fields: dict[str, Any] = {"transport": "http"}
        code = grpc.StatusCode.OK
        with tracing.server_span(f"guard.v1/{name}", headers, {"rpc.system": "http", "rpc.method": name}) as span:
            request_id = tracing.request_id(headers, span)
            bound = structlog.contextvars.bind_contextvars(request_id=request_id)
            try:
                found = self.table.get(name)
                if found is None:
                    code = grpc.StatusCode.NOT_FOUND
                    return _error(code, f"no method {name[:64]!r} (POST /v1/<Method> of EngagementGuard or RecoveryDesk)")
                servicer, handler, message_type = found
                grant = await self.auth.authorize([("authorization", headers.get("authorization", ""))], lambda: peer,
                                                  name)
                fields["tenant"], fields["key"] = grant.tenant, grant.key_id
                message = message_type()
                try:
                    json_format.Parse(await body() or b"{}", message)
                except json_format.ParseError as exc:
                    raise InvalidArgument(_field_of(str(exc)), f"not proto3 JSON of {message_type.__name__}: {exc}") from None
                answer = await handler(servicer, Caller(grant, self.tenants.get(grant.tenant)), message, None, fields)
                out = json_format.MessageToDict(answer, preserving_proto_field_name=True)
                return 200, orjson.dumps(out), {tracing.REQUEST_ID_HEADER: request_id}
            except Exception as exc:
                status = status_for(exc)
                if status is None:
                    code = grpc.StatusCode.INTERNAL
                    log.exception("rpc_failed", method=name, transport="http")
                    return _error(code, "internal error; see the server log")
                code = status
                fields["error"] = str(exc)
                tracing.failed(span, f"{status.name}: {exc}")
                return _error(status, str(exc))
            finally:
                elapsed = time.perf_counter() - started
                metrics.RPC_LATENCY.labels(name if name in self.table else "unknown", code.name).observe(elapsed)
                (log.info if code is grpc.StatusCode.OK else log.warning)(
                    "rpc", method=name, code=code.name, ms=round(elapsed * 1000, 2), **fields)
                structlog.contextvars.reset_contextvars(**bound)
