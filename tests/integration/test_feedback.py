"""The feedback loop on real Redis with the real bundled model behind the batcher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from guard.domain.types import DAY_MS, Reason, TouchClass, Verdict
from guard.errors import PreconditionFailed
from guard.usecases.checks import GuardService
from guard.usecases.desk import RecoveryTask
from guard.usecases.replies import ReplyService
from tests.helpers import ms, touch

NOON = ms(2026, 11, 23, 12, 0, "Asia/Shanghai")


async def test_complaint_holds_marketing_and_opens_one_task(loop_parts):
    guard, feedback, _, _ = loop_parts
    await guard.check(touch(touch_id="t1", campaign="spring"))
    first = await feedback.record("u1", "sms", "别再发了，烦死了", "r1", in_reply_to="t1")
    assert (first.label, first.action, first.campaign_id) == ("NEGATIVE", "hold", "spring") and first.task_id
    second = await feedback.record("u1", "sms", "Stop spamming me, I will report you", "r2")
    assert second.action == "hold" and second.task_id == first.task_id  # appended, not a second task
    task = await feedback.desk.get_task(first.task_id)
    assert [r.reply_id for r in task.replies] == ["r1", "r2"] and task.status == "OPEN"
    blocked = await guard.check(touch(touch_id="t2"))
    assert blocked.verdict is Verdict.BLOCK and blocked.reasons == (Reason.NEGATIVE_SENTIMENT,)
    assert blocked.retry_at_ms == NOON + 7 * DAY_MS
    otp = await guard.check(touch(touch_id="otp", touch_class=TouchClass.TRANSACTIONAL))
    assert otp.verdict is Verdict.ALLOW
    counters = await feedback.campaign_health("spring")
    # The second reply goes to the last touch, "spring"; the first answered t1 (an interaction with it). Both are
    # negative, but from one user: the negative-reply figure counts people (a rate of them never passes 100%).
    assert counters == {"touches": 1, "replies": 2, "negative_replies": 1, "interacted": 1, "tasks_opened": 1}
    await feedback.record("u1", "sms", "退订", "r3")
    assert (await feedback.campaign_health("spring"))["opt_outs"] == 1


async def test_resolving_with_lift_hold_lets_marketing_through(loop_parts):
    guard, feedback, _, _ = loop_parts
    reply = await feedback.record("u1", "push", "太差了，我要投诉你们", "r1")
    task = await feedback.desk.get_task(reply.task_id)
    assert task.priority == "P1"
    await feedback.desk.claim(reply.task_id, "agent-a", "k-agent-a")
    with pytest.raises(PreconditionFailed):
        await feedback.desk.claim(reply.task_id, "agent-b", "k-agent-b")
    done = await feedback.desk.resolve(reply.task_id, "agent-a", "k-agent-a", "RECOVERED", "called the user", lift_hold=True)
    assert (done.status, done.outcome, done.assignee) == ("RESOLVED", "RECOVERED", "agent-a")
    assert (await guard.check(touch(touch_id="t1"))).verdict is Verdict.ALLOW
    again = await feedback.record("u1", "push", "still terrible, stop texting me", "r2")
    assert again.task_id and again.task_id != reply.task_id  # a new task once the old one is closed


async def test_opt_out_keywords_close_the_channel_without_a_task(loop_parts):
    guard, feedback, _, _ = loop_parts
    for reply_id, channel, text in [("k1", "sms", "退订"), ("k2", "email", "STOP")]:
        result = await feedback.record("u1", channel, text, reply_id)
        assert result.action == "opt_out" and result.task_id == ""
    prefs = await feedback.preferences.get_preferences("u1")
    assert prefs.channels == {"sms": False, "email": False}
    events, _ = await feedback.preferences.consent_events("u1")
    assert {e.source for e in events} == {"keyword"}
    closed = await guard.check(touch(touch_id="m1", channel="sms"))
    assert closed.verdict is Verdict.BLOCK and closed.reasons == (Reason.CHANNEL_OPTED_OUT,)
    kept = await feedback.record("u1", "push", "Don't stop the deals!", "k3")
    assert kept.action == "none"
    assert (await feedback.record("u1", "sms", "START", "k4")).action == "opt_in"
    assert (await feedback.preferences.get_preferences("u1")).channels == {"sms": True, "email": False}


async def test_a_reply_recorded_while_the_model_fails_is_scored_later(loop_parts):
    guard, feedback, scorer, _ = loop_parts
    scorer.broken = True
    result = await feedback.record("u1", "wecom", "别再发了，烦死了", "r1")
    assert result.label == "UNSCORED" and result.action == "none"
    pending = await guard.check(touch(touch_id="t1"))
    assert pending.verdict is Verdict.DEFER and Reason.SENTIMENT_PENDING in pending.reasons
    assert not pending.recorded
    scorer.broken = False
    assert await feedback.sweep() == 1
    replay = await feedback.record("u1", "wecom", "别再发了，烦死了", "r1")
    assert replay.replayed and replay.label == "NEGATIVE" and replay.action == "hold" and replay.task_id
    held = await guard.check(touch(touch_id="t1"))
    assert held.verdict is Verdict.BLOCK and held.reasons == (Reason.NEGATIVE_SENTIMENT,)


async def test_check_touch_scores_pending_replies_before_deciding(loop_parts):
    guard, feedback, scorer, _ = loop_parts
    scorer.broken = True
    await feedback.record("u1", "push", "谢谢，很喜欢", "r1")
    scorer.broken = False
    out = await guard.check(touch(touch_id="t1"))  # scores the pending positive reply, then allows
    assert out.verdict is Verdict.ALLOW and out.recorded


async def test_concurrent_duplicates_of_one_reply_open_one_task(loop_parts):
    _, feedback, _, _ = loop_parts
    results = await asyncio.gather(*(feedback.record("u1", "sms", "垃圾短信，再发就投诉", "same") for _ in range(5)))
    tasks = {r.task_id for r in results}
    assert len(tasks) == 1 and "" not in tasks
    listed, _ = await feedback.desk.list_tasks("", 50, "")
    assert len(listed) == 1


async def test_bad_reply_input_names_the_field(loop_parts):
    from guard.errors import InvalidArgument

    _, feedback, _, _ = loop_parts
    for kwargs, field in [({"reply_id": ""}, "reply_id"), ({"channel": "fax"}, "channel"),
                          ({"text": "x" * 2001}, "text"), ({"user_id": "a b"}, "user_id")]:
        args = {"user_id": "u1", "channel": "sms", "text": "hi", "reply_id": "r"} | kwargs
        with pytest.raises(InvalidArgument) as err:
            await feedback.record(**args)
        assert err.value.field == field
    assert await feedback.store.client.keys("*reply*") == []


async def test_a_complaint_about_a_touch_to_a_high_value_user_is_p1(loop_parts):
    guard, feedback, _, _ = loop_parts
    import dataclasses

    await guard.check(dataclasses.replace(touch(touch_id="vip-touch", campaign="gold"), high_value=True))
    vip = await feedback.record("u1", "push", "太差了，别再发了", "r1", in_reply_to="vip-touch")
    assert (await feedback.desk.get_task(vip.task_id)).priority == "P1"
    plain = await feedback.record("u2", "push", "太差了，别再发了", "r2")
    assert (await feedback.desk.get_task(plain.task_id)).priority in ("P2", "P3")


async def _first(tasks: AsyncIterator[RecoveryTask], n: int) -> AsyncIterator[RecoveryTask]:
    """The first ``n`` tasks a watcher receives, waiting at most a few seconds for them."""
    async with asyncio.timeout(5):
        for _ in range(n):
            yield await anext(tasks)


async def _crash_after_the_hold(feedback: ReplyService, guard: GuardService, reply_id: str, task_id: str) -> None:
    """What a process leaves when it dies between holding the user and publishing the task."""
    rp = feedback.policy.replies
    keys = guard.keys("u1")
    applied = await feedback.store.apply_score(keys, reply_id, "NEGATIVE", 0.97, rp.negative_threshold, rp.hold_ms,
                                               task_id, NOON)
    assert applied.action == "hold" and applied.task_id == task_id
    assert await feedback.desk.store.task(task_id) == {}  # the user points at a task nobody has published


async def test_a_task_lost_to_a_crash_is_published_by_the_sweep(loop_parts):
    """Scored and held, then the process died: the reply stays queued, and the sweep files it once."""
    guard, feedback, scorer, _ = loop_parts
    scorer.broken = True
    await feedback.record("u1", "sms", "别再发了，烦死了", "r1")
    await _crash_after_the_hold(feedback, guard, "r1", "task-lost")
    assert await feedback.store.pending(10) == [("u1", "r1")]
    assert await feedback.sweep() == 1
    task = await feedback.desk.get_task("task-lost")
    assert (task.status, task.user_id, [r.reply_id for r in task.replies]) == ("OPEN", "u1", ["r1"])
    assert await feedback.store.pending(10) == []
    assert await feedback.sweep() == 0
    seen = [t.task_id async for t in _first(feedback.desk.watch("amy", block_ms=10), 1)]
    assert seen == ["task-lost"]  # on the desk's stream, where a watcher finds it


async def test_a_reply_after_a_lost_task_opens_it_and_the_first_reply_joins(loop_parts):
    """The next complaint finds the task unpublished, publishes it; the sweep adds the first reply, once."""
    guard, feedback, scorer, _ = loop_parts
    scorer.broken = True
    await feedback.record("u1", "sms", "别再发了，烦死了", "r1")
    await _crash_after_the_hold(feedback, guard, "r1", "task-lost")
    scorer.broken = False
    second = await feedback.record("u1", "sms", "Stop spamming me, I will report you", "r2")
    assert second.task_id == "task-lost"
    assert [r.reply_id for r in (await feedback.desk.get_task("task-lost")).replies] == ["r2"]
    assert await feedback.sweep() == 1
    assert await feedback.sweep() == 0
    assert [r.reply_id for r in (await feedback.desk.get_task("task-lost")).replies] == ["r2", "r1"]
    listed, _ = await feedback.desk.list_tasks("", 50, "")
    assert [t.task_id for t in listed] == ["task-lost"]


async def test_filing_a_reply_twice_lists_it_once(loop_parts):
    """A crash after the task was written but before the queue was cleared: the sweep's second filing adds nothing."""
    _, feedback, _, _ = loop_parts
    reply = await feedback.record("u1", "sms", "别再发了，烦死了", "r1")
    keys = feedback.guard.keys("u1")
    await feedback.store.client.zadd(feedback.store.tenant.pending_replies, {"u1 r1": NOON})  # as if never cleared
    assert await feedback.sweep() == 1
    assert [r.reply_id for r in (await feedback.desk.get_task(reply.task_id)).replies] == ["r1"]
    assert (await feedback.store.reply(keys, "r1"))["task"] == reply.task_id
