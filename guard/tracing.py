"""Traces and request ids: a span per call, per store script and per scoring batch; an id on every log line.

OpenTelemetry is off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (then spans go to that collector over
OTLP/gRPC, configured by the standard ``OTEL_*`` variables): an unset endpoint costs a no-op tracer. A
caller's W3C ``traceparent`` is honoured, so guard's spans join the sender's trace.

Every call (gRPC or HTTP) has a request id: the caller's ``x-request-id`` when it sends a sane one, else
the trace id of its ``traceparent``, else a fresh one. It is bound to every log line the call writes and
answered back (gRPC trailing metadata, an HTTP response header), so a caller's complaint finds its lines.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from guard import logs

log = logs.get("guard.tracing")

tracer = trace.get_tracer("guard")
_on = False
_ID_PREFIX = secrets.token_hex(6)  # this process's; a counter after it keeps fresh ids unique and cheap
_ids = itertools.count(1)


def on() -> bool:
    """Whether spans are recorded: a tracer provider was set (OTLP configured, or a test's in-memory one).
    While it is not, no span is made at all: the hot path pays nothing for tracing that is off."""
    global _on
    if not _on:
        _on = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _on
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
REQUEST_ID_HEADER = "x-request-id"


def configure() -> bool:
    """Export spans over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; True when it is."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "guard")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("tracing_on", endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])
    return True


def carrier(pairs: Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    """gRPC metadata or HTTP headers as the text map the propagator reads (names lower-cased)."""
    out: dict[str, str] = {}
    for name, value in pairs or ():
        key = name.decode("latin-1") if isinstance(name, bytes) else name
        if key.lower() in ("traceparent", "tracestate", REQUEST_ID_HEADER):
            out[key.lower()] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return out


def request_id(headers: Mapping[str, str], span: Span | None = None) -> str:
    """The caller's ``x-request-id`` if sane, else its trace's id, else a fresh one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    if _REQUEST_ID.match(given):
        return given
    parent = _TRACEPARENT.match(headers.get("traceparent", ""))
    if parent and parent.group(1) != "0" * 32:
        return parent.group(1)
    if span is not None and span.get_span_context().is_valid:
        return format(span.get_span_context().trace_id, "032x")
    return f"{_ID_PREFIX}{next(_ids):x}"


_OFF = nullcontext(trace.INVALID_SPAN)  # what a span is while tracing is off: nothing made, nothing kept


def server_span(name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]) -> AbstractContextManager[Span]:
    """A server span continuing the caller's trace (its ``traceparent``), if any; a no-op span when tracing is off."""
    if not on():
        return _OFF
    return tracer.start_as_current_span(name, context=propagate.extract(headers), kind=SpanKind.SERVER,
                                        attributes=attributes)


def client_span(name: str, **attributes: Any) -> AbstractContextManager[Span]:
    """A span around a call guard makes (a store script, a scoring batch), under the current one."""
    if not on():
        return _OFF
    return tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def failed(span: Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description[:256]))
