"""End to end: the real server, its embedded Redis, health, reflection, restart, drain and fail modes."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.conftest import RedisProcess
from tests.helpers import QUIET_HOURS_OFF, policy_file

NIGHT_SAFE = pb.TRANSACTIONAL  # the tests run at any hour: quiet hours must not decide them


def check(stub, touch_id: str, **kw) -> pb.CheckTouchResponse:
    fields = {"user_id": "u1", "channel": "push", "category": "content", "touch_id": touch_id, **kw}
    return stub.CheckTouch(pb.CheckTouchRequest(**fields), timeout=10)


def open_day_policy(tmp_path) -> str:
    """The shipped policy with quiet hours that never apply, so the cap is what decides."""
    return str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))


def test_serve_with_no_configuration_counts_across_a_restart(serve_factory, tmp_path):
    """Embedded Redis, health, reflection, exact cap, idempotency, persistence across restart, clean drain."""
    from guard.store.embedded import free_port

    metrics_port = free_port()
    server = serve_factory({"GUARD_POLICY": open_day_policy(tmp_path), "GUARD_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"})
    server.start()
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service="guard.v1.EngagementGuard")).status == 1
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"guard.v1.EngagementGuard", "grpc.health.v1.Health"} <= services
        decisions = [check(stub, f"t{i}").decision for i in range(4)]
        assert decisions == [pb.ALLOW, pb.ALLOW, pb.ALLOW, pb.DEFER]
        assert check(stub, "t0").replayed
    import urllib.request

    scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert 'guard_decisions_total{decision="ALLOW",touch_class="marketing"} 4.0' in scraped  # each decision once
    assert 'guard_decisions_total{decision="DEFER",touch_class="marketing"} 1.0' in scraped
    assert 'guard_decision_reasons_total{decision="DEFER",reason="FREQUENCY_CAP",touch_class="marketing"} 1.0' in scraped
    assert 'guard_rpc_seconds_count{code="OK",method="CheckTouch"}' in scraped
    deferred = server.events("rpc", where=lambda e: e.get("decision") == "DEFER")  # lines are written in batches
    assert any(e.get("decision") == "DEFER" and "ms" in e for e in deferred)
    assert server.stop() == 0
    assert "embedded_redis_started" in server.log.read_text()

    server.start()
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        again = check(stub, "t9")
        assert again.decision == pb.DEFER and list(again.reasons) == [pb.FREQUENCY_CAP]
        assert again.retry_after.seconds > 6 * 86400
        state = stub.GetUserState(pb.GetUserStateRequest(user_id="u1"), timeout=10)
        assert len(state.recent_touches) == 3
    assert server.stop() == 0


def test_bad_input_is_invalid_argument_naming_the_field(app_serve_factory):
    server = app_serve_factory()  # an API contract: the app as serve builds it, in process
    server.start()
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        cases = [({"channel": "fax"}, "channel"), ({"user_id": ""}, "user_id"), ({"touch_id": ""}, "touch_id"),
                 ({"user_id": "u" * 200}, "user_id")]
        for override, field in cases:
            with pytest.raises(grpc.RpcError) as err:
                check(stub, override.pop("touch_id", "t1"), **override)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith(field)
        batch = pb.CheckTouchesRequest(checks=[pb.CheckTouchRequest(user_id="u", channel="push", category="content",
                                                                    touch_id=f"x{i}") for i in range(1001)])
        with pytest.raises(grpc.RpcError) as err:
            stub.CheckTouches(batch, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "checks" in err.value.details()
        prefs = pb.UpdatePreferencesRequest(preferences=pb.Preferences(user_id="u1"), source="user",
                                            update_mask=field_mask_pb2.FieldMask(paths=["colour"]))
        with pytest.raises(grpc.RpcError) as err:
            stub.UpdatePreferences(prefs, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("update_mask")
        tz = pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(user_id="u1", quiet_hours=pb.QuietHours(time_zone="Mars/Base", start="22:00",
                                                                               end="07:00")),
            source="user", update_mask=field_mask_pb2.FieldMask(paths=["quiet_hours"]))
        with pytest.raises(grpc.RpcError) as err:
            stub.UpdatePreferences(tz, timeout=10)
        assert "quiet_hours.time_zone" in err.value.details()
        assert stub.GetPreferences(pb.GetPreferencesRequest(user_id="u1"), timeout=10).version == 0
    cli = subprocess.run([sys.executable, "-m", "guard", "check", "--server", server.target, "u1", "fax", "content"],
                         capture_output=True, text=True, env=server.cli_env)
    assert cli.returncode == 2 and "INVALID_ARGUMENT: channel" in cli.stderr
    server.stop()


def test_preferences_ledger_and_optimistic_concurrency(app_serve_factory):
    server = app_serve_factory()  # an API contract: the app as serve builds it, in process
    server.start()
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)

        def update(paths, expected=None, **prefs):
            req = pb.UpdatePreferencesRequest(preferences=pb.Preferences(user_id="u1", **prefs), source="user",
                                              actor="self", update_mask=field_mask_pb2.FieldMask(paths=paths))
            if expected is not None:
                req.expected_version = expected
            return stub.UpdatePreferences(req, timeout=10)

        first = update(["channels.sms", "categories.survey"], channels={"sms": False}, categories={"survey": False},
                       channel_scopes={"sms": "all"})  # "stop everything here": transactional SMS stops too
        assert first.version == 1 and dict(first.channels) == {"sms": False}
        assert dict(first.channel_scopes) == {"sms": "all"}
        second = update(["channels.email"], expected=1, channels={"email": False})
        assert dict(second.channels) == {"sms": False, "email": False} and second.version == 2
        with pytest.raises(grpc.RpcError) as err:
            update(["unsubscribed_all"], expected=1, unsubscribed_all=True)
        assert err.value.code() == grpc.StatusCode.ABORTED
        assert stub.GetPreferences(pb.GetPreferencesRequest(user_id="u1"), timeout=10).unsubscribed_all is False
        blocked = check(stub, "sms1", channel="sms", touch_class=NIGHT_SAFE)
        assert blocked.decision == pb.BLOCK and list(blocked.reasons) == [pb.CHANNEL_OPTED_OUT]
        ledger = stub.ListConsentEvents(pb.ListConsentEventsRequest(user_id="u1", page_size=2), timeout=10)
        assert [e.field for e in ledger.events] == ["channel_scopes.email", "channels.email"]  # newest first
        assert ledger.next_page_token
        rest = stub.ListConsentEvents(pb.ListConsentEventsRequest(user_id="u1", page_token=ledger.next_page_token),
                                      timeout=10)
        assert [(e.field, e.old_value, e.new_value, e.source) for e in rest.events] == [
            ("categories.survey", "null", "false", "user"), ("channel_scopes.sms", "null", '"all"', "user"),
            ("channels.sms", "null", "false", "user")]
    server.stop()


def test_redis_outage_follows_fail_modes_and_recovers(serve_factory, tmp_path):
    """Redis stopped: marketing DEFER, transactional ALLOW, health NOT_SERVING (the service as a whole too: take
    no traffic); back when Redis returns.

    The Redis keeps its data across the restart (append-only), as guard's own does: the API keys are in it.
    """
    redis = RedisProcess(tmp_path / "redis", extra=["--appendonly", "yes", "--appendfsync", "always"])
    redis.start()
    server = serve_factory({"GUARD_REDIS_URL": redis.url, "GUARD_REDIS_TIMEOUT": "0.3",
                            "GUARD_POLICY": open_day_policy(tmp_path)})
    server.start()
    try:
        with server.channel() as channel:
            stub = pb_grpc.EngagementGuardStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            assert check(stub, "a").decision == pb.ALLOW
            redis.stop()
            down = check(stub, "b")
            assert down.decision == pb.DEFER and list(down.reasons) == [pb.STORE_UNAVAILABLE]
            tx = check(stub, "c", touch_class=pb.TRANSACTIONAL)
            assert tx.decision == pb.ALLOW and list(tx.reasons) == [pb.STORE_UNAVAILABLE] and not tx.recorded
            import time

            deadline = time.monotonic() + 10
            while health.Check(health_pb2.HealthCheckRequest(service="guard.redis")).status != 2:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert health.Check(health_pb2.HealthCheckRequest(service="")).status == 2
            redis.start()
            deadline = time.monotonic() + 15
            while check(stub, "d").decision != pb.ALLOW:
                assert time.monotonic() < deadline, "did not recover after Redis returned"
                time.sleep(0.2)
            while health.Check(health_pb2.HealthCheckRequest(service="")).status != 1:
                assert time.monotonic() < deadline, "health did not say it recovered"
                time.sleep(0.2)
    finally:
        redis.stop()
    assert server.stop() == 0


def test_sigterm_lets_a_call_in_flight_finish(serve_factory, tmp_path):
    """A CheckTouch waiting on a stopped Redis when SIGTERM arrives still gets its answer; the server exits 0.

    Ordered by what can be observed, not by sleeping: the check is in flight once its bytes wait in the
    stopped Redis's socket, and the drain has begun once the server says so.
    """
    import os
    import signal
    import time

    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    server = serve_factory({"GUARD_REDIS_URL": redis.url, "GUARD_REDIS_TIMEOUT": "5",
                            "GUARD_POLICY": open_day_policy(tmp_path)})
    server.start()
    assert redis.proc is not None
    try:
        with server.channel() as channel:
            stub = pb_grpc.EngagementGuardStub(channel)
            assert check(stub, "warm").decision == pb.ALLOW
            waiting_before = _bytes_waiting_at(redis.port)
            os.kill(redis.proc.pid, signal.SIGSTOP)
            in_flight = stub.CheckTouch.future(pb.CheckTouchRequest(user_id="u1", channel="push", category="content",
                                                                    touch_id="late"), timeout=15)
            deadline = time.monotonic() + 10
            while _bytes_waiting_at(redis.port) <= waiting_before:
                assert time.monotonic() < deadline, "the check never reached Redis"
                time.sleep(0.02)
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            assert server.events("draining", timeout_s=10)
            os.kill(redis.proc.pid, signal.SIGCONT)
            answer = in_flight.result()
            assert answer.decision == pb.ALLOW and answer.recorded
            assert server.proc.wait(timeout=30) == 0
            server.proc = None
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
        redis.stop()


def _bytes_waiting_at(port: int) -> int:
    """Bytes sent to the server listening on ``port`` that it has not read yet (``ss``'s Recv-Q), all sockets."""
    out = subprocess.run(["ss", "-tnH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if line.split())


def test_a_megabyte_value_never_reaches_the_log_whole(serve_factory):
    """1 MB ids are refused before they are logged, and no log line carries a value longer than 256 characters."""
    server = serve_factory()
    server.start()
    with server.channel() as channel:
        desk = pb_grpc.RecoveryDeskStub(channel)
        stub = pb_grpc.EngagementGuardStub(channel)
        big = "t" * (1 << 20)
        calls = [lambda: desk.ClaimRecoveryTask(pb.ClaimRecoveryTaskRequest(task_id=big), timeout=10),
                 lambda: desk.ResolveRecoveryTask(pb.ResolveRecoveryTaskRequest(task_id="t", agent=big,
                                                                                outcome=pb.RECOVERED), timeout=10),
                 lambda: stub.CheckTouch(pb.CheckTouchRequest(user_id=big, channel="push", category="content",
                                                              touch_id="t"), timeout=10),
                 lambda: next(iter(desk.WatchRecoveryTasks(pb.WatchRecoveryTasksRequest(consumer=big), timeout=10)))]
        for send in calls:
            with pytest.raises(grpc.RpcError) as err:
                send()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert len(err.value.details()) < 300
    assert server.stop() == 0
    longest = max(len(line) for line in server.log.read_text().splitlines())
    assert longest < 4096, longest
