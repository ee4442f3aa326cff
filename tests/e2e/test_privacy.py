"""A data subject's rights on the real server: export everything, erase all but the suppression record;
and logs that never carry a reply's words or a user's id."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
import redis as redis_lib
from google.protobuf import field_mask_pb2

from guard.logs import hash_user
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF, everything_stored, policy_file

COMPLAINT = "你们天天发短信烦死了，再发就去12315投诉"
THANKS = "thanks, the parcel arrived"
USER = "member-8821"


def _everything_of(client: redis_lib.Redis, user: str) -> list[str]:
    return sorted(k for k in client.scan_iter(match=f"guard:{{default:{user}}}:*", count=1000))


def test_export_holds_everything_the_users_calls_stored_and_erasure_leaves_only_the_suppression(
        serve_factory, tmp_path, private_redis):
    server = serve_factory({"GUARD_REDIS_URL": private_redis.url, "GUARD_LOG_USER_IDS": "hash",
                            "GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))})
    server.start()
    client: Any = redis_lib.Redis.from_url(private_redis.url, decode_responses=True)  # replies as the test reads them
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        stub.UpdatePreferences(pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(user_id=USER, channels={"email": False}, categories={"survey": False},
                                       quiet_hours=pb.QuietHours(time_zone="Asia/Shanghai", start="00:00", end="00:00")),
            source="user", actor="self", update_mask=field_mask_pb2.FieldMask(
                paths=["channels.email", "categories.survey", "quiet_hours"])), timeout=10)
        for i, channel_name in enumerate(("push", "sms")):
            assert stub.CheckTouch(pb.CheckTouchRequest(user_id=USER, channel=channel_name, category="promotion",
                                                        touch_id=f"t{i}", campaign_id=f"spring-{i}"),
                                   timeout=10).recorded
        complaint = stub.RecordReply(pb.RecordReplyRequest(user_id=USER, channel="sms", text=COMPLAINT, reply_id="r1",
                                                           in_reply_to_touch_id="t1"), timeout=30)
        assert complaint.action == pb.HOLD and complaint.task_id
        stub.RecordReply(pb.RecordReplyRequest(user_id=USER, channel="push", text=THANKS, reply_id="r2"), timeout=30)

        stored = _everything_of(client, USER)
        exported = server.cli("user", "export", USER)
        assert exported.returncode == 0, exported.stderr
        doc = json.loads(exported.stdout)
        assert doc["keys"] == stored  # every key the user's calls made, and nothing of anyone else
        assert doc["preferences"]["channels"] == {"email": False} and doc["preferences"]["quiet"]["tz"] == "Asia/Shanghai"
        assert {(e["field"], e["new"], e["source"]) for e in doc["consent_ledger"]} >= {
            ("categories.survey", "false", "user"), ("channels.email", "false", "user")}
        assert sorted(t["touch_id"] for t in doc["touches"]) == ["t0", "t1"]
        assert {t["campaign"] for t in doc["touches"]} == {"spring-0", "spring-1"}
        # Read as a person reads it: times in ISO 8601, flags as true or false (once "1796134276403" and "0").
        assert all(t["at"].endswith("Z") and t["high_value"] is False for t in doc["touches"])
        assert all(r["at"].endswith("Z") for r in doc["replies"]) and doc["tasks"][0]["created_at"].endswith("Z")
        assert sorted((r["reply_id"], r["text"]) for r in doc["replies"]) == [("r1", COMPLAINT), ("r2", THANKS)]
        assert doc["hold_until"] and doc["open_task"] == complaint.task_id
        assert [t["task_id"] for t in doc["tasks"]] == [complaint.task_id]
        assert doc["tasks"][0]["replies"][0]["text"] == COMPLAINT
        assert set(doc["cap_counters"]) >= {"marketing_weekly"}

        erased = stub.EraseUser(pb.EraseUserRequest(user_id=USER, actor="dpo@brand", reason="GDPR art. 17 request"),
                                timeout=30)
        assert list(erased.channels_suppressed) == ["email"] and list(erased.categories_suppressed) == ["survey"]
        assert erased.tasks_redacted == 1 and erased.keys_removed >= len(stored)
        # What is left of the user: the suppression record and a ledger holding the erasure.
        assert _everything_of(client, USER) == [f"guard:{{default:{USER}}}:consent", f"guard:{{default:{USER}}}:prefs"]
        record = json.loads(client.get(f"guard:{{default:{USER}}}:prefs"))
        assert record["channels"] == {"email": False} and record["categories"] == {"survey": False}
        assert "quiet" not in record and record["unsubscribed_all"] is False
        ledger = client.xrange(f"guard:{{default:{USER}}}:consent")
        assert [(f["source"], f["actor"]) for _, f in ledger] == [("erasure", "dpo@brand")]
        # No word of theirs is anywhere in Redis, the desk's copy included.
        everything = everything_stored(client)
        assert COMPLAINT.encode() not in everything and THANKS.encode() not in everything
        assert USER.encode() not in everything  # nor their id in any value: the desk's tasks, the tenant's queues
        # (the names of the two keys the suppression keeps are the user's own: it must be found by them)
        assert not [k for k in client.scan_iter(count=1000) if USER in k and not k.startswith(f"guard:{{default:{USER}}}")]
        task = pb_grpc.RecoveryDeskStub(channel).ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10).tasks[0]
        assert task.task_id == complaint.task_id and list(task.replies) == [] and task.user_id == ""
        # The suppression still works: a marketing email stays blocked; push flows.
        email = stub.CheckTouch(pb.CheckTouchRequest(user_id=USER, channel="email", category="promotion",
                                                     touch_id="after-1"), timeout=10)
        assert email.decision == pb.BLOCK and list(email.reasons) == [pb.CHANNEL_OPTED_OUT]
        assert stub.CheckTouch(pb.CheckTouchRequest(user_id=USER, channel="push", category="content",
                                                    touch_id="after-2"), timeout=10).decision == pb.ALLOW
        # Erasure asks who.
        with pytest.raises(grpc.RpcError) as err:
            stub.EraseUser(pb.EraseUserRequest(user_id=USER), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("actor")
    assert server.stop() == 0
    # The log: never the words, never the id; with GUARD_LOG_USER_IDS=hash, the id's keyed hash.
    log_text = server.log.read_text(encoding="utf-8")
    assert COMPLAINT not in log_text and THANKS not in log_text and USER not in log_text
    hashed = (server.data_dir / "log-hash.key").read_text(encoding="ascii").strip()
    import guard.logs as logs

    logs._user_id_key = bytes.fromhex(hashed)
    try:
        expected = hash_user(USER)
    finally:
        logs._user_id_key = None
    assert {e.get("user") for e in server.events("rpc", where=lambda e: e.get("method") == "RecordReply")
            if e.get("method") == "RecordReply"} == {expected}
