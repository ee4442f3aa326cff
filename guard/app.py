"""The single wiring point: settings → policy → store → service → server.

``build`` makes the parts and ``App`` starts and stops them; ``serve`` adds the
process concerns (signals, the metrics endpoint). Tests and benchmarks build the
service through the same ``build``, so they measure the program people run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from guard import logs, policy
from guard.domain import clock
from guard.domain.clock import Clock
from guard.feedback import FeedbackService, Scorer
from guard.preferences import PreferenceService
from guard.sentiment.batcher import MicroBatcher
from guard.sentiment.model import BUNDLED_MODEL, SentimentModel
from guard.sentiment.remote import RemoteScorer
from guard.service import GuardService
from guard.settings import Settings
from guard.store.counters import CampaignCounters
from guard.store.embedded import EmbeddedRedis
from guard.store.redis_store import FeedbackStore, RedisStore
from guard.transport.server import GuardServer

log = logs.get("guard.app")


def _host_port(value: str, name: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{name}: host:port is expected, got {value!r}")
    return host.strip("[]"), int(port)


@dataclass
class App:
    """Every long-lived part of one serving process."""

    settings: Settings
    policy: policy.Policy
    store: RedisStore
    preferences: PreferenceService
    service: GuardService
    feedback: FeedbackService
    scorer: MicroBatcher | RemoteScorer
    counters: CampaignCounters
    server: GuardServer
    embedded: EmbeddedRedis | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.port)

    async def start(self) -> None:
        await self.server.start()
        if self.settings.worker_index == 0:  # one sweeper per deployment of workers is enough (and harmless twice)
            self._tasks.append(asyncio.create_task(self.feedback.run_sweeper(self.settings.sweep_seconds)))
        log.info("serving", listen=self.settings.listen, port=self.server.port, worker=self.settings.worker_index)

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain calls in flight, then close everything this app opened."""
        await self.server.drain(self.settings.drain_seconds if grace_s is None else grace_s)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.scorer.close()
        await self.counters.close()
        await self.store.close()
        if self.embedded is not None:
            self.embedded.stop()
        log.info("stopped")
        logs.flush()


@dataclass
class Services:
    """The use cases, wired to one store: what the gRPC server (and the tests) call."""

    preferences: PreferenceService
    service: GuardService
    feedback: FeedbackService
    counters: CampaignCounters


def wire(pol: policy.Policy, store: RedisStore, scorer: Scorer | None, *, tenant: str = "default",
         now: Clock = clock.system_clock) -> Services:
    """The one place the use cases meet: each gets what it needs in its constructor, except the
    loop between checking and scoring (a check scores a user's pending replies through the feedback loop)."""
    counters = CampaignCounters(store.conn)
    preferences = PreferenceService(pol, store, now=now, tenant=tenant)
    service = GuardService(pol, store, preferences, counters, now=now, tenant=tenant)
    feedback = FeedbackService(service, preferences, FeedbackStore(store, tenant), scorer, counters)
    service.score_pending = feedback.score_pending
    return Services(preferences, service, feedback, counters)


def build(settings: Settings, model: SentimentModel | None = None) -> App:
    """Wire one serving process; ``model`` lets a caller share one loaded model between several apps.

    A worker of ``guard serve --workers N`` (``settings.scorer_socket`` set) loads no model: it
    sends replies to the scoring process the supervisor started.
    """
    pol = policy.load(settings.policy)
    log.info("policy_loaded", source=pol.source, rules=[r.rule_id for r in pol.rules])
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if not url:
        embedded = EmbeddedRedis(settings.data_dir / "redis", appendfsync=settings.redis_appendfsync)
        embedded.start()
        url = embedded.url
        log.info("using_embedded_redis", url=url, data_dir=str(embedded.data_dir),
                 note="no GUARD_REDIS_URL given: guard runs its own persistent Redis")
    try:
        scorer: MicroBatcher | RemoteScorer
        if settings.scorer_socket is not None:
            scorer = RemoteScorer(settings.scorer_socket, timeout_s=max(5.0, settings.redis_timeout))
        else:
            scorer = batcher_for(settings, model)
        store = RedisStore.from_url(url, timeout_s=settings.redis_timeout)
        parts = wire(pol, store, scorer.score, tenant=settings.tenant)
        server = GuardServer(parts.service, parts.preferences, parts.feedback, settings.listen,
                             max_message_bytes=settings.max_message_bytes, reuse_port=settings.scorer_socket is not None)
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return App(settings, pol, store, parts.preferences, parts.service, parts.feedback, scorer, parts.counters, server,
               embedded)


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
    """``guard serve``: one process, or (``--workers N``) a supervisor of N workers and a scoring process."""
    if settings.workers > 1:
        from guard.supervisor import Supervisor

        await Supervisor(settings).run()
        return
    app = build(settings)
    if settings.metrics_listen:
        from prometheus_client import start_http_server

        host, port = _host_port(settings.metrics_listen, "GUARD_METRICS_LISTEN")
        start_http_server(port, addr=host)
        log.info("metrics_listening", address=settings.metrics_listen)
    await run_until_signalled(app)


async def serve_worker(settings: Settings) -> None:
    """One worker of ``--workers N``: the gRPC server on the shared port, scoring through the scorer."""
    import structlog

    structlog.contextvars.bind_contextvars(worker=settings.worker_index)  # every line says which worker wrote it
    await run_until_signalled(build(settings))


async def run_until_signalled(app: App) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
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
