"""A "no" is never forgotten silently: a Redis that loses what guard wrote, under a running ``guard serve``.

The probe's case: a Redis flushed (or restarted without persistence) under a running guard, which then
ALLOWed a 4th marketing touch in a week and SMS to a user who had closed SMS, and after a restart made a new
admin key over ``admin.key``. Now the store's identity is checked every poll: marketing DEFERs with
``STORE_RESET``, health says NOT_SERVING with the reason, ``admin.key`` stays as it was, and ``guard store
adopt`` returns guard to service.
"""

from __future__ import annotations

import json
import time

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from guard.domain.types import Reason, TouchClass, Verdict
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.conftest import RedisProcess
from tests.helpers import QUIET_HOURS_OFF, policy_file, touch


def _touch(stub, user: str, touch_id: str, channel: str = "push") -> pb.CheckTouchResponse:
    return stub.CheckTouch(pb.CheckTouchRequest(user_id=user, channel=channel, category="promotion",
                                                campaign_id=f"c-{touch_id}", touch_id=touch_id), timeout=10)


def _health(server) -> dict[str, int]:
    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
                for name in ("", "guard.redis")}


def _until(condition, timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["flushed", "restarted without persistence"])
def test_a_store_that_forgot_is_noticed_refuses_marketing_keeps_admin_key_and_is_adopted(serve_factory, tmp_path, how):
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    server = serve_factory({"GUARD_REDIS_URL": redis.url,
                            "GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))})
    server.start()
    admin_key = (server.data_dir / "admin.key").read_text()
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        assert all(_touch(stub, "u1", f"t{i}").recorded for i in range(3))
        assert _touch(stub, "u1", "t3").reasons == [pb.FREQUENCY_CAP]  # three a week, by the shipped policy
        stub.UpdatePreferences(pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(user_id="u2", channels={"sms": False}), source="user", actor="u2",
            update_mask=field_mask_pb2.FieldMask(paths=["channels.sms"])), timeout=10)
        assert _touch(stub, "u2", "s1", "sms").decision == pb.BLOCK

        if how == "flushed":
            redis.client().flushall()
        else:
            redis.stop()
            redis.start()
        _until(lambda: _health(server)[""] == health_pb2.HealthCheckResponse.NOT_SERVING, what="health never said it")
        fourth = _touch(stub, "u1", "t4")  # the key is still cached; the store lost it with everything else
        assert fourth.decision == pb.DEFER and list(fourth.reasons) == [pb.STORE_RESET] and not fourth.recorded
        sms = _touch(stub, "u2", "s2", "sms")
        assert sms.decision == pb.DEFER and list(sms.reasons) == [pb.STORE_RESET]
    assert _health(server)["guard.redis"] == health_pb2.HealthCheckResponse.SERVING  # Redis answers; it forgot
    ready = httpx.get(f"{server.http}/readyz", timeout=5)
    assert ready.status_code == 503 and "store reset" in ready.text
    assert httpx.get(f"{server.http}/healthz", timeout=5).status_code == 200  # alive: do not restart it
    time.sleep(2.5)  # several polls
    resets = server.events("store_reset")
    assert len(resets) == 1 and resets[0]["level"] == "error"

    assert server.stop() == 0
    server.start(ready_on="guard.redis")  # a restart does not re-initialise the store nor mint a key over admin.key
    _until(lambda: _health(server)[""] == health_pb2.HealthCheckResponse.NOT_SERVING, what="the restart forgot")
    assert (server.data_dir / "admin.key").read_text() == admin_key
    assert not server.events("admin_key_created")[1:]  # only the first start's

    adopted = server.cli("store", "adopt", "--actor", "ops@brand", "--reason", f"redis {how}; accepted",
                         "--data-dir", str(server.data_dir), "--redis-url", redis.url, server=False)
    assert adopted.returncode == 0, adopted.stderr
    assert json.loads(adopted.stdout)["admin_key_restored"] is True
    _until(lambda: _health(server)[""] == health_pb2.HealthCheckResponse.SERVING, what="adoption was not taken")
    with server.channel() as channel:  # the same admin.key works again
        assert _touch(pb_grpc.EngagementGuardStub(channel), "u3", "t9").decision == pb.ALLOW
    status = json.loads(server.cli("store", "status", "--data-dir", str(server.data_dir), "--redis-url", redis.url,
                                   server=False).stdout)
    assert status["state"] == "ok" and status["history"][0]["actor"] == "ops@brand"
    assert server.events("store_reset_ended")
    assert server.stop() == 0
    redis.stop()


async def test_while_reset_marketing_defers_and_transactional_follows_its_fail_mode(app):
    app.store.reset_reason = "the test says so"
    try:
        marketing = await app.service.check(touch(user="u1", touch_id="m1"))
        assert marketing.verdict is Verdict.DEFER and marketing.reasons == (Reason.STORE_RESET,) and not marketing.recorded
        otp = await app.service.check(touch(user="u1", touch_id="o1", touch_class=TouchClass.TRANSACTIONAL))
        assert otp.verdict is Verdict.ALLOW and otp.reasons == (Reason.STORE_RESET,)  # shipped: transactional fails open
        many = await app.service.check_many([touch(user=f"u{i}", touch_id=f"b{i}") for i in range(3)])
        assert {o.reasons for o in many} == {(Reason.STORE_RESET,)}
    finally:
        app.store.reset_reason = ""
