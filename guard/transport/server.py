"""The gRPC transport: servicer, error → status table, health, reflection, drain.

Handlers are thin: map the request, call the service, map the answer. One
canonical log line per call (method, code, latency, decision, reasons), never
any message text.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from guard import logs, metrics
from guard.errors import Conflict, InvalidArgument, NotFound, PreconditionFailed, StoreUnavailable
from guard.feedback import FeedbackService
from guard.preferences import PreferenceService
from guard.service import GuardService
from guard.transport import mapping
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from guard.validate import check_id

log = logs.get("guard.rpc")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EngagementGuard"].full_name
DESK_NAME = pb.DESCRIPTOR.services_by_name["RecoveryDesk"].full_name
REDIS_HEALTH_NAME = "guard.redis"

# One table from failure type to gRPC status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (Conflict, grpc.StatusCode.ABORTED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
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


def _lenient(message_type: Any) -> Callable[[bytes], Any]:
    def decode(body: bytes) -> Any:
        try:
            return message_type.FromString(body)
        except DecodeError:
            return Undecodable(message_type.DESCRIPTOR.full_name)

    return decode


def add_servicer(servicer: Any, service_name: str, server: grpc.aio.Server) -> None:
    """Register every method of a guard.v1 service, built from its descriptor (the generated adder, leniently)."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in pb.DESCRIPTOR.services_by_name[service_name].methods:
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        make = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = make(getattr(servicer, method.name), request_deserializer=_lenient(request_type),
                                     response_serializer=response_type.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(f"guard.v1.{service_name}", handlers),))


Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


def rpc(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Maps typed failures to status codes, times the call and writes its one log line."""
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        fields: dict[str, Any] = {}
        code = grpc.StatusCode.OK
        try:
            if isinstance(request, Undecodable):
                raise request.error()
            return await method(self, request, context, fields)
        except Exception as exc:
            for error_type, status in STATUS_BY_ERROR:
                if isinstance(exc, error_type):
                    code = status
                    fields["error"] = str(exc)
                    await context.abort(status, str(exc))
            code = grpc.StatusCode.INTERNAL
            log.exception("rpc_failed", method=name)
            await context.abort(code, "internal error; see the server log")
        finally:
            elapsed = time.perf_counter() - started
            metrics.RPC_LATENCY.labels(name, code.name).observe(elapsed)
            log.info("rpc", method=name, code=code.name, ms=round(elapsed * 1000, 2), **fields)

    return wrapper


class EngagementGuardServicer(pb_grpc.EngagementGuardServicer):
    def __init__(self, service: GuardService, preferences: PreferenceService, feedback: FeedbackService) -> None:
        self.service = service
        self.preferences = preferences
        self.feedback = feedback

    @rpc
    async def RecordReply(
        self, request: pb.RecordReplyRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.RecordReplyResponse:
        received = mapping.ts_to_ms(request.received_at, "received_at") if request.HasField("received_at") else 0
        if request.HasField("received_at") and received <= 0:
            raise InvalidArgument("received_at", "must be after 1970")
        result = await self.feedback.record(request.user_id, request.channel, request.text, request.reply_id,
                                            request.in_reply_to_touch_id, request.campaign_id, received)
        log_fields.update(label=result.label, action=result.action, task=bool(result.task_id), replayed=result.replayed)
        return mapping.reply_to_pb(result)

    @rpc
    async def CheckTouch(self, request: pb.CheckTouchRequest, context: Any, log_fields: dict[str, Any]) -> pb.CheckTouchResponse:
        outcome = await self.service.check(mapping.touch_from_pb(request))
        log_fields.update(
            decision=outcome.verdict.value,
            reasons=[r.value for r in outcome.reasons],
            touch_class=pb.TouchClass.Name(request.touch_class),
            recorded=outcome.recorded,
        )
        return mapping.outcome_to_pb(outcome)

    @rpc
    async def CheckTouches(
        self, request: pb.CheckTouchesRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.CheckTouchesResponse:
        touches = [mapping.touch_from_pb(c, f"checks[{i}].") for i, c in enumerate(request.checks)]
        outcomes = await self.service.check_many(touches)
        log_fields.update(items=len(outcomes), allowed=sum(o.verdict.value == "ALLOW" for o in outcomes))
        return pb.CheckTouchesResponse(results=[mapping.outcome_to_pb(o) for o in outcomes])

    @rpc
    async def CancelTouch(
        self, request: pb.CancelTouchRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.CancelTouchResponse:
        done = await self.service.cancel(request.user_id, request.touch_id)
        log_fields.update(cancelled=done)
        detail = "touch given back" if done else "no recorded touch with that id (already cancelled or never recorded)"
        return pb.CancelTouchResponse(cancelled=done, detail=detail)

    @rpc
    async def GetPreferences(self, request: pb.GetPreferencesRequest, context: Any, log_fields: dict[str, Any]) -> pb.Preferences:
        return mapping.prefs_to_pb(request.user_id, await self.preferences.get_preferences(request.user_id))

    @rpc
    async def UpdatePreferences(
        self, request: pb.UpdatePreferencesRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.Preferences:
        expected = request.expected_version if request.HasField("expected_version") else None
        prefs = await self.preferences.update_preferences(
            request.preferences.user_id,
            mapping.patch_from_pb(request),
            source=request.source,
            actor=request.actor,
            expected_version=expected,
        )
        log_fields.update(paths=list(request.update_mask.paths), version=prefs.version)
        return mapping.prefs_to_pb(request.preferences.user_id, prefs)

    @rpc
    async def GetUserState(self, request: pb.GetUserStateRequest, context: Any, log_fields: dict[str, Any]) -> pb.UserState:
        return mapping.user_state_to_pb(request.user_id, await self.service.user_state(request.user_id))

    @rpc
    async def ListConsentEvents(
        self, request: pb.ListConsentEventsRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.ListConsentEventsResponse:
        events, token = await self.preferences.consent_events(request.user_id, request.page_size, request.page_token)
        return pb.ListConsentEventsResponse(events=[mapping.consent_to_pb(e) for e in events], next_page_token=token)


_STATUS_NAMES = {pb.OPEN: "OPEN", pb.CLAIMED: "CLAIMED", pb.RESOLVED: "RESOLVED"}
_OUTCOME_NAMES = {pb.RECOVERED: "RECOVERED", pb.NO_ACTION: "NO_ACTION", pb.ESCALATED: "ESCALATED"}


class RecoveryDeskServicer(pb_grpc.RecoveryDeskServicer):
    def __init__(self, feedback: FeedbackService) -> None:
        self.feedback = feedback

    async def WatchRecoveryTasks(
        self, request: pb.WatchRecoveryTasksRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RecoveryTask]:
        try:
            if isinstance(request, Undecodable):
                raise request.error()
            check_id(request.consumer, "consumer")
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        log.info("watch_started", consumer=request.consumer)
        sent = 0
        try:
            async for task in self.feedback.watch(request.consumer):
                sent += 1
                yield mapping.task_to_pb(task)
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StoreUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            log.info("watch_ended", consumer=request.consumer, delivered=sent)

    @rpc
    async def ListRecoveryTasks(
        self, request: pb.ListRecoveryTasksRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.ListRecoveryTasksResponse:
        if request.status and request.status not in _STATUS_NAMES:
            raise InvalidArgument("status", f"unknown task status {request.status}")
        tasks, token = await self.feedback.list_tasks(_STATUS_NAMES.get(request.status, ""), request.page_size,
                                                      request.page_token)
        log_fields.update(items=len(tasks))
        return pb.ListRecoveryTasksResponse(tasks=[mapping.task_to_pb(t) for t in tasks], next_page_token=token)

    @rpc
    async def ClaimRecoveryTask(
        self, request: pb.ClaimRecoveryTaskRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.RecoveryTask:
        task = await self.feedback.claim(request.task_id, request.agent)
        log_fields.update(task_id=task.task_id, agent=task.assignee)  # logged once checked, never before
        return mapping.task_to_pb(task)

    @rpc
    async def ResolveRecoveryTask(
        self, request: pb.ResolveRecoveryTaskRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.RecoveryTask:
        task = await self.feedback.resolve(request.task_id, request.agent, _OUTCOME_NAMES.get(request.outcome, ""),
                                           request.note, request.lift_hold)
        log_fields.update(task_id=task.task_id, agent=task.assignee, lift_hold=request.lift_hold)
        return mapping.task_to_pb(task)


class GuardServer:
    """The aio server with health (overall, the service, and Redis apart) and reflection."""

    def __init__(self, service: GuardService, preferences: PreferenceService, feedback: FeedbackService, listen: str, *,
                 max_message_bytes: int = 4 << 20, reuse_port: bool = False) -> None:
        self.service = service
        # The message limit is set on purpose (not left to a library default): past it a call is
        # RESOURCE_EXHAUSTED before any of it is read; every field inside has its own limit.
        # A lone server refuses a port in use; the workers of one supervisor share theirs (SO_REUSEPORT).
        options: list[tuple[str, int]] = [
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if reuse_port:
            # The kernel spreads connections, not calls, over the workers: a client connection is asked to
            # reconnect after a while (GOAWAY), so long-lived clients are spread again over time.
            options += [("grpc.max_connection_age_ms", 300_000), ("grpc.max_connection_age_grace_ms", 30_000)]
        self.server = grpc.aio.server(options=options)
        add_servicer(EngagementGuardServicer(service, preferences, feedback), "EngagementGuard", self.server)
        add_servicer(RecoveryDeskServicer(feedback), "RecoveryDesk", self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        reflection.enable_server_reflection((SERVICE_NAME, DESK_NAME, health_name, reflection.SERVICE_NAME), self.server)
        self.port = self.server.add_insecure_port(listen)
        if self.port == 0:
            raise OSError(f"cannot listen on {listen}")
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        for name in ("", SERVICE_NAME, DESK_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._watch = asyncio.create_task(self._watch_redis())

    async def _watch_redis(self, every_s: float = 2.0) -> None:
        """Redis reachability under its own health name; the fail modes still answer without it."""
        last: bool | None = None
        while True:
            ok = await self.service.store.ping()
            if ok != last:
                status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
                await self.health.set(REDIS_HEALTH_NAME, status)
                (log.info if ok else log.warning)("redis_health", reachable=ok)
                last = ok
            await asyncio.sleep(every_s)

    async def drain(self, grace_s: float) -> None:
        """Stop taking calls, report NOT_SERVING, let calls in flight finish."""
        await self.health.enter_graceful_shutdown()
        if self._watch is not None:
            self._watch.cancel()
        log.info("draining", grace_s=grace_s)
        await self.server.stop(grace_s)

    async def wait(self) -> None:
        await self.server.wait_for_termination()
