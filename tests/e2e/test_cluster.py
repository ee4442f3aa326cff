"""Two guard processes on one Redis, and on a 3-master Redis Cluster: caps stay exact, the desk works."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.e2e.test_feedback_loop import watcher
from tests.helpers import QUIET_HOURS_OFF, policy_file, race_check_touch


@pytest.mark.parametrize("backend", ["redis_server", "redis_cluster"])
def test_senders_racing_through_two_guard_processes_get_exactly_three(serve_factory, tmp_path, request, backend):
    """50 senders split over two separate guard processes sharing one store: a cap of 3 admits exactly 3."""
    url = request.getfixturevalue(backend).url
    import redis as redis_lib

    if backend == "redis_server":
        redis_lib.Redis.from_url(url).flushdb()
    else:
        request.getfixturevalue(backend).flush()
    env = {"GUARD_REDIS_URL": url, "GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))}
    servers = [serve_factory(env, data_dir=tmp_path / f"d{i}") for i in range(2)]
    for server in servers:
        server.start()
    answers = race_check_touch([s.target for s in servers], f"racer-{backend}", key=servers[0].key)
    assert sum(a.decision == pb.ALLOW and a.recorded for a in answers) == 3
    assert all(list(a.reasons) == [pb.FREQUENCY_CAP] for a in answers if a.decision != pb.ALLOW)
    for server in servers:
        assert server.stop() == 0


def test_the_feedback_loop_and_the_desk_on_a_cluster(serve_factory, tmp_path, redis_cluster):
    """A complaint holds marketing, reaches a watcher, is claimed and resolved with the hold lifted, on a cluster."""
    pol = policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF, recovery={"redeliver_after": "1s"})
    redis_cluster.flush()
    server = serve_factory({"GUARD_REDIS_URL": redis_cluster.url, "GUARD_POLICY": str(pol)})
    server.start()
    tasks: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    watching = watcher(server, "amy", tasks, stop)
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        desk = pb_grpc.RecoveryDeskStub(channel)
        reply = stub.RecordReply(pb.RecordReplyRequest(user_id="cl-u1", channel="sms", text="别再发了，烦死了，我要投诉",
                                                       reply_id="cl-r1"), timeout=30)
        assert reply.action == pb.HOLD and reply.task_id
        assert tasks.get(timeout=20).task_id == reply.task_id
        held = stub.CheckTouch(pb.CheckTouchRequest(user_id="cl-u1", channel="push", category="promotion",
                                                    touch_id="cl-t1"), timeout=10)
        assert held.decision == pb.BLOCK and list(held.reasons) == [pb.NEGATIVE_SENTIMENT]
        desk.ClaimRecoveryTask(pb.ClaimRecoveryTaskRequest(task_id=reply.task_id), timeout=10)
        done = desk.ResolveRecoveryTask(pb.ResolveRecoveryTaskRequest(task_id=reply.task_id,
                                                                      outcome=pb.RECOVERED, lift_hold=True), timeout=10)
        assert done.status == pb.RESOLVED
        again = stub.CheckTouch(pb.CheckTouchRequest(user_id="cl-u1", channel="push", category="promotion",
                                                     touch_id="cl-t2"), timeout=10)
        assert again.decision == pb.ALLOW and again.recorded
        prefs = stub.UpdatePreferences(pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(user_id="cl-u1", channels={"sms": False}), source="user", actor="self",
            update_mask={"paths": ["channels.sms"]}), timeout=10)
        assert prefs.version == 1
        assert [e.field for e in stub.ListConsentEvents(pb.ListConsentEventsRequest(user_id="cl-u1"), timeout=10).events] \
            == ["channel_scopes.sms", "channels.sms"]  # newest first: the channel, then how far it is closed
    stop.set()
    watching.close()
    assert server.stop() == 0
