"""The fatigue brake on two real serving processes: trips on the figures, reaches both within 2 s, resumes."""

from __future__ import annotations

import re
import time
import urllib.request
from typing import Any

import redis as redis_lib

from guard.store.embedded import free_port
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF, policy_file

Kind = pb.EngagementEvent
BRAKE = {"brake": [{"id": "optouts", "scope": "campaign", "window": "24h", "min_touches": 5,
                    "when": {"opt_out_rate": 0.2}}]}


def _check(stub, user: str, campaign: str) -> pb.CheckTouchResponse:
    return stub.CheckTouch(pb.CheckTouchRequest(user_id=user, channel="push", category="promotion",
                                                touch_id=f"{user}-{campaign}", campaign_id=campaign), timeout=10)


def _first_change(stubs: list[Any], campaign: str, braked: bool, deadline_s: float) -> list[float]:
    """When each process first answers as ``braked`` says, probing with fresh users every 50 ms."""
    seen: list[float | None] = [None] * len(stubs)
    end = time.monotonic() + deadline_s
    n = 0
    while None in seen and time.monotonic() < end:
        for i, stub in enumerate(stubs):
            if seen[i] is None:
                n += 1
                answer = _check(stub, f"probe{time.monotonic_ns()}-{n}", campaign)
                if (pb.CAMPAIGN_FATIGUED in answer.reasons) == braked:
                    seen[i] = time.time()
        time.sleep(0.05)
    assert None not in seen, f"not every process saw the brake {'trip' if braked else 'lift'}"
    return [s for s in seen if s is not None]


def _evaluations(metrics_port: int) -> int:
    """How many passes of the brake rules the evaluating process has completed (its metric, scraped)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    found = re.search(r"^guard_brake_evaluations_total (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


def _until(observed: Any, what: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not observed():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_campaign_wearing_users_out_is_braked_everywhere_and_resumes(serve_factory, tmp_path, private_redis):
    pol = policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF, caps=[], fatigue=BRAKE)
    env = {"GUARD_REDIS_URL": private_redis.url, "GUARD_POLICY": str(pol), "GUARD_BRAKE_SECONDS": "0.5"}
    metrics_port = free_port()
    first = serve_factory({**env, "GUARD_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"}, data_dir=tmp_path / "one")
    # The second evaluates no rules (as a worker past the first of --workers): the brake reaches it by the poll.
    second = serve_factory({**env, "GUARD_WORKER_INDEX": "1"}, data_dir=tmp_path / "two")
    first.start()
    second.start()
    client: Any = redis_lib.Redis.from_url(private_redis.url, decode_responses=True)  # replies as the test reads them
    with first.channel() as one, second.channel(first.key) as two:
        stubs = [pb_grpc.EngagementGuardStub(one), pb_grpc.EngagementGuardStub(two)]
        for i in range(10):
            assert _check(stubs[i % 2], f"a{i}", "autumn").decision == pb.ALLOW
        assert _check(stubs[0], "w0", "winter").decision == pb.ALLOW

        def touches() -> int:
            return stubs[1].GetCampaignHealth(pb.GetCampaignHealthRequest(campaign_id="autumn", window="24h"),
                                              timeout=10).figures.touches

        # Each process writes its figures every 100 ms: all ten touches are in before the opt-outs.
        _until(lambda: touches() == 10, "the ten touches never reached the figures")
        stubs[0].RecordEngagements(pb.RecordEngagementsRequest(events=[
            Kind(touch_id=f"a{i}-autumn", user_id=f"a{i}", event=Kind.UNSUBSCRIBED, provider="jpush")
            for i in range(3)]), timeout=30)  # 3 of 10: an opt-out rate of 30%
        _until(lambda: client.hexists("guard:{default}:brakes", "c:autumn"), "the brake never tripped")
        import json

        tripped_at = json.loads(client.hget("guard:{default}:brakes", "c:autumn"))["at"] / 1000
        for seen in _first_change(stubs, "autumn", True, 5):
            assert seen - tripped_at <= 2.0  # on every serving process within 2 s
        blocked = _check(stubs[1], "late-user", "autumn")
        assert blocked.decision == pb.BLOCK and list(blocked.reasons) == [pb.CAMPAIGN_FATIGUED]
        assert _check(stubs[1], "w1", "winter").decision == pb.ALLOW  # another campaign flows
        tx = stubs[0].CheckTouch(pb.CheckTouchRequest(user_id="t1", channel="push", category="service",
                                                      touch_id="otp", campaign_id="autumn",
                                                      touch_class=pb.TRANSACTIONAL), timeout=10)
        assert tx.decision == pb.ALLOW  # the brake is for marketing
        health = stubs[1].GetCampaignHealth(pb.GetCampaignHealthRequest(campaign_id="autumn", window="24h"),
                                            timeout=10)
        assert (health.brake.rule, health.brake.signal, round(health.brake.value, 2)) == ("optouts", "opt_out_rate",
                                                                                           0.3)
        tasks = pb_grpc.RecoveryDeskStub(one).ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10).tasks
        campaign_tasks = [t for t in tasks if t.kind == "CAMPAIGN"]
        assert len(campaign_tasks) == 1 and campaign_tasks[0].campaign_id == "autumn"
        assert campaign_tasks[0].priority == pb.P1 and "optouts" in campaign_tasks[0].summary
        # An operator resumes it: marketing flows again everywhere, and the same evidence does not brake it again.
        resumed = stubs[1].ResumeCampaign(pb.ResumeCampaignRequest(campaign_id="autumn", actor="lin",
                                                                   reason="creative replaced"), timeout=10)
        assert resumed.resumed
        resumed_at = time.time()
        for seen in _first_change(stubs, "autumn", False, 5):
            assert seen - resumed_at <= 2.0
        # Three complete evaluations after the resume, on the same evidence, trip nothing.
        passes = _evaluations(metrics_port)
        _until(lambda: _evaluations(metrics_port) >= passes + 3, "the brake rules stopped being evaluated")
        assert _check(stubs[0], "after-resume", "autumn").decision == pb.ALLOW
        assert not stubs[0].ResumeCampaign(pb.ResumeCampaignRequest(campaign_id="autumn", actor="lin",
                                                                    reason="again"), timeout=10).resumed
    audit = client.xrange("guard:{default}:brakes:audit")
    assert [(f["what"], f["actor"]) for _, f in audit] == [("trip", "guard"), ("resume", "lin")]
    assert first.stop() == 0 and second.stop() == 0
