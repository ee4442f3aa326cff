"""End to end with the bundled model: complaints hold marketing and reach a watcher; the desk lifts holds."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from typing import Any

import grpc
import pytest

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF
from tests.helpers import policy_file as shipped_with


def policy_file(tmp_path) -> str:
    """The shipped policy with quiet hours off (the suite runs at any hour) and a quick redelivery."""
    return str(shipped_with(tmp_path, quiet_hours=QUIET_HOURS_OFF, recovery={"redeliver_after": "1s"}))


def watcher(server, consumer: str, out: queue.Queue[Any], stop: threading.Event) -> grpc.Channel:
    channel = server.channel()
    desk = pb_grpc.RecoveryDeskStub(channel)
    stream = desk.WatchRecoveryTasks(pb.WatchRecoveryTasksRequest(consumer=consumer))

    def pump() -> None:
        try:
            for task in stream:
                out.put(task)
                if stop.is_set():
                    break
        except grpc.RpcError:
            pass

    threading.Thread(target=pump, daemon=True).start()
    channel._guard_stream = stream
    return channel


def check(stub, touch_id, user="u1", cls=pb.MARKETING):
    return stub.CheckTouch(pb.CheckTouchRequest(user_id=user, channel="push", category="promotion",
                                                touch_id=touch_id, touch_class=cls), timeout=10)


def reply(stub, text, reply_id, user="u1", channel="sms"):
    return stub.RecordReply(pb.RecordReplyRequest(user_id=user, channel=channel, text=text, reply_id=reply_id),
                            timeout=20)


def test_complaints_hold_marketing_open_one_task_and_the_desk_lifts_it(app_serve_factory, tmp_path):
    server = app_serve_factory({"GUARD_POLICY": policy_file(tmp_path)})
    server.start()
    tasks: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    watch_channel = watcher(server, "desk-1", tasks, stop)
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        desk = pb_grpc.RecoveryDeskStub(channel)
        zh = reply(stub, "别再发了，烦死了", "r1")
        assert zh.label == pb.NEGATIVE and zh.action == pb.HOLD and zh.task_id
        en = reply(stub, "This is spam, stop texting me. Worst service ever", "r2")
        assert en.action == pb.HOLD and en.task_id == zh.task_id
        again = reply(stub, "别再发了，烦死了", "r1")  # a retried reply_id does nothing twice
        assert again.replayed and again.task_id == zh.task_id
        got = tasks.get(timeout=15)
        assert got.task_id == zh.task_id and got.user_id == "u1"
        assert tasks.empty()
        held = check(stub, "m1")
        assert held.decision == pb.BLOCK and list(held.reasons) == [pb.NEGATIVE_SENTIMENT]
        assert held.retry_after.seconds > 6 * 86400
        assert check(stub, "otp1", cls=pb.TRANSACTIONAL).decision == pb.ALLOW
        task = desk.ResolveRecoveryTask(pb.ResolveRecoveryTaskRequest(
            task_id=zh.task_id, outcome=pb.RECOVERED, note="apologised", lift_hold=True), timeout=10)
        assert task.status == pb.RESOLVED and len(task.replies) == 2
        assert check(stub, "m2").decision == pb.ALLOW
        listed = desk.ListRecoveryTasks(pb.ListRecoveryTasksRequest(status=pb.RESOLVED), timeout=10)
        assert [t.task_id for t in listed.tasks] == [zh.task_id]
        for reply_id, channel_name, text in [("k1", "sms", "退订"), ("k2", "email", "STOP")]:
            out = reply(stub, text, reply_id, user="u2", channel=channel_name)
            assert out.action == pb.OPT_OUT and not out.task_id
        prefs = stub.GetPreferences(pb.GetPreferencesRequest(user_id="u2"), timeout=10)
        assert dict(prefs.channels) == {"sms": False, "email": False}
    stop.set()
    watch_channel.close()
    assert server.stop() == 0


def test_a_watcher_killed_before_claiming_does_not_lose_its_task(app_serve_factory, tmp_path):
    server = app_serve_factory({"GUARD_POLICY": policy_file(tmp_path)})
    server.start()
    first: queue.Queue[Any] = queue.Queue()
    doomed = watcher(server, "desk-a", first, threading.Event())  # the group reads from the start: no race
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        opened = reply(stub, "垃圾短信，再发我就投诉到12315", "r1", user="u9")
        assert opened.task_id
        assert first.get(timeout=15).task_id == opened.task_id
        doomed.close()  # the watcher vanishes without claiming
        second: queue.Queue[Any] = queue.Queue()
        survivor = watcher(server, "desk-b", second, threading.Event())
        redelivered = second.get(timeout=20)
        assert redelivered.task_id == opened.task_id and redelivered.priority == pb.P1
        bob, eve = (server.cli("keys", "create", "--role", "support", "--name", name).stdout.split()[-1]
                    for name in ("bob", "eve"))
        with server.channel(bob) as as_bob:
            pb_grpc.RecoveryDeskStub(as_bob).ClaimRecoveryTask(pb.ClaimRecoveryTaskRequest(task_id=opened.task_id),
                                                                timeout=10)
        with server.channel(eve) as as_eve, pytest.raises(grpc.RpcError) as again:
            pb_grpc.RecoveryDeskStub(as_eve).ClaimRecoveryTask(pb.ClaimRecoveryTaskRequest(task_id=opened.task_id),
                                                                timeout=10)
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # a claimed task is not claimed again
        survivor.close()
    cli = subprocess.run([sys.executable, "-m", "guard", "tasks", "list", "--server", server.target, "--status", "CLAIMED"],
                         capture_output=True, text=True, timeout=30, env=server.cli_env)
    assert cli.returncode == 0 and opened.task_id in cli.stdout
    assert server.stop() == 0


def test_replies_kept_while_the_model_cannot_run_are_scored_later(app_serve_factory, tmp_path):
    """A server whose scorer admits nothing (max in flight 0) keeps replies; after a restart the sweep holds."""
    data = tmp_path / "data"
    broken = app_serve_factory({"GUARD_POLICY": policy_file(tmp_path), "GUARD_SENTIMENT_MAX_IN_FLIGHT": "0"}, data_dir=data)
    broken.start()
    with broken.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        kept = reply(stub, "别再发了，烦死了", "r1")
        assert kept.label == pb.UNSCORED and kept.action == pb.NONE
        pending = check(stub, "m1")
        assert pending.decision == pb.DEFER and pb.SENTIMENT_PENDING in pending.reasons and not pending.recorded
    assert broken.stop() == 0

    mended = app_serve_factory({"GUARD_POLICY": policy_file(tmp_path), "GUARD_SWEEP_SECONDS": "0.5"}, data_dir=data)
    mended.start()
    with mended.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        deadline = time.monotonic() + 20
        while (out := check(stub, "m2")).decision != pb.BLOCK:
            assert time.monotonic() < deadline, out
            time.sleep(0.2)
        assert list(out.reasons) == [pb.NEGATIVE_SENTIMENT]
        # The hold comes first and the task a step later (they live in different slots): wait for what is observed.
        desk = pb_grpc.RecoveryDeskStub(channel)
        while not (listed := desk.ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10)).tasks:
            assert time.monotonic() < deadline, "the held reply never reached the desk"
            time.sleep(0.1)
        assert len(listed.tasks) == 1 and listed.tasks[0].replies[0].reply_id == "r1"
    assert mended.stop() == 0


def test_two_concurrent_calls_with_one_reply_id_open_one_task(app_serve_factory, tmp_path):
    """Two calls with one reply_id at once: one task. Counted only once nothing is left that could file the reply
    again later (the sweep files a held reply a crash kept off its task): its queue is empty and it has run."""
    import redis as redis_lib

    from guard.store.embedded import running_url

    server = app_serve_factory({"GUARD_POLICY": policy_file(tmp_path), "GUARD_SWEEP_SECONDS": "0.2"})
    server.start()
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        results: list[Any] = []
        start = threading.Barrier(2)

        def send() -> None:
            start.wait(timeout=30)
            results.append(reply(stub, "垃圾，再发就投诉", "same"))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({r.task_id for r in results}) == 1 and results[0].task_id
        store = redis_lib.Redis.from_url(running_url(server.data_dir / "redis"))
        deadline = time.monotonic() + 15
        while store.zcard("guard:{default}:replies:pending"):  # the sweep's queue: what could still be filed
            assert time.monotonic() < deadline, "the sweep never emptied its queue"
            time.sleep(0.1)
        time.sleep(0.5)  # and a couple of sweeps more after it emptied: none may file the reply again
        store.close()
        listed = pb_grpc.RecoveryDeskStub(channel).ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10)
        assert len(listed.tasks) == 1
    assert server.stop() == 0
