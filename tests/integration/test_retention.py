"""Retention: a reply's words go after replies.retention (its score and label stay); a resolved task goes
after recovery.retention (an open one stays)."""

from __future__ import annotations

DAY = 86_400_000


async def test_words_go_after_their_retention_and_scores_stay(loop_parts, store):
    _, feedback, _, clock = loop_parts
    old = await feedback.record("u1", "sms", "别再发了，烦死了，再发投诉", "r-old")
    clock.advance(60 * DAY)
    await feedback.record("u1", "sms", "谢谢，收到了", "r-new")
    assert (await feedback.retain(), await feedback.desk.retain()) == (0, 0)
    clock.advance(31 * DAY)  # the first is 91 days old, the second 31
    assert (await feedback.retain(), await feedback.desk.retain()) == (1, 0)
    keys = feedback.guard.keys("u1")
    first = await feedback.store.reply(keys, "r-old")
    assert "text" not in first and first["label"] == old.label and float(first["negative"]) == old.negative
    assert (await feedback.store.reply(keys, "r-new"))["text"] == "谢谢，收到了"
    assert (await feedback.retain(), await feedback.desk.retain()) == (0, 0)  # done once
    # A retried reply_id whose words are gone replays its answer.
    again = await feedback.record("u1", "sms", "别再发了，烦死了，再发投诉", "r-old")
    assert again.replayed and again.label == old.label


async def test_resolved_tasks_go_after_their_retention_and_open_ones_stay(loop_parts, store):
    _, feedback, _, clock = loop_parts
    closed = await feedback.record("u1", "sms", "垃圾短信，烦死了，再发就投诉", "r1")
    await feedback.desk.claim(closed.task_id, "amy", "k-amy")
    await feedback.desk.resolve(closed.task_id, "amy", "k-amy", "RECOVERED", "called", True)
    still_open = await feedback.record("u2", "sms", "垃圾短信，烦死了，再发就投诉", "r2")
    clock.advance(181 * DAY)
    texts, tasks = await feedback.retain(), await feedback.desk.retain()
    assert tasks == 1 and texts == 2
    assert await feedback.desk.store.task(closed.task_id) == {}
    listed = [t.task_id for t in (await feedback.desk.list_tasks("", 50, ""))[0]]
    assert listed == [still_open.task_id]
    stream = feedback.desk.store.tenant.task_stream
    assert await store.client.xlen(stream) == 1
