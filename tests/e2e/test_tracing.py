"""Traces and request ids, with the OpenTelemetry SDK's in-memory exporter: a span per call, per store script and
per scoring batch, joining the caller's trace (W3C ``traceparent``); a request id on every log line of a call,
answered back to the caller (gRPC trailing metadata, the ``x-request-id`` header)."""

from __future__ import annotations

import grpc
import httpx
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import NEGATIVE, admin_key, aio_channel

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: guard's tracer follows the global provider
    return exporter


async def test_a_call_joins_the_callers_trace_with_spans_for_the_script_and_the_model(app, spans):
    spans.clear()
    metadata = (("traceparent", f"00-{TRACE_ID}-{PARENT}-01"),)
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logged:
            call = stub.CheckTouch(pb.CheckTouchRequest(user_id="u1", channel="push", category="promotion",
                                                        touch_id="t1"), metadata=metadata, timeout=10)
            assert (await call).recorded
        trailing = dict(await call.trailing_metadata())
        assert trailing["x-request-id"] == TRACE_ID  # the trace's id, when the caller sends no request id
        reply = stub.RecordReply(pb.RecordReplyRequest(user_id="u2", channel="sms", text=NEGATIVE, reply_id="r1"),
                                 metadata=(("traceparent", f"00-{TRACE_ID}-{PARENT}-01"), ("x-request-id", "job-42")),
                                 timeout=20)
        assert (await reply).task_id and dict(await reply.trailing_metadata())["x-request-id"] == "job-42"
    finished = {s.name: s for s in spans.get_finished_spans()}
    server = finished["guard.v1/CheckTouch"]
    assert format(server.context.trace_id, "032x") == TRACE_ID and format(server.parent.span_id, "016x") == PARENT
    script = finished["redis check_touch"]
    assert script.context.trace_id == server.context.trace_id and script.parent.span_id == server.context.span_id
    assert finished["sentiment score"].context.trace_id == server.context.trace_id
    assert server.attributes["guard.decision"] == "ALLOW"
    lines = [e for e in logged if e["event"] == "rpc"]
    assert lines and all(e["request_id"] == TRACE_ID for e in lines)


async def test_a_refused_call_answers_its_request_id_too_and_its_span_says_it_failed(app, spans):
    spans.clear()
    async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
        call = pb_grpc.EngagementGuardStub(channel).CheckTouch(
            pb.CheckTouchRequest(user_id="u1", channel="fax", category="promotion", touch_id="t1"),
            metadata=(("x-request-id", "req-7"),), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(await call.trailing_metadata())["x-request-id"] == "req-7"
    server = next(s for s in spans.get_finished_spans() if s.name == "guard.v1/CheckTouch")
    assert not server.status.is_ok


async def test_pages_answer_a_request_id_and_join_the_trace(app, spans):
    spans.clear()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}") as client:
        answer = await client.get("/healthz", headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
        other = await client.get("/healthz", headers={"x-request-id": "page-1"})
    assert answer.headers["x-request-id"] == TRACE_ID and other.headers["x-request-id"] == "page-1"
    page = next(s for s in spans.get_finished_spans() if s.name == "HTTP GET /healthz")
    assert format(page.context.trace_id, "032x") == TRACE_ID
