"""The single wiring point: settings → policy → store → service → server."""

from __future__ import annotations

import asyncio
import signal

from guard import logs, policy
from guard.feedback import FeedbackService
from guard.sentiment.batcher import MicroBatcher
from guard.sentiment.model import BUNDLED_MODEL, SentimentModel
from guard.service import GuardService
from guard.settings import Settings
from guard.store.embedded import EmbeddedRedis
from guard.store.redis_store import FeedbackStore, RedisStore
from guard.transport.server import GuardServer

log = logs.get("guard.app")


def _host_port(value: str, name: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{name}: host:port is expected, got {value!r}")
    return host.strip("[]"), int(port)


async def serve(settings: Settings) -> None:
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
    model = SentimentModel(settings.sentiment_model or BUNDLED_MODEL, threads=settings.sentiment_threads,
                           quantize=settings.sentiment_quantize)
    batcher = MicroBatcher(model.score, max_batch=settings.sentiment_max_batch,
                           max_wait_s=settings.sentiment_max_wait_ms / 1000, max_in_flight=settings.sentiment_max_in_flight)
    store = RedisStore.from_url(url, timeout_s=settings.redis_timeout)
    service = GuardService(pol, store, tenant=settings.tenant)
    feedback = FeedbackService(service, FeedbackStore(store, settings.tenant), batcher.score)
    service.score_pending = feedback.score_pending
    sweeper = asyncio.create_task(feedback.run_sweeper(settings.sweep_seconds))
    if settings.metrics_listen:
        from prometheus_client import start_http_server

        host, port = _host_port(settings.metrics_listen, "GUARD_METRICS_LISTEN")
        start_http_server(port, addr=host)
        log.info("metrics_listening", address=settings.metrics_listen)
    server = GuardServer(service, feedback, settings.listen, max_message_bytes=settings.max_message_bytes)
    await server.start()
    log.info("serving", listen=settings.listen, port=server.port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        await server.drain(settings.drain_seconds)
    finally:
        sweeper.cancel()
        await batcher.close()
        await store.close()
        if embedded is not None:
            embedded.stop()
        log.info("stopped")
