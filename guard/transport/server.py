"""The gRPC transport: the servicers, TLS, health, reflection, drain.

Handlers are thin: the caller's key is checked and its tenant's use cases chosen
(``calls.rpc``), then map the request, call the service, map the answer. One
canonical log line per call (method, code, latency, tenant, key id, decision,
reasons), never any message text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import orjson
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection as grpc_reflection

from guard import logs, metrics
from guard.access.authn import Authenticator
from guard.errors import InvalidArgument
from guard.providers import contacts
from guard.settings import Settings
from guard.transport import mapping
from guard.transport.admin import AdminServicer
from guard.transport.calls import Caller, Undecodable, lenient, rpc, status_for
from guard.usecases.hooks import HookService
from guard.usecases.links import ONE_CLICK
from guard.usecases.replies import MODEL_OUTAGE
from guard.usecases.tenants import Tenants
from guard.usecases.webhooks import Outbound
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from guard.validate import check_id, shown

log = logs.get("guard.rpc")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EngagementGuard"].full_name
DESK_NAME = pb.DESCRIPTOR.services_by_name["RecoveryDesk"].full_name
ADMIN_NAME = pb.DESCRIPTOR.services_by_name["Admin"].full_name
REDIS_HEALTH_NAME = "guard.redis"
MODEL_HEALTH_NAME = "guard.model"  # NOT_SERVING while scoring fails (replies are kept and scored when it works)

def add_servicer(servicer: Any, service_name: str, server: grpc.aio.Server) -> None:
    """Register every method of a guard.v1 service, built from its descriptor (the generated adder, leniently)."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in pb.DESCRIPTOR.services_by_name[service_name].methods:
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        make = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = make(getattr(servicer, method.name), request_deserializer=lenient(request_type),
                                     response_serializer=response_type.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(f"guard.v1.{service_name}", handlers),))


class EngagementGuardServicer(pb_grpc.EngagementGuardServicer):
    def __init__(self, tenants: Tenants, auth: Authenticator, hooks: HookService | None = None) -> None:
        self.tenants = tenants
        self.auth = auth
        self.hooks = hooks

    @rpc
    async def RecordReply(
        self, caller: Caller, request: pb.RecordReplyRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.RecordReplyResponse:
        received = mapping.ts_to_ms(request.received_at, "received_at") if request.HasField("received_at") else 0
        if request.HasField("received_at") and received <= 0:
            raise InvalidArgument("received_at", "must be after 1970")
        result = await caller.services.replies.record(request.user_id, request.channel, request.text,
                                                       request.reply_id, request.in_reply_to_touch_id,
                                                       request.campaign_id, received)
        log_fields.update(label=result.label, action=result.action, task=bool(result.task_id), replayed=result.replayed)
        return mapping.reply_to_pb(result)

    @rpc
    async def CheckTouch(
        self, caller: Caller, request: pb.CheckTouchRequest, context: Any, log_fields: dict[str, Any]) -> pb.CheckTouchResponse:
        touch = mapping.touch_from_pb(request)
        self._recipients([request])
        outcome = await caller.services.service.check(touch)
        if request.recipient and self.hooks is not None:
            await self.hooks.remember_contact(caller.grant.tenant, touch.user_id, request.recipient)
        log_fields.update(
            decision=outcome.verdict.value,
            reasons=[r.value for r in outcome.reasons],
            touch_class=pb.TouchClass.Name(request.touch_class),
            recorded=outcome.recorded,
        )
        return mapping.outcome_to_pb(outcome)

    @rpc
    async def CheckTouches(
        self, caller: Caller, request: pb.CheckTouchesRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.CheckTouchesResponse:
        touches = [mapping.touch_from_pb(c, f"checks[{i}].") for i, c in enumerate(request.checks)]
        self._recipients(request.checks, "checks")
        outcomes = await caller.services.service.check_many(touches)
        if self.hooks is not None:
            for c in request.checks:
                if c.recipient:
                    await self.hooks.remember_contact(caller.grant.tenant, c.user_id, c.recipient)
        log_fields.update(items=len(outcomes), allowed=sum(o.verdict.value == "ALLOW" for o in outcomes))
        return pb.CheckTouchesResponse(results=[mapping.outcome_to_pb(o) for o in outcomes])

    @staticmethod
    def _recipients(checks: Any, prefix: str = "") -> None:
        """Every recipient read before anything is checked or stored."""
        for i, c in enumerate(checks):
            if c.recipient:
                try:
                    contacts.normalise(c.recipient)
                except ValueError as exc:
                    raise InvalidArgument(f"{prefix}[{i}].recipient" if prefix else "recipient", str(exc)) from None

    @rpc
    async def CancelTouch(
        self, caller: Caller, request: pb.CancelTouchRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.CancelTouchResponse:
        done = await caller.services.service.cancel(request.user_id, request.touch_id)
        log_fields.update(cancelled=done)
        detail = "touch given back" if done else "no recorded touch with that id (already cancelled or never recorded)"
        return pb.CancelTouchResponse(cancelled=done, detail=detail)

    @rpc
    async def GetPreferences(
        self, caller: Caller, request: pb.GetPreferencesRequest, context: Any, log_fields: dict[str, Any]) -> pb.Preferences:
        return mapping.prefs_to_pb(request.user_id, await caller.services.preferences.get_preferences(request.user_id),
                                   caller.services.policy)

    @rpc
    async def UpdatePreferences(
        self, caller: Caller, request: pb.UpdatePreferencesRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.Preferences:
        expected = request.expected_version if request.HasField("expected_version") else None
        prefs = await caller.services.preferences.update_preferences(
            request.preferences.user_id,
            mapping.patch_from_pb(request),
            source=request.source,
            actor=request.actor,
            expected_version=expected,
            evidence={"key": caller.grant.key_id},  # which API key made the change (the sender's own evidence)
        )
        log_fields.update(paths=list(request.update_mask.paths), version=prefs.version)
        return mapping.prefs_to_pb(request.preferences.user_id, prefs, caller.services.policy)

    @rpc
    async def GetUserState(
        self, caller: Caller, request: pb.GetUserStateRequest, context: Any, log_fields: dict[str, Any]) -> pb.UserState:
        state = await caller.services.service.user_state(request.user_id)
        return mapping.user_state_to_pb(request.user_id, state, await caller.services.engagement.state(request.user_id),
                                        caller.services.policy)

    @rpc
    async def ListConsentEvents(
        self, caller: Caller, request: pb.ListConsentEventsRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.ListConsentEventsResponse:
        events, token = await caller.services.preferences.consent_events(request.user_id, request.page_size, request.page_token)
        return pb.ListConsentEventsResponse(events=[mapping.consent_to_pb(e) for e in events], next_page_token=token)


    @rpc
    async def RecordEngagement(self, caller: Caller, request: pb.EngagementEvent, context: Any,
                               log_fields: dict[str, Any]) -> pb.RecordEngagementResponse:
        result = await caller.services.engagement.record(mapping.event_from_pb(request))
        log_fields.update(kind=pb.EngagementEvent.Kind.Name(request.event), known=result.touch_known,
                          replayed=result.replayed, action=result.action)
        return mapping.event_result_to_pb(result)

    @rpc
    async def RecordEngagements(self, caller: Caller, request: pb.RecordEngagementsRequest, context: Any,
                                log_fields: dict[str, Any]) -> pb.RecordEngagementsResponse:
        events = [mapping.event_from_pb(e, f"events[{i}].") for i, e in enumerate(request.events)]
        results = await caller.services.engagement.record_many(events)
        log_fields.update(items=len(results), fresh=sum(not r.replayed for r in results))
        return pb.RecordEngagementsResponse(results=[mapping.event_result_to_pb(r) for r in results])

    @rpc
    async def SetContactPoints(self, caller: Caller, request: pb.SetContactPointsRequest, context: Any,
                               log_fields: dict[str, Any]) -> pb.SetContactPointsResponse:
        if self.hooks is None:
            raise InvalidArgument("addresses", "contact points need the webhook receivers (GUARD_HTTP_LISTEN)")
        if len(request.addresses) > 50:
            raise InvalidArgument("addresses", f"holds {len(request.addresses)} items; at most 50")
        kept = await self.hooks.set_contacts(caller.grant.tenant, request.user_id, list(request.addresses))
        log_fields.update(items=kept)
        return pb.SetContactPointsResponse(kept=kept)

    @rpc
    async def SetEngagementTier(self, caller: Caller, request: pb.SetEngagementTierRequest, context: Any,
                                log_fields: dict[str, Any]) -> pb.EngagementState:
        until = mapping.ts_to_ms(request.until, "until") if request.HasField("until") else 0
        state = await caller.services.engagement.set_tier(request.user_id, request.tier, until, request.reason,
                                                          request.actor)
        log_fields.update(tier=request.tier or "(computed)")
        return mapping.engagement_to_pb(state)

    @rpc
    async def GetCampaignHealth(self, caller: Caller, request: pb.GetCampaignHealthRequest, context: Any,
                                log_fields: dict[str, Any]) -> pb.CampaignHealth:
        health = await caller.services.health.campaign(request.campaign_id, request.strategy_id, request.window)
        return mapping.campaign_health_to_pb(health, caller.services.service.brakes)

    @rpc
    async def ListCampaignHealth(self, caller: Caller, request: pb.ListCampaignHealthRequest, context: Any,
                                 log_fields: dict[str, Any]) -> pb.ListCampaignHealthResponse:
        items, token = await caller.services.health.ranked(request.strategies, request.window, request.page_size,
                                                           request.page_token)
        log_fields.update(items=len(items))
        brakes = caller.services.service.brakes
        return pb.ListCampaignHealthResponse(items=[mapping.campaign_health_to_pb(h, brakes) for h in items],
                                             next_page_token=token)

    @rpc
    async def GetExperienceHealth(self, caller: Caller, request: pb.GetExperienceHealthRequest, context: Any,
                                  log_fields: dict[str, Any]) -> pb.ExperienceHealth:
        return mapping.experience_to_pb(await caller.services.health.experience(request.window))

    @rpc
    async def ResumeCampaign(self, caller: Caller, request: pb.ResumeCampaignRequest, context: Any,
                             log_fields: dict[str, Any]) -> pb.ResumeCampaignResponse:
        done = await caller.services.brakes.resume(request.campaign_id, request.strategy_id, request.actor,
                                                   request.reason)
        await self.tenants.refresh_brakes()  # this process at once; the others at their next poll
        log_fields.update(resumed=done)
        return pb.ResumeCampaignResponse(resumed=done)

    @rpc
    async def ExportUserData(
        self, caller: Caller, request: pb.ExportUserDataRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.ExportUserDataResponse:
        document = await caller.services.privacy.export(request.user_id)
        log_fields.update(keys=len(document["keys"]), tasks=len(document["tasks"]))
        return pb.ExportUserDataResponse(document=orjson.dumps(document).decode("utf-8"))

    @rpc
    async def CreateConfirmationLink(self, caller: Caller, request: pb.CreateConfirmationLinkRequest, context: Any,
                                     log_fields: dict[str, Any]) -> pb.ConfirmationLink:
        channels = caller.services.policy.channels
        if request.channel not in channels:
            raise InvalidArgument("channel", f"unknown channel {shown(request.channel)} "
                                             f"(known: {', '.join(sorted(channels))})")
        ttl_ms = mapping.duration_ms(request.ttl, "ttl") if request.HasField("ttl") else 0
        url, expires = await self.tenants.links.create_confirmation(caller.grant.tenant, request.user_id,
                                                                    request.channel, ttl_ms, request.locale)
        return pb.ConfirmationLink(url=url, expires_at=mapping.ms_to_ts(expires))

    @rpc
    async def CreatePreferenceLink(self, caller: Caller, request: pb.CreatePreferenceLinkRequest, context: Any,
                                   log_fields: dict[str, Any]) -> pb.PreferenceLink:
        ttl_ms = mapping.duration_ms(request.ttl, "ttl") if request.HasField("ttl") else 0
        if request.topic and request.topic not in caller.services.policy.categories:
            known = ", ".join(sorted(caller.services.policy.categories))
            raise InvalidArgument("topic", f"unknown topic {shown(request.topic)} (known: {known})")
        link = await self.tenants.links.create(caller.grant.tenant, request.user_id, ttl_ms, request.locale,
                                               topic=request.topic, campaign_id=request.campaign_id)
        out = pb.PreferenceLink(url=link.url, list_unsubscribe_url=link.unsubscribe_url, list_unsubscribe_post=ONE_CLICK)
        out.expires_at.CopyFrom(mapping.ms_to_ts(link.expires_ms))
        return out

    @rpc
    async def EraseUser(self, caller: Caller, request: pb.EraseUserRequest, context: Any,
                        log_fields: dict[str, Any]) -> pb.EraseUserResponse:
        done = await caller.services.privacy.erase(request.user_id, request.actor, request.reason)
        log_fields.update(keys_removed=done.keys_removed, tasks_redacted=done.tasks_redacted)
        return pb.EraseUserResponse(keys_removed=done.keys_removed, tasks_redacted=done.tasks_redacted,
                                    channels_suppressed=done.channels, categories_suppressed=done.categories,
                                    unsubscribed_all=done.unsubscribed_all)


_STATUS_NAMES = {pb.OPEN: "OPEN", pb.CLAIMED: "CLAIMED", pb.RESOLVED: "RESOLVED"}
_OUTCOME_NAMES = {pb.RECOVERED: "RECOVERED", pb.NO_ACTION: "NO_ACTION", pb.ESCALATED: "ESCALATED"}


WATCH_OPEN = (("guard-watch", "open"),)


class RecoveryDeskServicer(pb_grpc.RecoveryDeskServicer):
    def __init__(self, tenants: Tenants, auth: Authenticator) -> None:
        self.tenants = tenants
        self.auth = auth

    async def WatchRecoveryTasks(
        self, request: pb.WatchRecoveryTasksRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RecoveryTask]:
        metadata = context.invocation_metadata()
        try:
            grant = await self.auth.authorize(metadata, context.peer, "WatchRecoveryTasks")
            if isinstance(request, Undecodable):
                raise request.error()
            check_id(request.consumer, "consumer")
            desk = self.tenants.get(grant.tenant).desk
            await desk.open_watch(request.consumer)
        except Exception as exc:
            status = status_for(exc)
            if status is None:
                raise
            log.info("rpc", method="WatchRecoveryTasks", code=status.name, error=str(exc))
            await context.abort(status, str(exc))
        # Said before the first task: a client knows its watch was accepted (not merely not refused yet).
        await context.send_initial_metadata(WATCH_OPEN)
        log.info("watch_started", consumer=request.consumer, tenant=grant.tenant, key=grant.key_id)

        async def still_allowed() -> None:
            """The key again, before every read: a revocation reaches this process within a control poll."""
            await self.auth.authorize(metadata, context.peer, "WatchRecoveryTasks")

        sent = 0
        code = grpc.StatusCode.OK
        started = time.perf_counter()
        metrics.WATCHERS.inc()
        try:
            async for task in desk.watch(request.consumer, still_allowed):
                sent += 1
                yield mapping.task_to_pb(task)
        except Exception as exc:
            status = status_for(exc)  # the one table the unary calls use
            code = status or grpc.StatusCode.INTERNAL
            if status is None:
                raise
            log.warning("watch_refused", consumer=request.consumer, code=status.name, error=str(exc))
            await context.abort(status, str(exc))
        finally:
            metrics.WATCHERS.dec()
            metrics.RPC_LATENCY.labels("WatchRecoveryTasks", code.name).observe(time.perf_counter() - started)
            log.info("watch_ended", consumer=request.consumer, delivered=sent, code=code.name)

    @rpc
    async def ListRecoveryTasks(
        self, caller: Caller, request: pb.ListRecoveryTasksRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.ListRecoveryTasksResponse:
        if request.status and request.status not in _STATUS_NAMES:
            raise InvalidArgument("status", f"unknown task status {request.status}")
        tasks, token = await caller.services.desk.list_tasks(_STATUS_NAMES.get(request.status, ""),
                                                                 request.page_size, request.page_token)
        log_fields.update(items=len(tasks))
        return pb.ListRecoveryTasksResponse(tasks=[mapping.task_to_pb(t) for t in tasks], next_page_token=token)

    @rpc
    async def ClaimRecoveryTask(
        self, caller: Caller, request: pb.ClaimRecoveryTaskRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.RecoveryTask:
        grant = caller.grant
        task = await caller.services.desk.claim(request.task_id, grant.acting_agent(request.agent), grant.key_id)
        log_fields.update(task_id=task.task_id, agent=task.assignee)  # logged once checked, never before
        return mapping.task_to_pb(task)

    @rpc
    async def ResolveRecoveryTask(
        self, caller: Caller, request: pb.ResolveRecoveryTaskRequest, context: Any, log_fields: dict[str, Any]
    ) -> pb.RecoveryTask:
        grant = caller.grant
        task = await caller.services.desk.resolve(request.task_id, grant.acting_agent(request.agent), grant.key_id,
                                                      _OUTCOME_NAMES.get(request.outcome, ""), request.note,
                                                      request.lift_hold)
        log_fields.update(task_id=task.task_id, agent=task.assignee, lift_hold=request.lift_hold)
        return mapping.task_to_pb(task)


@dataclass(frozen=True)
class Tls:
    """The server's certificate and key (PEM), and the CA its clients' certificates must chain to, if any."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None


def tls_from(settings: Settings) -> Tls | None:
    """TLS as the settings ask: off without a certificate; a half-configured TLS is refused, naming what is missing."""
    if settings.tls_cert is None and settings.tls_key is None:
        if settings.tls_client_ca is not None:
            raise ValueError("GUARD_TLS_CLIENT_CA: mutual TLS needs GUARD_TLS_CERT and GUARD_TLS_KEY too")
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        missing = "GUARD_TLS_CERT" if settings.tls_cert is None else "GUARD_TLS_KEY"
        raise ValueError(f"{missing}: TLS needs both a certificate and its key")

    def read(path: Path, name: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{name}: cannot read {path}: {exc.strerror}") from None
    return Tls(read(settings.tls_cert, "GUARD_TLS_CERT"), read(settings.tls_key, "GUARD_TLS_KEY"),
               read(settings.tls_client_ca, "GUARD_TLS_CLIENT_CA") if settings.tls_client_ca else None)


class GuardServer:
    """The aio server: the services behind API keys, health (overall, each service, and Redis apart; no key)
    and reflection (no key; can be switched off)."""

    def __init__(self, tenants: Tenants, auth: Authenticator, listen: str, *, max_message_bytes: int = 4 << 20,
                 reuse_port: bool = False, tls: Tls | None = None, reflection: bool = True,
                 hooks: HookService | None = None, outbound: Outbound | None = None) -> None:
        self.tenants = tenants
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
        # The servicers by service: the HTTP/JSON twin (transport.json_api) runs the same methods.
        self.servicers: dict[str, Any] = {"EngagementGuard": EngagementGuardServicer(tenants, auth, hooks),
                                          "RecoveryDesk": RecoveryDeskServicer(tenants, auth)}
        for service_name, servicer in self.servicers.items():
            add_servicer(servicer, service_name, self.server)
        add_servicer(AdminServicer(tenants, auth, hooks, outbound), "Admin", self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        if reflection:
            names = (SERVICE_NAME, DESK_NAME, ADMIN_NAME, health_name, grpc_reflection.SERVICE_NAME)
            grpc_reflection.enable_server_reflection(names, self.server)
        self.tls = tls is not None
        self.mutual_tls = tls is not None and tls.client_ca is not None
        try:
            if tls is None:
                self.port = self.server.add_insecure_port(listen)
            else:
                credentials = grpc.ssl_server_credentials([(tls.private_key, tls.cert_chain)],
                                                          root_certificates=tls.client_ca,
                                                          require_client_auth=tls.client_ca is not None)
                self.port = self.server.add_secure_port(listen, credentials)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise OSError(f"GUARD_LISTEN {listen}: cannot listen there (the port is in use, or the address is not "
                          "this host's)")
        self._watch: asyncio.Task[None] | None = None
        # Why the service should get no traffic ('' when it should): set by the app (the store's identity).
        self.readiness: Callable[[], str] | None = None
        self.problem = ""
        self._last_health: tuple[bool, str, bool] | None = None

    async def start(self) -> None:
        await self.server.start()
        await self._health_now()
        self._watch = asyncio.create_task(self._watch_health())

    async def _health_now(self) -> None:
        """Health as it is: ``guard.redis`` says whether Redis answers; the service as a whole (``""`` and each
        service's name) is SERVING only when Redis answers and the store is trusted and set up (``readiness``)."""
        started = time.perf_counter()
        reachable = await self.tenants.store.ping()
        metrics.STORE_UP.set(1 if reachable else 0)
        if reachable:
            metrics.STORE_RTT.set(time.perf_counter() - started)
        problem = ("Redis does not answer (the fail modes answer meanwhile)" if not reachable else
                   self.readiness() if self.readiness is not None else "")
        if (reachable, problem, MODEL_OUTAGE.active) == self._last_health:
            return
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set(REDIS_HEALTH_NAME, serving if reachable else not_serving)
        for name in ("", SERVICE_NAME, DESK_NAME, ADMIN_NAME):
            await self.health.set(name, not_serving if problem else serving)
        await self.health.set(MODEL_HEALTH_NAME, not_serving if MODEL_OUTAGE.active else serving)
        if problem:
            log.error("not_ready", reason=problem)
        elif self._last_health is not None:
            log.info("ready_again")
        self.problem = problem
        self._last_health = (reachable, problem, MODEL_OUTAGE.active)

    async def _watch_health(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self._health_now()

    async def drain(self, grace_s: float) -> None:
        """Stop taking calls, report NOT_SERVING, let calls in flight finish."""
        await self.health.enter_graceful_shutdown()
        if self._watch is not None:
            self._watch.cancel()
        log.info("draining", grace_s=grace_s)
        await self.server.stop(grace_s)

    async def wait(self) -> None:
        await self.server.wait_for_termination()
