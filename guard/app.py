"""The single wiring point: settings → policy → store → service → server.

``build`` makes the parts and ``App`` starts and stops them; ``serve`` adds the
process concerns (signals, the metrics endpoint). Tests and benchmarks build the
service through the same ``build``, so they measure the program people run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from guard import logs, metrics, policy, tracing
from guard.access.admin_key import bootstrap_admin_key
from guard.access.authn import Authenticator
from guard.access.keys import DEFAULT_TENANT
from guard.domain import clock
from guard.errors import StoreUnavailable
from guard.sentiment.batcher import MicroBatcher
from guard.sentiment.model import BUNDLED_MODEL, SentimentModel
from guard.sentiment.remote import RemoteScorer
from guard.settings import Settings
from guard.store import target as store_target
from guard.store.amnesia import StoreWatch
from guard.store.control import ControlStore
from guard.store.counters import CampaignCounters
from guard.store.embedded import EmbeddedRedis
from guard.store.hooks import HookStore
from guard.store.redis_store import RedisStore
from guard.transport import json_api
from guard.transport.server import GuardServer, tls_from
from guard.usecases.checks import GuardService
from guard.usecases.desk import DeskService
from guard.usecases.hooks import Fetcher, HookService
from guard.usecases.links import PreferenceLinks
from guard.usecases.preferences import PreferenceService
from guard.usecases.replies import ReplyService
from guard.usecases.tenants import Services, Tenants
from guard.usecases.webhooks import Outbound, Sender
from guard.web.http import HttpServer, host_port
from guard.web.site import build_site
from guard.web.toolkit import Web

log = logs.get("guard.app")


@dataclass
class App:
    """Every long-lived part of one serving process."""

    settings: Settings
    policy: policy.Policy
    store: RedisStore
    control: ControlStore
    tenants: Tenants
    auth: Authenticator
    scorer: MicroBatcher | RemoteScorer
    server: GuardServer
    watch: StoreWatch
    embedded: EmbeddedRedis | None = None
    web: Web | None = None  # the pages; None when GUARD_HTTP_LISTEN is off
    http: HttpServer | None = None
    outbound: Outbound | None = None  # the outbox's delivery to the tenants' webhook endpoints
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def http_port(self) -> int:
        return self.http.port if self.http is not None else 0

    @property
    def port(self) -> int:
        return int(self.server.port)

    # The default tenant's use cases, for tests and tools that work in one tenant.
    @property
    def default(self) -> Services:
        return self.tenants.get(DEFAULT_TENANT)

    @property
    def service(self) -> GuardService:
        return self.default.service

    @property
    def preferences(self) -> PreferenceService:
        return self.default.preferences

    @property
    def replies(self) -> ReplyService:
        return self.default.replies

    @property
    def desk(self) -> DeskService:
        return self.default.desk

    @property
    def counters(self) -> CampaignCounters:
        return self.tenants.counters

    async def start(self) -> None:
        try:
            await self._catch_up()
        except StoreUnavailable as exc:  # serve anyway: the fail modes answer until Redis does
            log.warning("control_unreachable_at_start", error=str(exc),
                        note="keys and tenants' policies are read as soon as Redis answers")
            self._tasks.append(asyncio.create_task(self._catch_up_later()))
        await self.server.start()
        if self.http is not None:
            await self.http.start()
            self._public_url()
        self._tasks.append(asyncio.create_task(self.tenants.run(self.settings.control_poll_seconds)))
        self._tasks.append(asyncio.create_task(self._watch_store(self.settings.control_poll_seconds)))
        self._tasks.append(asyncio.create_task(self._note_key_use()))
        if self.settings.worker_index == 0:  # one sweeper per deployment of workers is enough (and harmless twice)
            self._tasks.append(asyncio.create_task(self._sweep(self.settings.sweep_seconds)))
            self._tasks.append(asyncio.create_task(self._gauges()))
            self._tasks.append(asyncio.create_task(self._evaluate_brakes(self.settings.brake_seconds)))
            if self.outbound is not None:
                self._tasks.append(asyncio.create_task(self._deliver_webhooks(self.outbound,
                                                                              self.settings.webhook_seconds)))
        log.info("serving", listen=self.settings.listen, port=self.server.port, worker=self.settings.worker_index,
                 tls=self.server.tls, mutual_tls=self.server.mutual_tls)

    def _public_url(self) -> None:
        """Links point at GUARD_PUBLIC_URL, or else at the listener itself (fine on one machine, said in the log)."""
        if self.settings.public_url or self.http is None or self.web is None:
            return
        host, _ = host_port(self.settings.http_listen)
        if host in ("0.0.0.0", "::", ""):
            log.warning("public_url_unset", note="GUARD_HTTP_LISTEN listens on every address: set GUARD_PUBLIC_URL to the "
                                                 "address users reach, or preference links will say localhost")
            host = "localhost"
        url = f"http://{'[' + host + ']' if ':' in host else host}:{self.http.port}"
        self.tenants.links.public_url = url
        self.web.public_url = url

    async def _catch_up(self) -> None:
        await self.watch.check()
        await self.tenants.refresh()
        if not self.watch.reset:  # a store that forgot is not re-keyed behind the operator's back
            await bootstrap_admin_key(self.control, self.settings.data_dir)

    async def _watch_store(self, every_s: float) -> None:
        """The store's identity, every poll (a wipe under a running guard is seen within a second)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.watch.check()
            except StoreUnavailable:  # the control poll logs the outage, once
                self.watch.lost_contact()

    async def _catch_up_later(self) -> None:
        while True:
            await asyncio.sleep(self.settings.control_poll_seconds)
            with contextlib.suppress(StoreUnavailable):
                await self._catch_up()
                return

    async def _note_key_use(self, every_s: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.auth.flush_used(clock.system_clock())

    async def _sweep(self, every_s: float) -> None:
        outage = logs.Condition(log, "sweep_store_unavailable", "warning")
        while True:
            try:
                swept = await self.tenants.sweep()
                outage.ended()
                if swept:
                    log.info("sweep_scored", replies=swept)
            except StoreUnavailable as exc:
                outage.met(error=str(exc))
            await asyncio.sleep(every_s)

    async def _gauges(self, every_s: float = 15.0) -> None:
        """What on-call watches, read every few seconds: open and overdue tasks by priority, replies waiting for
        the model, braked campaigns, per tenant (off the serving path: one read of each per interval)."""
        while True:
            with contextlib.suppress(StoreUnavailable):
                await self.read_gauges()
            await asyncio.sleep(every_s)

    async def read_gauges(self) -> None:
        for tenant in sorted({DEFAULT_TENANT, *await self.control.tenants()}):
            services = self.tenants.get(tenant)
            now = services.desk.now()
            tasks = await services.desk.open_tasks()
            for priority in ("P1", "P2", "P3"):
                mine = [t for t in tasks if t.priority == priority]
                metrics.TASKS_OPEN.labels(tenant, priority).set(len(mine))
                metrics.TASKS_OVERDUE.labels(tenant, priority).set(sum(1 for t in mine if t.due_ms < now))
            metrics.REPLIES_UNSCORED.labels(tenant).set(await services.replies.unscored())
            metrics.CAMPAIGNS_BRAKED.labels(tenant).set(sum(1 for b in services.service.brakes.values() if b.blocks(now)))

    async def _evaluate_brakes(self, every_s: float) -> None:
        outage = logs.Condition(log, "brakes_store_unavailable", "warning")
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.tenants.evaluate_brakes()
                await self.tenants.refresh_brakes()  # this process at once; the others at their next poll
                metrics.BRAKE_EVALUATIONS.inc()
                outage.ended()
            except StoreUnavailable as exc:
                outage.met(error=str(exc))

    async def _deliver_webhooks(self, outbound: Outbound, every_s: float) -> None:
        """The outbox of every tenant to its webhook endpoints (one process per deployment does it)."""
        outage = logs.Condition(log, "webhooks_store_unavailable", "warning")
        while True:
            await asyncio.sleep(every_s)
            try:
                await outbound.deliver(sorted({DEFAULT_TENANT, *await self.control.tenants()}))
                outage.ended()
            except StoreUnavailable as exc:
                outage.met(error=str(exc))

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain calls and requests in flight (both servers at once), then close everything this app opened."""
        grace = self.settings.drain_seconds if grace_s is None else grace_s
        if self.web is not None:
            self.web.stopping.set()  # live streams end, so the HTTP drain is not held by them
        await asyncio.gather(self.server.drain(grace), *([self.http.stop()] if self.http is not None else []))
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StoreUnavailable):
            await self.auth.flush_used(clock.system_clock())
        await self.scorer.close()
        await self.tenants.counters.close()
        await self.store.close()
        if self.embedded is not None:
            self.embedded.stop()
        log.info("stopped")
        logs.flush()


def build(settings: Settings, model: SentimentModel | None = None, *, now: clock.Clock = clock.system_clock) -> App:
    """Wire one serving process; ``model`` lets a caller share one loaded model between several apps, ``now`` lets a
    test move the use cases' time (decisions, windows, tiers, links) instead of waiting for it.

    A worker of ``guard serve --workers N`` (``settings.scorer_socket`` set) loads no model: it
    sends replies to the scoring process the supervisor started.
    """
    pol = policy.load(settings.policy)
    log.info("policy_loaded", source=pol.source, rules=[r.rule_id for r in pol.rules])
    embedded: EmbeddedRedis | None = None
    where = settings.redis_target() if settings.redis_url else None  # a mistake in it stops here, naming the setting
    if where is None:
        if settings.redis_durability != "local":
            raise ValueError(f"GUARD_REDIS_DURABILITY: {settings.redis_durability} needs a Redis of your own "
                             "(GUARD_REDIS_URL); the embedded Redis has no replica and no WAITAOF: use "
                             "GUARD_REDIS_APPENDFSYNC=always for a disk flush per write")
        embedded = EmbeddedRedis(settings.data_dir / "redis", appendfsync=settings.redis_appendfsync)
        embedded.start()
        where = store_target.parse(embedded.url)
        log.info("using_embedded_redis", url=embedded.url, data_dir=str(embedded.data_dir),
                 note="no GUARD_REDIS_URL given: guard runs its own persistent Redis")
    try:
        scorer: MicroBatcher | RemoteScorer
        if settings.scorer_socket is not None:
            scorer = RemoteScorer(settings.scorer_socket, timeout_s=max(5.0, settings.redis_timeout))
        else:
            scorer = batcher_for(settings, model)
        store = RedisStore.to(where, timeout_s=settings.redis_timeout, durability=settings.redis_durability)
        control = ControlStore(store.conn)
        pages = settings.http_listen not in ("", "off")
        links = PreferenceLinks(control, settings.public_url or (f"http://{settings.http_listen}" if pages else ""),
                                now=now)
        tenants = Tenants(control, store, scorer.score, pol, links=links, now=now)
        auth = Authenticator(control, cache_s=settings.auth_cache_seconds,
                             failures_per_minute=settings.auth_failures_per_minute)
        tenants.on_change.append(auth.forget)
        outbound = Outbound(store.conn, Sender(allow_private=settings.webhooks_allow_private), now=now,
                            disable_after_ms=lambda tenant: tenants.get(tenant).policy.webhooks_disable_after_ms)
        hooks = HookService(tenants.get, HookStore(store.conn), lambda: control.web_secret(secrets.token_bytes(32)),
                            now=now, fetcher=Fetcher([h.strip() for h in settings.sns_hosts.split(",") if h.strip()],
                                                     str(settings.sns_ca or "")))
        server = GuardServer(tenants, auth, settings.listen, hooks=hooks, outbound=outbound,
                             max_message_bytes=settings.max_message_bytes,
                             reuse_port=settings.scorer_socket is not None, tls=tls_from(settings),
                             reflection=settings.reflection)
        web = http = None
        if pages:
            host_port(settings.http_listen)  # a bad address is refused before anything starts
            web = Web(tenants, auth, control, links.public_url, settings.desk_session_hours,
                      streams_per_session=settings.desk_streams_per_session, streams_per_key=settings.desk_streams_per_key,
                      readiness=lambda: server.problem, hooks=hooks)
            site = build_site(web, body_timeout_s=settings.http_body_timeout_seconds,
                              webhook_bytes=settings.max_webhook_bytes,
                              api=json_api.JsonApi(server.servicers, auth, tenants), api_bytes=settings.max_message_bytes)
            http = HttpServer(site, settings.http_listen,
                              reuse_port=settings.scorer_socket is not None, grace_s=settings.drain_seconds,
                              header_timeout_s=settings.http_header_timeout_seconds)
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    watch = StoreWatch(store, settings.data_dir, clock.system_clock)
    server.readiness = lambda: readiness(watch)
    auth.store_reset = lambda: store.reset_reason
    return App(settings, pol, store, control, tenants, auth, scorer, server, watch, embedded, web, http, outbound)


def readiness(watch: StoreWatch) -> str:
    """Why this process should not be sent traffic ('' when it should): the store not trusted or not set up."""
    if watch.reset:
        return f"store reset: {watch.reset}"
    if not watch.initialised:
        return "the store is not initialised yet (Redis has not answered since the start)"
    return ""


def batcher_for(settings: Settings, model: SentimentModel | None = None) -> MicroBatcher:
    """The model (loaded from disk unless given) behind the micro-batcher, as settings ask."""
    if model is None:
        model = SentimentModel(settings.sentiment_model or BUNDLED_MODEL, threads=settings.sentiment_threads,
                               quantize=settings.sentiment_quantize, precision=settings.sentiment_precision)
    return MicroBatcher(model.score, max_batch=settings.sentiment_max_batch,
                        max_wait_s=settings.sentiment_max_wait_ms / 1000, max_in_flight=settings.sentiment_max_in_flight)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``guard serve`` runs on: uvloop (faster sockets and callbacks) or the standard one."""
    if name == "asyncio":
        return None
    if name != "uvloop":
        raise ValueError(f"GUARD_EVENT_LOOP: uvloop or asyncio is expected, got {name[:32]!r}")
    import uvloop

    return uvloop.new_event_loop


async def serve(settings: Settings) -> None:
    """``guard serve``: one process, or (``--workers N``) a supervisor of N workers and a scoring process.

    The CLI has already reached a configured Redis once (``check_redis``), before anything heavy loaded."""
    if settings.workers > 1:
        from guard.supervisor import Supervisor

        await Supervisor(settings).run()
        return
    app = build(settings)
    if settings.metrics_listen:
        from prometheus_client import start_http_server

        host, port = host_port(settings.metrics_listen, "GUARD_METRICS_LISTEN")
        try:
            start_http_server(port, addr=host)
        except OSError as exc:
            raise OSError(exc.errno, f"GUARD_METRICS_LISTEN {settings.metrics_listen}: {exc.strerror}") from None
        log.info("metrics_listening", address=settings.metrics_listen)
    await run_until_signalled(app)


async def serve_worker(settings: Settings) -> None:
    """One worker of ``--workers N``: the gRPC server on the shared port, scoring through the scorer."""
    import structlog

    structlog.contextvars.bind_contextvars(worker=settings.worker_index)  # every line says which worker wrote it
    await run_until_signalled(build(settings))


async def run_until_signalled(app: App) -> None:
    tracing.configure()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        # Everything made so far (the model, the wiring) lives as long as the process: the collector need not
        # walk it again, neither while serving nor when the interpreter exits.
        gc.freeze()
        await stop.wait()
    finally:
        await app.stop()


async def serve_scoring(settings: Settings) -> None:
    """The scoring process of ``--workers N``: the one model, batching for every worker."""
    from guard.sentiment.remote import ScoringServer

    if settings.scorer_socket is None:
        raise ValueError("GUARD_SCORER_SOCKET: the scoring process needs the socket path it serves on")
    batcher = batcher_for(settings)
    server = ScoringServer(batcher.score, settings.scorer_socket)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.close()
        await batcher.close()
        logs.flush()
