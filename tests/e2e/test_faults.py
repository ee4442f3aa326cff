"""Faults with nothing lost: Redis killed under load, the model down, the server killed, SIGTERM under load.

Each test runs the real server against a real redis-server that the test controls.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import threading
import time
from collections import Counter
from typing import Any

import grpc
import pytest
import redis as redis_lib
from grpc_health.v1 import health_pb2, health_pb2_grpc

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.conftest import RedisProcess
from tests.e2e.test_feedback_loop import watcher
from tests.helpers import QUIET_HOURS_OFF, Switchable, admin_key, aio_channel, policy_file

WINDOW_MS = 2000
LIMIT = 5


def _touch(stub: pb_grpc.EngagementGuardStub, user: str, touch_id: str) -> tuple[grpc.StatusCode, pb.CheckTouchResponse | None]:
    try:
        return grpc.StatusCode.OK, stub.CheckTouch(pb.CheckTouchRequest(
            user_id=user, channel="push", category="content", touch_id=touch_id, campaign_id=touch_id), timeout=10)
    except grpc.RpcError as exc:
        return exc.code(), None


def test_redis_killed_and_restarted_under_sixteen_senders_overfills_no_window(serve_factory, tmp_path):
    """SIGKILL Redis while 16 senders race on one user capped at 5 per 2 s: the fail mode answers meanwhile,
    the service recovers by itself, no 2 s window ever holds a 6th touch, and no acknowledged touch is lost."""
    redis = RedisProcess(tmp_path / "redis", extra=["--appendonly", "yes", "--appendfsync", "always"])
    redis.start()
    pol = policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF, caps=[{"id": "burst", "limit": LIMIT, "window": "2s"}])
    server = serve_factory({"GUARD_REDIS_URL": redis.url, "GUARD_REDIS_TIMEOUT": "0.3", "GUARD_POLICY": str(pol)})
    server.start()
    answers: queue.Queue[tuple[str, grpc.StatusCode, pb.CheckTouchResponse | None]] = queue.Queue()
    stop, restarted, recovered = threading.Event(), threading.Event(), threading.Event()

    def sender(n: int) -> None:
        with server.channel() as channel:
            stub = pb_grpc.EngagementGuardStub(channel)
            i = 0
            while not stop.is_set():
                touch_id = f"s{n}-{i}"
                code, answer = _touch(stub, "hot", touch_id)
                answers.put((touch_id, code, answer))
                if restarted.is_set() and answer is not None and answer.recorded:
                    recovered.set()
                i += 1
                time.sleep(0.01)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(16)]
    try:
        for t in threads:
            t.start()
        time.sleep(2.5)
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGKILL)
        redis.proc.wait()
        redis.proc = None
        time.sleep(1.5)
        redis.start()
        restarted.set()
        recovered.wait(20)  # on a busy host reconnecting takes a while; by itself, all the same
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    got = [answers.get() for _ in range(answers.qsize())]
    assert all(code == grpc.StatusCode.OK for _, code, _ in got)  # the fail mode answers; no call fails
    outage = [a for _, _, a in got if a is not None and list(a.reasons) == [pb.STORE_UNAVAILABLE]]
    assert outage and all(a.decision == pb.DEFER and not a.recorded for a in outage)
    recorded = {tid for tid, _, a in got if a is not None and a.recorded}
    assert recovered.is_set(), "did not recover after Redis came back"

    client = redis_lib.Redis(port=redis.port, decode_responses=True)
    stored = dict(client.zrange("guard:{default:hot}:cap:burst", 0, -1, withscores=True))  # type: ignore[arg-type]
    client.close()
    assert recorded <= set(stored), "a touch answered recorded is missing after the crash"
    times = sorted(int(v) for v in stored.values())
    for start in times:
        assert sum(1 for e in times if start <= e < start + WINDOW_MS) <= LIMIT
    assert server.stop() == 0
    redis.stop()


async def test_replies_recorded_while_the_model_fails_are_all_scored_held_and_tasked(redis_server, bundled_model, tmp_path):
    """The model down for 30 replies from 10 users: every reply is stored; once it is back, the sweep scores all,
    each complaining user is held with ONE task holding all of their complaints, and none is lost."""
    import redis.asyncio as aioredis

    from guard.app import build
    from guard.settings import Settings

    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    flaky = Switchable(bundled_model)
    settings = Settings(listen="127.0.0.1:0", http_listen="127.0.0.1:0", redis_url=redis_server.url, sweep_seconds=0.3,
                        data_dir=tmp_path / "data",
                        policy=policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))
    app = build(settings, model=flaky)  # type: ignore[arg-type]
    await app.start()
    try:
        async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
            stub = pb_grpc.EngagementGuardStub(channel)
            desk = pb_grpc.RecoveryDeskStub(channel)
            flaky.broken = True
            texts = ["别再发了，烦死了", "谢谢，收到了", "Stop spamming me, this is harassment"]
            for user in range(10):
                for k, text in enumerate(texts):
                    answer = await stub.RecordReply(pb.RecordReplyRequest(
                        user_id=f"u{user}", channel="sms", text=text, reply_id=f"r{user}-{k}"), timeout=20)
                    assert answer.label == pb.UNSCORED
            pending = await stub.CheckTouch(pb.CheckTouchRequest(user_id="u0", channel="push", category="content",
                                                                 touch_id="m0"), timeout=20)
            assert pending.decision == pb.DEFER and list(pending.reasons) == [pb.SENTIMENT_PENDING]
            health = health_pb2_grpc.HealthStub(channel)
            model = health_pb2.HealthCheckRequest(service="guard.model")
            deadline = time.monotonic() + 10
            while (await health.Check(model, timeout=5)).status != health_pb2.HealthCheckResponse.NOT_SERVING:
                assert time.monotonic() < deadline, "health never said the model fails"
                await asyncio.sleep(0.2)
            flaky.broken = False
            deadline = time.monotonic() + 30
            while await app.replies.store.pending(100):
                assert time.monotonic() < deadline, "the sweep did not catch up"
                await asyncio.sleep(0.2)
            while (await health.Check(model, timeout=5)).status != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "health never said the model is back"
                await asyncio.sleep(0.2)
            tasks = (await desk.ListRecoveryTasks(pb.ListRecoveryTasksRequest(page_size=100), timeout=20)).tasks
            assert sorted(t.user_id for t in tasks) == [f"u{u}" for u in range(10)]
            for task in tasks:
                assert sorted(r.reply_id for r in task.replies) == [f"{task.user_id.replace('u', 'r')}-{k}" for k in (0, 2)]
            for user in range(10):
                held = await stub.CheckTouch(pb.CheckTouchRequest(user_id=f"u{user}", channel="push", category="content",
                                                                  touch_id=f"m{user}"), timeout=20)
                assert held.decision == pb.BLOCK and list(held.reasons) == [pb.NEGATIVE_SENTIMENT]
    finally:
        await app.stop(0)


def test_server_killed_while_watchers_hold_unclaimed_tasks_loses_none(serve_factory, tmp_path):
    """kill -9 the server while a watcher holds delivered, unclaimed tasks: after a restart another watcher gets
    every one of them again; each is resolved once (a second agent is refused)."""
    redis = RedisProcess(tmp_path / "redis", extra=["--appendonly", "yes", "--appendfsync", "always"])
    redis.start()
    pol = policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF, recovery={"redeliver_after": "1s"})
    server = serve_factory({"GUARD_REDIS_URL": redis.url, "GUARD_POLICY": str(pol)})
    server.start()
    first_seen: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    channel = watcher(server, "amy", first_seen, stop)
    with server.channel() as ch:
        stub = pb_grpc.EngagementGuardStub(ch)
        made = {stub.RecordReply(pb.RecordReplyRequest(user_id=f"u{i}", channel="sms", text="垃圾短信，再发就投诉",
                                                        reply_id=f"r{i}"), timeout=30).task_id for i in range(5)}
    assert len(made) == 5 and "" not in made
    got: set[str] = set()
    deadline = time.monotonic() + 15
    while got != made:
        assert time.monotonic() < deadline
        got.add(first_seen.get(timeout=15).task_id)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.proc = None
    stop.set()
    channel.close()

    server.start()
    again: queue.Queue[Any] = queue.Queue()
    stop2 = threading.Event()
    channel2 = watcher(server, "bob", again, stop2)
    redelivered: set[str] = set()
    deadline = time.monotonic() + 20
    while redelivered != made:
        assert time.monotonic() < deadline, f"never came again: {made - redelivered}"
        redelivered.add(again.get(timeout=20).task_id)
    bob, amy = (server.cli("keys", "create", "--role", "support", "--name", name).stdout.split()[-1]
                for name in ("bob", "amy"))
    with server.channel(bob) as as_bob, server.channel(amy) as as_amy:
        desk = pb_grpc.RecoveryDeskStub(as_bob)
        for task_id in made:
            done = desk.ResolveRecoveryTask(pb.ResolveRecoveryTaskRequest(task_id=task_id, outcome=pb.RECOVERED),
                                            timeout=10)
            assert done.status == pb.RESOLVED
            with pytest.raises(grpc.RpcError) as refused:  # another agent (another key) is refused
                pb_grpc.RecoveryDeskStub(as_amy).ResolveRecoveryTask(
                    pb.ResolveRecoveryTaskRequest(task_id=task_id, outcome=pb.NO_ACTION), timeout=10)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        listed = desk.ListRecoveryTasks(pb.ListRecoveryTasksRequest(page_size=50), timeout=10).tasks
        assert Counter(t.status for t in listed) == {pb.RESOLVED: 5}
        assert {t.outcome for t in listed} == {pb.RECOVERED}
    stop2.set()
    channel2.close()
    assert server.stop() == 0
    redis.stop()


def test_sigterm_under_load_finishes_calls_in_flight_and_refuses_the_rest_cleanly(serve_factory, tmp_path):
    """SIGTERM while 8 clients call in a loop: every answer is OK or UNAVAILABLE (retryable), every touch answered
    recorded is stored, and a client that retries against the restarted server gets through.

    The one exception is gRPC core's own (grpc/grpc#41785): a call it received but had not yet handed to guard
    when the server stopped is CANCELLED. Such a call never reached guard; the test proves it changed nothing,
    so it too is safe to retry. (How many there are depends on the host's timing, a client can meet it twice, so
    no count is promised.)
    """
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    pol = policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF, caps=[])
    server = serve_factory({"GUARD_REDIS_URL": redis.url, "GUARD_POLICY": str(pol), "GUARD_DRAIN_SECONDS": "5"})
    server.start()
    codes: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def client(n: int) -> None:
        with server.channel() as channel:
            stub = pb_grpc.EngagementGuardStub(channel)
            i = 0
            while not stop.is_set():
                code, answer = _touch(stub, f"u{n}", f"t{n}-{i}")
                codes.put((n, f"t{n}-{i}", code, answer))
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    server.proc = None
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    seen = [codes.get() for _ in range(codes.qsize())]
    by_code = Counter(code for _, _, code, _ in seen)
    assert set(by_code) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, by_code
    assert by_code[grpc.StatusCode.OK] > 0 and by_code[grpc.StatusCode.UNAVAILABLE] > 0
    # CANCELLED (grpc/grpc#41785) comes from calls the core held when the server stopped; how many depends on the
    # host's timing (a client can meet it twice). What must hold is below: none of them changed anything.
    client_redis = redis_lib.Redis(port=redis.port, decode_responses=True)
    for n, touch_id, code, answer in seen:
        state = client_redis.hget(f"guard:{{default:u{n}}}:touch:{touch_id}", "state")
        if code == grpc.StatusCode.OK and answer is not None and answer.recorded:
            assert state == "recorded"
        elif code != grpc.StatusCode.OK:
            assert state is None, f"{touch_id} answered {code.name} but was recorded"
    client_redis.close()
    assert server.events("draining")
    server.start()
    with server.channel() as channel:
        refused = [touch_id for _, touch_id, code, _ in seen if code == grpc.StatusCode.UNAVAILABLE]
        code, answer = _touch(pb_grpc.EngagementGuardStub(channel), "u0", refused[0])
        assert code == grpc.StatusCode.OK and answer is not None and answer.decision == pb.ALLOW
    assert server.stop() == 0
    redis.stop()
    assert os.path.exists(server.log)
