"""What every guard call goes through: the key check, the failure → status table, the one log line.

Shared by the transport's servicers; nothing of a request is read before its key is checked.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import structlog
from google.protobuf.message import DecodeError

from guard import logs, metrics, tracing
from guard.access.authn import Authenticator
from guard.access.keys import Grant
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
from guard.usecases.tenants import Services, Tenants

log = logs.get("guard.rpc")

# One table from failure type to gRPC status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (Conflict, grpc.StatusCode.ABORTED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (TooManyFailures, grpc.StatusCode.RESOURCE_EXHAUSTED),
)

class Undecodable:
    """What a request body that is not a message of the method's type decodes to.

    gRPC's own handlers would answer such a body with UNKNOWN; guard answers INVALID_ARGUMENT
    naming ``request``, like any other bad input.
    """

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def error(self) -> InvalidArgument:
        return InvalidArgument("request", f"is not a {self.type_name} message (the wire format is corrupt)")


def lenient(message_type: Any) -> Callable[[bytes], Any]:
    def decode(body: bytes) -> Any:
        try:
            return message_type.FromString(body)
        except DecodeError:
            return Undecodable(message_type.DESCRIPTOR.full_name)

    return decode


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The status a typed failure maps to; None for anything else (an internal error)."""
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return None


@dataclass(frozen=True)
class Caller:
    """Who is calling (the key's grant) and the use cases of their tenant: the tenant comes from the key."""

    grant: Grant
    services: Services


class Authenticated(Protocol):
    auth: Authenticator
    tenants: Tenants


def rpc(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Checks the caller's key and role first, then maps typed failures to status codes, times the call and
    writes its one log line. Nothing of the request is read before the key is checked."""
    name = method.__name__
    span_name = f"guard.v1/{name}"
    span_attributes = {"rpc.system": "grpc", "rpc.method": name}

    @functools.wraps(method)
    async def wrapper(self: Authenticated, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        fields: dict[str, Any] = {}
        code = grpc.StatusCode.OK
        headers = tracing.carrier(context.invocation_metadata())
        with tracing.server_span(span_name, headers, span_attributes) as span:
            request_id = tracing.request_id(headers, span)
            answer_back = ((tracing.REQUEST_ID_HEADER, request_id),)
            context.set_trailing_metadata(answer_back)
            bound = structlog.contextvars.bind_contextvars(request_id=request_id)  # on every line this call logs
            try:
                grant = await self.auth.authorize(context.invocation_metadata(), context.peer, name)
                fields["tenant"], fields["key"] = grant.tenant, grant.key_id
                if isinstance(request, Undecodable):
                    raise request.error()
                user = getattr(request, "user_id", None)
                if user:
                    fields["user_id"] = user  # dropped by the log's privacy step, or hashed (GUARD_LOG_USER_IDS=hash)
                return await method(self, Caller(grant, self.tenants.get(grant.tenant)), request, context, fields)
            except Exception as exc:
                status = status_for(exc)
                if status is not None:
                    code = status
                    fields["error"] = str(exc)
                    tracing.failed(span, f"{status.name}: {exc}")
                    await context.abort(status, str(exc), trailing_metadata=answer_back)
                code = grpc.StatusCode.INTERNAL
                log.exception("rpc_failed", method=name)
                tracing.failed(span, "internal error")
                await context.abort(code, "internal error; see the server log", trailing_metadata=answer_back)
            finally:
                elapsed = time.perf_counter() - started
                metrics.RPC_LATENCY.labels(name, code.name).observe(elapsed)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if "decision" in fields:
                    span.set_attribute("guard.decision", fields["decision"])
                # A failed call is a warning (a caller to look at); an answered one is information.
                (log.info if code is grpc.StatusCode.OK else log.warning)(
                    "rpc", method=name, code=code.name, ms=round(elapsed * 1000, 2), **fields)
                structlog.contextvars.reset_contextvars(**bound)

    return wrapper
