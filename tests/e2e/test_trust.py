"""Keys, roles and tenants on the real server: who can call, who sees what, and whose policy is in force."""

from __future__ import annotations

import json
import time
import urllib.request

import grpc
import redis as redis_lib
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from guard.store.embedded import free_port
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF, everything_stored, policy_file

COMPLAINT = "你们的推送太烦了，再发我就投诉到12315"


def _code(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    try:
        call(*args, timeout=10, **kwargs)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _touch(user: str, touch_id: str, channel: str = "push", campaign: str = "c1") -> pb.CheckTouchRequest:
    return pb.CheckTouchRequest(user_id=user, channel=channel, category="promotion", touch_id=touch_id,
                                campaign_id=campaign)


def _new_key(server, *args: str, key: str | None = None) -> str:
    out = server.cli("keys", "create", *args, key=key)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_a_call_needs_a_good_key_with_the_right_role(serve_factory, tmp_path, private_redis):
    metrics_port = free_port()
    server = serve_factory({"GUARD_REDIS_URL": private_redis.url, "GUARD_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
                            "GUARD_AUTH_FAILURES_PER_MINUTE": "8",
                            # a revocation must not wait for the poll in the process that revokes
                            "GUARD_CONTROL_POLL_SECONDS": "60",
                            "GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))})
    server.start()
    assert (server.data_dir / "admin.key").stat().st_mode & 0o777 == 0o600
    assert server.events("admin_key_created")[0]["path"] == str(server.data_dir / "admin.key")
    sender = _new_key(server, "--role", "sender", "--name", "campaign engine")
    support = _new_key(server, "--role", "support", "--name", "desk")
    with server.channel(sender) as channel:
        assert pb_grpc.EngagementGuardStub(channel).CheckTouch(_touch("u1", "t1"), timeout=10).decision == pb.ALLOW
        task = pb_grpc.EngagementGuardStub(channel).RecordReply(pb.RecordReplyRequest(
            user_id="u1", channel="push", text=COMPLAINT, reply_id="r1"), timeout=30).task_id
        assert task
        # The wrong role: refused alike whether the user or task exists or not.
        stub, desk = pb_grpc.EngagementGuardStub(channel), pb_grpc.RecoveryDeskStub(channel)
        for user in ("u1", "nobody"):
            assert _code(stub.GetPreferences, pb.GetPreferencesRequest(user_id=user)) == (
                grpc.StatusCode.PERMISSION_DENIED, "this key (sender) may not call GetPreferences")
        for task_id in (task, "no-such-task"):
            code, _ = _code(desk.ClaimRecoveryTask, pb.ClaimRecoveryTaskRequest(task_id=task_id, agent="amy"))
            assert code == grpc.StatusCode.PERMISSION_DENIED
        assert _code(stub.ExportUserData, pb.ExportUserDataRequest(user_id="u1"))[0] == grpc.StatusCode.PERMISSION_DENIED
        assert _code(pb_grpc.AdminStub(channel).ListApiKeys, pb.ListApiKeysRequest())[0] == (
            grpc.StatusCode.PERMISSION_DENIED)
    with server.channel(support) as channel:
        desk = pb_grpc.RecoveryDeskStub(channel)
        claimed = desk.ClaimRecoveryTask(pb.ClaimRecoveryTaskRequest(task_id=task), timeout=10)
        assert claimed.assignee == "desk"  # the key's name: the agent comes from the key
        assert _code(pb_grpc.EngagementGuardStub(channel).CheckTouch, _touch("u1", "t2"))[0] == (
            grpc.StatusCode.PERMISSION_DENIED)
    # No key, or one never issued: UNAUTHENTICATED, alike for users that exist and users that do not.
    with grpc.insecure_channel(server.target) as bare:
        stub = pb_grpc.EngagementGuardStub(bare)
        for user in ("u1", "nobody"):
            assert _code(stub.GetPreferences, pb.GetPreferencesRequest(user_id=user))[0] == grpc.StatusCode.UNAUTHENTICATED
        # Health and reflection need no key.
        health = health_pb2_grpc.HealthStub(bare).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        listed = next(iter(reflection_pb2_grpc.ServerReflectionStub(bare).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)))
        assert "guard.v1.Admin" in [s.name for s in listed.list_services_response.service]
    with server.channel("gk_never-issued") as channel:
        assert _code(pb_grpc.EngagementGuardStub(channel).CheckTouch, _touch("u1", "t3"))[0] == (
            grpc.StatusCode.UNAUTHENTICATED)
    # Revoked: refused at once; the list keeps it, marked.
    listed = json.loads(server.cli("keys", "list").stdout)["keys"]
    sender_id = next(k["key_id"] for k in listed if k["name"] == "campaign engine")
    assert server.cli("keys", "revoke", sender_id).returncode == 0
    with server.channel(sender) as channel:
        code, detail = _code(pb_grpc.EngagementGuardStub(channel).CheckTouch, _touch("u1", "t4"))
        assert (code, detail) == (grpc.StatusCode.UNAUTHENTICATED, "the API key is unknown or revoked")
    revoked = next(k for k in json.loads(server.cli("keys", "list").stdout)["keys"] if k["key_id"] == sender_id)
    assert revoked["revoked_at"] and revoked["roles"] == ["SENDER"]
    # Stored hashed: no key appears anywhere in Redis.
    client = redis_lib.Redis.from_url(private_redis.url)
    everything = everything_stored(client)
    for secret in (sender, support, server.key):
        assert secret.encode() not in everything
    # Failed authentications are counted, and an address that keeps failing is slowed (bad keys answer
    # RESOURCE_EXHAUSTED); a valid key still works from there.
    with server.channel("gk_guess") as channel:
        codes = [_code(pb_grpc.EngagementGuardStub(channel).CheckTouch, _touch("u1", f"g{i}"))[0] for i in range(10)]
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and codes[0] == grpc.StatusCode.UNAUTHENTICATED
    with server.channel() as channel:
        assert pb_grpc.EngagementGuardStub(channel).CheckTouch(_touch("u2", "t5"), timeout=10).decision == pb.ALLOW
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    counted = {line.split("{")[1].split("}")[0]: float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("guard_auth_failures_total{")}
    assert counted['reason="missing"'] >= 2 and counted['reason="revoked"'] >= 1 and counted['reason="role"'] >= 5
    assert counted['reason="limited"'] >= 1
    # The log names keys by id and tenant, never a user id or the words of a reply.
    log_text = server.log.read_text()
    assert COMPLAINT not in log_text and '"u1"' not in log_text and sender not in log_text
    assert any(e.get("key") == sender_id for e in server.events("rpc", where=lambda e: e.get("key") == sender_id))
    assert server.stop() == 0


def _tenant_admin(server, tenant: str) -> str:
    return _new_key(server, "--tenant", tenant, "--role", "admin", "--name", f"{tenant} admin")


def test_two_tenants_with_the_same_user_ids_see_nothing_of_each_other(app_serve_factory, tmp_path, private_redis):
    pol = policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF, recovery={"redeliver_after": "1s"})
    # An API contract: the app as serve builds it, in process, on its own Redis.
    server = app_serve_factory({"GUARD_REDIS_URL": private_redis.url, "GUARD_POLICY": str(pol)})
    server.start()
    keys = {t: _tenant_admin(server, t) for t in ("acme", "globex")}
    tasks: dict[str, str] = {}
    for tenant, key in keys.items():
        with server.channel(key) as channel:
            stub = pb_grpc.EngagementGuardStub(channel)
            if tenant == "acme":
                stub.UpdatePreferences(pb.UpdatePreferencesRequest(
                    preferences=pb.Preferences(user_id="u1", channels={"sms": False}), source="user",
                    update_mask=field_mask_pb2.FieldMask(paths=["channels.sms"])), timeout=10)
                for i in range(3):
                    stub.CheckTouch(_touch("u1", f"t{i}", campaign=f"c{i}"), timeout=10)
            tasks[tenant] = stub.RecordReply(pb.RecordReplyRequest(user_id="u1", channel="push",
                                                                   text=f"{COMPLAINT} ({tenant})", reply_id="r1"),
                                             timeout=30).task_id
    acme, globex = (server.channel(keys[t]) for t in ("acme", "globex"))
    with acme, globex:
        a, g = pb_grpc.EngagementGuardStub(acme), pb_grpc.EngagementGuardStub(globex)
        assert a.GetPreferences(pb.GetPreferencesRequest(user_id="u1"), timeout=10).channels == {"sms": False}
        assert g.GetPreferences(pb.GetPreferencesRequest(user_id="u1"), timeout=10).channels == {}
        assert len(a.GetUserState(pb.GetUserStateRequest(user_id="u1"), timeout=10).recent_touches) == 3
        g_state = g.GetUserState(pb.GetUserStateRequest(user_id="u1"), timeout=10)
        assert list(g_state.recent_touches) == [] and all(c.used == 0 for c in g_state.caps)
        assert g.CancelTouch(pb.CancelTouchRequest(user_id="u1", touch_id="t0"), timeout=10).cancelled is False
        # The desk: each tenant lists and watches its own task, and cannot touch the other's.
        a_desk, g_desk = pb_grpc.RecoveryDeskStub(acme), pb_grpc.RecoveryDeskStub(globex)
        assert [t.task_id for t in a_desk.ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10).tasks] == [
            tasks["acme"]]
        assert [t.task_id for t in g_desk.ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10).tasks] == [
            tasks["globex"]]
        assert _code(a_desk.ClaimRecoveryTask, pb.ClaimRecoveryTaskRequest(task_id=tasks["globex"]))[0] == (
            grpc.StatusCode.NOT_FOUND)
        watched = next(iter(g_desk.WatchRecoveryTasks(pb.WatchRecoveryTasksRequest(consumer="gil"), timeout=10)))
        assert watched.task_id == tasks["globex"]
        # Exports of the same user id differ by tenant.
        a_doc = json.loads(a.ExportUserData(pb.ExportUserDataRequest(user_id="u1"), timeout=30).document)
        g_doc = json.loads(g.ExportUserData(pb.ExportUserDataRequest(user_id="u1"), timeout=30).document)
        assert len(a_doc["touches"]) == 3 and g_doc["touches"] == [] and g_doc["preferences"] is None
        assert [r["text"] for r in a_doc["replies"]] == [f"{COMPLAINT} (acme)"]
        assert [r["text"] for r in g_doc["replies"]] == [f"{COMPLAINT} (globex)"]
        assert [t["task_id"] for t in g_doc["tasks"]] == [tasks["globex"]]
        # A tenant's admin cannot provision another tenant.
        code, _ = _code(pb_grpc.AdminStub(acme).ListApiKeys, pb.ListApiKeysRequest(tenant="globex"))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    # In Redis: every key carries its tenant; the campaign counters are apart.
    client = redis_lib.Redis.from_url(private_redis.url, decode_responses=True)
    deadline = time.monotonic() + 10
    while [client.hget(f"guard:{{acme}}:campaign:c{i}", "touches") for i in range(3)] != ["1", "1", "1"]:
        assert time.monotonic() < deadline, "acme's campaign counters were never written"  # every 100 ms
        time.sleep(0.05)
    assert [client.hget(f"guard:{{globex}}:campaign:c{i}", "touches") for i in range(3)] == [None, None, None]
    user_keys = [k for k in client.scan_iter(match="guard:*u1*", count=1000)]
    assert user_keys and all(k.startswith(("guard:{acme:u1}:", "guard:{globex:u1}:")) for k in user_keys)
    assert client.xlen("guard:{acme}:tasks:stream") == 1 and client.xlen("guard:{globex}:tasks:stream") == 1
    assert server.stop() == 0


def test_a_tenants_own_policy_reaches_every_serving_process_without_a_restart(serve_factory, tmp_path, private_redis):
    pol = policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF)
    env = {"GUARD_REDIS_URL": private_redis.url, "GUARD_POLICY": str(pol), "GUARD_CONTROL_POLL_SECONDS": "0.5"}
    first, second = serve_factory(env, data_dir=tmp_path / "one"), serve_factory(env, data_dir=tmp_path / "two")
    first.start()
    second.start()
    acme = _tenant_admin(first, "acme")
    globex = _tenant_admin(first, "globex")
    with second.channel(acme) as channel:  # the second process serves acme with the default policy meanwhile
        stub = pb_grpc.EngagementGuardStub(channel)
        assert [stub.CheckTouch(_touch("u1", f"a{i}", campaign=f"a{i}"), timeout=10).decision
                for i in range(2)] == [pb.ALLOW] * 2
    (tmp_path / "strict").mkdir()
    strict = policy_file(tmp_path / "strict", quiet_hours=QUIET_HOURS_OFF,
                         caps=[{"id": "one_a_day", "limit": 1, "window": "1d"}])
    applied = first.cli("policy", "apply", str(strict), key=acme)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["version"] == "1"
    with second.channel(acme) as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        deadline = time.monotonic() + 5
        for probe in range(100):  # a fresh user each time: its second touch of a day tells which policy decides
            assert stub.CheckTouch(_touch(f"probe{probe}", "x1", campaign="x1"), timeout=10).decision == pb.ALLOW
            second_touch = stub.CheckTouch(_touch(f"probe{probe}", "x2", campaign="x2"), timeout=10)
            if second_touch.decision != pb.ALLOW:
                break
            assert time.monotonic() < deadline, "the second process never put acme's own policy in force"
            time.sleep(0.1)
        assert second_touch.decision == pb.DEFER and list(second_touch.reasons) == [pb.FREQUENCY_CAP]
        assert [c.rule_id for c in second_touch.caps if c.exceeded] == ["one_a_day"]
    with second.channel(globex) as channel:  # another tenant keeps the default
        stub = pb_grpc.EngagementGuardStub(channel)
        assert [stub.CheckTouch(_touch("u3", f"g{i}", campaign=f"g{i}"), timeout=10).decision
                for i in range(2)] == [pb.ALLOW] * 2
    shown = second.cli("policy", "show", key=acme)
    assert shown.returncode == 0 and shown.stdout.startswith("# tenant acme: its own policy, version 1")
    assert "one_a_day" in shown.stdout
    assert second.cli("policy", "show", key=globex).stdout.startswith("# tenant globex: the serving process's default")
    # A policy with a mistake is refused naming where, and the one in force stays.
    broken = tmp_path / "broken.yaml"
    broken.write_text(strict.read_text(encoding="utf-8").replace("limit: 1", "limit: -1"), encoding="utf-8")
    refused = first.cli("policy", "apply", str(broken), key=acme)
    assert refused.returncode == 2 and "INVALID_ARGUMENT: policy_yaml" in refused.stderr
    assert "version 1" in first.cli("policy", "show", key=acme).stdout
    # Only an operator names another tenant.
    assert "PERMISSION_DENIED" in first.cli("policy", "show", "--tenant", "globex", key=acme).stderr
    assert first.cli("policy", "show", "--tenant", "globex").returncode == 0
    assert first.stop() == 0 and second.stop() == 0
