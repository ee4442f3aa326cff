"""Silence is feedback: engagement events and tiers on the app wired as ``guard serve`` wires it, in process, on a
clock the test moves (2 s of silence is an ``advance``, not a sleep), with the real CLI as a client."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from google.protobuf import timestamp_pb2

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF, ShiftedClock, policy_file

Kind = pb.EngagementEvent

# Touches count as ignored after 2 s here (3 days by default), so the test can wait for silence.
TIERS = {"ignore_after": "2s", "tiers": [
    {"name": "active", "after_ignored": 0},
    {"name": "cooling", "after_ignored": 3, "caps": [{"limit": 1, "window": "1h"}]},
    {"name": "dormant", "after_ignored": 6, "caps": [{"limit": 1, "window": "30d"}]},
]}


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def server(app_serve_factory, tmp_path, clock):
    proc = app_serve_factory({"GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF, caps=[],
                                                              engagement=TIERS))}, now=clock)
    proc.start()
    yield proc
    assert proc.stop() == 0


def _touch(stub, user: str, touch_id: str, channel: str = "push") -> pb.CheckTouchResponse:
    return stub.CheckTouch(pb.CheckTouchRequest(user_id=user, channel=channel, category="promotion",
                                                touch_id=touch_id, campaign_id=f"spring-{touch_id}"), timeout=10)


def _ms(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def test_ignored_touches_demote_and_an_open_restores_at_once(server, clock):
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        sent = [_touch(stub, "u1", f"t{i}") for i in range(3)]
        assert all(s.decision == pb.ALLOW and s.tier == "active" for s in sent)
        clock.advance(2200)  # nobody opened them
        held = _touch(stub, "u1", "t3")
        assert held.decision == pb.DEFER and list(held.reasons) == [pb.LOW_ENGAGEMENT] and held.tier == "cooling"
        # Allowed again when the last of the three leaves the tier's one-hour window.
        retry_at = _ms(held.evaluated_at) + held.retry_after.seconds * 1000 + held.retry_after.nanos // 1_000_000
        assert retry_at == _ms(sent[2].evaluated_at) + 3_600_000
        assert [(c.rule_id, c.used, c.limit, c.exceeded) for c in held.caps] == [("tier.cooling.1h", 3, 1, True)]
        state = stub.GetUserState(pb.GetUserStateRequest(user_id="u1"), timeout=10).engagement
        assert (state.tier, state.ignored_in_a_row) == ("cooling", 3)
        # The user opens the second touch (its webhook comes late): active at once.
        opened = stub.RecordEngagement(Kind(touch_id="t1", user_id="u1", event=Kind.OPENED, provider="jpush"),
                                       timeout=10)
        assert (opened.touch_known, opened.replayed, opened.action, opened.campaign_id) == (
            True, False, "interaction", "spring-t1")
        back = _touch(stub, "u1", "t4")
        assert back.decision == pb.ALLOW and back.tier == "active"
        # The same webhook again changes nothing.
        again = stub.RecordEngagement(Kind(touch_id="t1", user_id="u1", event=Kind.OPENED), timeout=10)
        assert again.replayed and again.action == "none"
        # A reply is an interaction too.
        for i in range(5, 8):
            _touch(stub, "u2", f"t{i}")
        clock.advance(2200)
        assert _touch(stub, "u2", "t8").tier == "cooling"
        stub.RecordReply(pb.RecordReplyRequest(user_id="u2", channel="push", text="好的，谢谢", reply_id="r1"),
                         timeout=30)
        assert _touch(stub, "u2", "t9").tier == "active"
    # The same events from the command line, as an operator replays a provider's report.
    clicked = server.cli("engagement", "record", "t9", "u2", "CLICKED", "--provider", "jpush")
    assert clicked.returncode == 0, clicked.stderr
    assert json.loads(clicked.stdout)["touch_known"] is True
    refused = server.cli("prefs", "set", "u2", "--channel", "fax=off")
    assert refused.returncode == 2 and "known: app, email, push, sms, wecom" in refused.stderr
    # How far a closing reaches, from the command line: every email; push offers no "stop everything".
    stopped = server.cli("prefs", "set", "u3", "--channel", "email=off:all")
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["channel_scopes"] == {"email": "all"}, stopped
    not_offered = server.cli("prefs", "set", "u3", "--channel", "push=off:all")
    assert not_offered.returncode == 2 and "preferences.channel_scopes.push" in not_offered.stderr
    nonsense = server.cli("prefs", "set", "u3", "--channel", "sms=on:all")
    assert nonsense.returncode != 0 and "NAME=off:all" in nonsense.stderr
    history = server.cli("prefs", "history", "u3")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert len(lines) == 2 and "channel_scopes.email: null -> \"all\"" in lines[0] and "channels.email" in lines[1]
    assert "by support (cli)" in lines[0] and "[key=" in lines[0]  # which key made the change, as its evidence


def test_a_spam_complaint_closes_the_channel_and_opens_a_task(server):
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        assert _touch(stub, "u1", "mail-1", channel="email").decision == pb.ALLOW
        answer = stub.RecordEngagement(Kind(touch_id="mail-1", user_id="u1", event=Kind.SPAM_COMPLAINT,
                                            provider="sendgrid"), timeout=30)
        assert answer.action == "channel_closed" and answer.channel == "email" and answer.task_id
        prefs = stub.GetPreferences(pb.GetPreferencesRequest(user_id="u1"), timeout=10)
        assert prefs.channels == {"email": False}
        ledger = stub.ListConsentEvents(pb.ListConsentEventsRequest(user_id="u1"), timeout=10).events
        assert [(e.field, e.source, e.actor) for e in reversed(ledger)] == [
            ("channels.email", "complaint", "sendgrid:mail-1"), ("channel_scopes.email", "complaint", "sendgrid:mail-1")]
        assert prefs.channel_scopes == {"email": "marketing"}  # a complaint about marketing stops marketing
        tasks = pb_grpc.RecoveryDeskStub(channel).ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10).tasks
        assert [t.task_id for t in tasks] == [answer.task_id] and tasks[0].campaign_id == "spring-mail-1"
        blocked = _touch(stub, "u1", "mail-2", channel="email")
        assert blocked.decision == pb.BLOCK and pb.CHANNEL_OPTED_OUT in blocked.reasons
        # The provider sends it twice: one change in the ledger (the channel and its scope), one task, one reply.
        twice = stub.RecordEngagement(Kind(touch_id="mail-1", user_id="u1", event=Kind.SPAM_COMPLAINT,
                                           provider="sendgrid"), timeout=30)
        assert twice.replayed and twice.task_id == answer.task_id
        assert len(stub.ListConsentEvents(pb.ListConsentEventsRequest(user_id="u1"), timeout=10).events) == 2
        task = pb_grpc.RecoveryDeskStub(channel).ListRecoveryTasks(pb.ListRecoveryTasksRequest(), timeout=10).tasks[0]
        assert len(task.replies) == 1


def test_bounces_unknown_touches_batches_and_bad_input(server):
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        _touch(stub, "u1", "m1", channel="email")
        now = int(time.time())
        hard = Kind(touch_id="m1", user_id="u1", event=Kind.BOUNCED, detail="hard",
                    occurred_at=timestamp_pb2.Timestamp(seconds=now))
        early_delivery = Kind(touch_id="m0", user_id="u1", event=Kind.DELIVERED, channel="email",
                              occurred_at=timestamp_pb2.Timestamp(seconds=now - 60))
        stray = Kind(touch_id="elsewhere-7", user_id="u1", event=Kind.OPENED)
        results = stub.RecordEngagements(pb.RecordEngagementsRequest(events=[hard, early_delivery, stray]),
                                         timeout=30).results
        assert [(r.action, r.touch_known) for r in results] == [("undeliverable", True), ("none", False),
                                                               ("interaction", False)]
        blocked = _touch(stub, "u1", "m2", channel="email")
        assert blocked.decision == pb.BLOCK and list(blocked.reasons) == [pb.UNDELIVERABLE]
        otp = stub.CheckTouch(pb.CheckTouchRequest(user_id="u1", channel="email", category="service", touch_id="otp",
                                                   touch_class=pb.TRANSACTIONAL), timeout=10)
        assert otp.decision == pb.BLOCK  # nobody can receive it there, OTP or not
        state = stub.GetUserState(pb.GetUserStateRequest(user_id="u1"), timeout=10).engagement
        assert list(state.undeliverable_channels) == ["email"]
        delivered = stub.RecordEngagement(Kind(touch_id="m3", user_id="u1", event=Kind.DELIVERED, channel="email"),
                                          timeout=10)
        assert delivered.action == "deliverable"
        assert _touch(stub, "u1", "m4", channel="email").decision == pb.ALLOW
        # Bad input names the field and stores nothing of the batch.
        for bad, field in ((Kind(touch_id="m1", user_id="u1"), "event"),
                           (Kind(touch_id="", user_id="u1", event=Kind.OPENED), "touch_id"),
                           (Kind(touch_id="m1", user_id="u1", event=Kind.OPENED, channel="fax"), "channel"),
                           (Kind(touch_id="m1", user_id="u1", event=Kind.OPENED,
                                 occurred_at=timestamp_pb2.Timestamp(seconds=now + 86_400)), "occurred_at"),
                           (Kind(touch_id="nobody-knows", user_id="u1", event=Kind.UNSUBSCRIBED), "channel")):
            with pytest.raises(grpc.RpcError) as err:
                stub.RecordEngagement(bad, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith(field)
        good = Kind(touch_id="m4", user_id="u1", event=Kind.CLICKED)
        with pytest.raises(grpc.RpcError) as err:
            stub.RecordEngagements(pb.RecordEngagementsRequest(events=[good, Kind(touch_id="m4", user_id="u1")]),
                                   timeout=10)
        assert err.value.details().startswith("events[1].event")
        assert not stub.RecordEngagement(good, timeout=10).replayed  # the refused batch stored nothing


def test_a_calibration_overrides_the_computed_tier_until_it_ends(server):
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        assert _touch(stub, "vip", "v1").decision == pb.ALLOW
        until = timestamp_pb2.Timestamp(seconds=int(time.time()) + 86_400)
        state = stub.SetEngagementTier(pb.SetEngagementTierRequest(
            user_id="vip", tier="dormant", until=until, reason="reads everything in the shop", actor="amy"), timeout=10)
        assert (state.tier, state.override_tier) == ("dormant", "dormant")
        held = _touch(stub, "vip", "v2")
        assert held.decision == pb.DEFER and list(held.reasons) == [pb.LOW_ENGAGEMENT] and held.tier == "dormant"
        with pytest.raises(grpc.RpcError) as err:
            stub.SetEngagementTier(pb.SetEngagementTierRequest(user_id="vip", tier="asleep", until=until, reason="x",
                                                               actor="amy"), timeout=10)
        assert err.value.details().startswith("tier")
        cleared = stub.SetEngagementTier(pb.SetEngagementTierRequest(user_id="vip", reason="back to normal",
                                                                     actor="amy"), timeout=10)
        assert (cleared.tier, cleared.override_tier) == ("active", "")
        assert _touch(stub, "vip", "v3").decision == pb.ALLOW
        exported = server.cli("user", "export", "vip")
        audit = __import__("json").loads(exported.stdout)["other"]["engagement:audit"]
        assert [(a["actor"], a["new_tier"]) for a in audit] == [("amy", "dormant"), ("amy", "")]


def test_guard_health_shows_exactly_what_was_fed_in(server):
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        for i in range(5):
            assert stub.CheckTouch(pb.CheckTouchRequest(
                user_id=f"u{i}", channel="email", category="promotion", touch_id=f"s{i}", campaign_id="spring",
                strategy_id="winback"), timeout=10).recorded
        assert _touch(stub, "x1", "other").recorded
        stub.RecordEngagements(pb.RecordEngagementsRequest(events=[
            Kind(touch_id="s0", user_id="u0", event=Kind.DELIVERED), Kind(touch_id="s0", user_id="u0", event=Kind.OPENED),
            Kind(touch_id="s1", user_id="u1", event=Kind.CLICKED),
            Kind(touch_id="s2", user_id="u2", event=Kind.SPAM_COMPLAINT, provider="sendgrid"),
            Kind(touch_id="s3", user_id="u3", event=Kind.UNSUBSCRIBED, provider="sendgrid")]), timeout=30)
        stub.RecordReply(pb.RecordReplyRequest(user_id="u4", channel="email", text="别再发了，烦死了，再发就投诉",
                                               reply_id="r1", in_reply_to_touch_id="s4"), timeout=30)
    out = server.cli("health", "--window", "24h", "--json")
    assert out.returncode == 0, out.stderr
    data = __import__("json").loads(out.stdout)
    spring = next(i for i in data["ranked"] if i["campaign_id"] == "spring")
    f = spring["figures"]
    assert {k: int(f[k]) for k in ("touches", "deliveries", "opens", "clicks", "spam_complaints", "list_unsubscribes",
                                   "replies", "negative_replies", "tasks_opened")} == {
        "touches": 5, "deliveries": 1, "opens": 1, "clicks": 1, "spam_complaints": 1, "list_unsubscribes": 1,
        "replies": 1, "negative_replies": 1, "tasks_opened": 2}
    assert spring["rates"]["complaint_rate"] == 0.2 and spring["fatigue_index"] > 0
    assert [i["campaign_id"] for i in data["ranked"]] == ["spring", "spring-other"]  # most fatigued first
    assert int(data["experience"]["figures"]["touches"]) == 6
    table = server.cli("health", "--window", "24h")
    lines = table.stdout.splitlines()
    assert lines[0] == "Experience health, last 24h"
    row = next(line for line in lines if line.startswith("spring "))
    assert row.split()[:2] == ["spring", "5"] and "1 (20.00%)" in row
    strategies = server.cli("health", "--window", "24h", "--strategies", "--json")
    assert [i["strategy_id"] for i in __import__("json").loads(strategies.stdout)["ranked"]] == ["winback"]


def test_the_best_hour_over_grpc_and_the_command_line(server, clock):
    """Opens a week ago, five hours later in the day than now: a BEST_HOUR touch waits (BEST_TIME) until that hour,
    GetUserState shows the hour, the touch goes when it comes back then; a class without best_time is refused."""
    hour = 3_600_000
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        opened_ms = clock() + 5 * hour - 7 * 24 * hour
        opened = timestamp_pb2.Timestamp(seconds=opened_ms // 1000)
        done = stub.RecordEngagements(pb.RecordEngagementsRequest(events=[
            Kind(touch_id=f"w{i}", user_id="u5", event=Kind.OPENED, occurred_at=opened, channel="email")
            for i in range(8)]), timeout=10)
        assert len(done.results) == 8
        state = stub.GetUserState(pb.GetUserStateRequest(user_id="u5"), timeout=10).engagement
        slot = (opened_ms // hour + 72) % 168
        assert [h.hour_of_week for h in state.interaction_hours] == [slot] and 6 < state.interactions < 8
        ask = pb.CheckTouchRequest(user_id="u5", channel="push", category="promotion", touch_id="b1",
                                   timing=pb.BEST_HOUR)
        waits = stub.CheckTouch(ask, timeout=10)
        wait_ms = waits.retry_after.seconds * 1000 + waits.retry_after.nanos // 1_000_000
        assert waits.decision == pb.DEFER and list(waits.reasons) == [pb.BEST_TIME] and 4 * hour < wait_ms <= 5 * hour
        assert (_ms(waits.evaluated_at) + wait_ms) % hour == 0  # the start of the hour
        clock.advance(wait_ms)
        goes = stub.CheckTouch(ask, timeout=10)
        assert goes.decision == pb.ALLOW and goes.recorded
        with pytest.raises(grpc.RpcError) as refused:
            stub.CheckTouch(pb.CheckTouchRequest(user_id="u5", channel="email", category="service", touch_id="r1",
                                                 touch_class=pb.TRANSACTIONAL, timing=pb.BEST_HOUR), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("timing: ")
    now_is_it = server.cli("check", "u5", "push", "promotion", "--timing", "BEST_HOUR", "--json")
    assert now_is_it.returncode == 0 and json.loads(now_is_it.stdout)["decision"] == "ALLOW", now_is_it.stderr
