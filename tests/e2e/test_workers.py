"""``guard serve --workers 2``: one port, one scoring process, one Redis, exact caps across workers."""

from __future__ import annotations

import signal
import time
import urllib.request

import psutil

from guard.store.embedded import free_port
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF, policy_file, race_check_touch


def _children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_two_workers_keep_a_cap_exact_score_replies_and_drain_together(serve_factory, tmp_path):
    """50 senders on their own connections race on one user through two workers: exactly 3 allowed.
    Replies are scored by the one scoring process; metrics sum both workers; SIGTERM stops every process."""
    metrics_port = free_port()
    server = serve_factory({"GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF)),
                            "GUARD_WORKERS": "2", "GUARD_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"})
    server.start(timeout_s=120)
    assert server.proc is not None
    deadline = time.monotonic() + 60
    while {e.get("worker") for e in server.events("serving")} != {0, 1}:  # both bound the port
        assert time.monotonic() < deadline
        time.sleep(0.2)
    roles = [" ".join(p.cmdline()[-1:]) for p in _children(server.proc.pid)]
    assert sorted(r for r in roles if r in ("_worker", "_scorer")) == ["_scorer", "_worker", "_worker"]
    while {e.get("worker") for e in server.events("http_listening")} != {0, 1}:  # both serve the pages too
        assert time.monotonic() < deadline
        time.sleep(0.2)
    for _ in range(40):  # a new connection each: the kernel spreads them over the workers (SO_REUSEPORT)
        with urllib.request.urlopen(f"{server.http}/healthz", timeout=5) as answer:
            assert answer.status == 200
    deadline = time.monotonic() + 10
    while {e.get("worker") for e in server.events("http") if e.get("route") == "/healthz"} != {0, 1}:
        assert time.monotonic() < deadline, "one worker answered every page request"
        time.sleep(0.2)
    answers = race_check_touch([server.target], "racer", key=server.key)
    assert sum(a.decision == pb.ALLOW for a in answers) == 3
    deadline = time.monotonic() + 10
    while len(logged := [e for e in server.events("rpc") if e.get("method") == "CheckTouch"]) < 50:
        assert time.monotonic() < deadline, len(logged)  # each worker writes its lines every fraction of a second
        time.sleep(0.2)
    assert {e.get("worker") for e in logged} == {0, 1}  # the race really ran through both workers
    assert all(a.decision == pb.DEFER and list(a.reasons) == [pb.FREQUENCY_CAP] for a in answers if not a.recorded)

    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        reply = stub.RecordReply(pb.RecordReplyRequest(user_id="u1", channel="sms", text="别再发了，烦死了", reply_id="r1"),
                                 timeout=60)
        assert reply.label == pb.NEGATIVE and reply.action == pb.HOLD and reply.task_id
    deadline = time.monotonic() + 10
    while True:
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        line = [x for x in scraped.splitlines() if x.startswith('guard_rpc_seconds_count{code="OK",method="CheckTouch"}')]
        if line and float(line[0].split()[-1]) == 50.0:
            break
        assert time.monotonic() < deadline, line
        time.sleep(0.2)

    pids = [p.pid for p in _children(server.proc.pid)]
    assert server.stop() == 0
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids):
        assert time.monotonic() < deadline, "a child outlived the supervisor's drain"
        time.sleep(0.1)


def test_sigkill_of_the_supervisor_takes_every_child_along(serve_factory, tmp_path):
    server = serve_factory({"GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF)),
                            "GUARD_WORKERS": "2"})
    server.start(timeout_s=120)
    assert server.proc is not None
    pids = [p.pid for p in _children(server.proc.pid)]
    assert len(pids) >= 4  # two workers, the scorer, the embedded Redis
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.proc = None
    deadline = time.monotonic() + 15
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids):
        assert time.monotonic() < deadline, "a child outlived a killed supervisor"
        time.sleep(0.1)
