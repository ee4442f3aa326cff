"""Campaign, strategy and experience health from what the calls stored: exact figures, the index, the trend."""

from __future__ import annotations

import dataclasses

from guard.domain.fatigue import Figures, index
from guard.usecases.engagement import Event
from tests.helpers import touch

HOUR = 3_600_000
DAY = 24 * HOUR


async def test_figures_and_the_fatigue_index_of_a_campaign_and_its_strategy(wired):
    parts, _, clock = wired
    for i in range(6):
        t = dataclasses.replace(touch(user=f"u{i}", touch_id=f"t{i}", campaign="spring",
                                      channel="email" if i < 2 else "push"), strategy_id="winback")
        assert (await parts.service.check(t)).recorded
    await parts.engagement.record(Event("t0", "u0", "OPENED"))
    await parts.engagement.record(Event("t0", "u0", "CLICKED"))  # the same touch: interacted once
    await parts.engagement.record(Event("t1", "u1", "SPAM_COMPLAINT", provider="sendgrid"))  # not an interaction
    await parts.replies.record("u2", "push", "TD", "r-stop", in_reply_to="t2")  # a keyword opt-out: a reply
    angry = await parts.replies.record("u3", "push", "别再发了，烦死了，再发就投诉", "r-angry", in_reply_to="t3")
    assert angry.action == "hold"
    clock.advance(4 * DAY)  # every touch's ignore verdict is due: t0, t2 and t3 had an answer, three did not
    health = await parts.health.campaign("spring", "", "7d")
    f = health.figures
    assert (f.touches, f.opens, f.clicks, f.spam_complaints, f.opt_outs, f.replies, f.negative_replies) == (
        6, 1, 1, 1, 1, 2, 1)
    assert (f.judged, f.interacted, f.ignored, f.tasks_opened) == (6, 3, 3, 2)  # the complaint and the angry reply
    assert health.fatigue_index == index(f) > 0 and health.previous_index == 0
    assert health.trend == health.fatigue_index
    strategy = await parts.health.campaign("", "winback", "7d")
    g = strategy.figures
    assert (g.touches, g.judged, g.interacted, g.replies, g.negative_replies, g.opt_outs, g.spam_complaints,
            g.tasks_opened) == (6, 6, 3, 2, 1, 1, 1, 2)
    # The 24-hour window four days on holds none of it: everything happened earlier.
    assert (await parts.health.campaign("spring", "", "24h")).figures == Figures()
    # A week on, the same figures are the previous window's: the trend turns down.
    clock.advance(7 * DAY)
    later = await parts.health.campaign("spring", "", "7d")
    assert later.fatigue_index == 0 and later.previous_index == health.fatigue_index and later.trend < 0


async def test_campaigns_ranked_by_fatigue_and_paged_and_the_experience_health(wired):
    parts = wired[0]
    for c, users in (("calm", 4), ("noisy", 2), ("loud", 3)):
        for i in range(users):
            assert (await parts.service.check(touch(user=f"{c}{i}", touch_id=f"{c}{i}", campaign=c))).recorded
    await parts.engagement.record(Event("noisy0", "noisy0", "SPAM_COMPLAINT", provider="p"))
    await parts.engagement.record(Event("loud0", "loud0", "UNSUBSCRIBED", provider="p"))
    first, token = await parts.health.ranked(False, "24h", 2, "")
    assert [h.name for h in first] == ["noisy", "loud"] and token == "2"
    rest, token = await parts.health.ranked(False, "24h", 2, token)
    assert [h.name for h in rest] == ["calm"] and token == ""
    task = (await parts.replies.desk.list_tasks("", 10, ""))[0][0]
    await parts.replies.desk.claim(task.task_id, "amy", "k-amy")
    await parts.replies.desk.resolve(task.task_id, "amy", "k-amy", "RECOVERED", "called", True)
    tenant = await parts.health.experience("24h")
    f = tenant.figures
    assert (f.touches, f.spam_complaints, f.list_unsubscribes, f.tasks_opened, f.tasks_resolved,
            f.tasks_resolved_in_sla, f.tasks_recovered) == (9, 1, 1, 1, 1, 1, 1)


async def test_rates_count_people_and_one_touch_is_too_little_to_rank_first(wired):
    """Three negative replies to one touch once read as a 300% negative-reply rate and an index of 25 that topped
    the ranking. Rates count users (at most 100%); below fatigue.min_touches the health says too few touches;
    the ranking orders by the index over each rate's lower confidence bound."""
    parts = wired[0]
    assert (await parts.service.check(touch(user="u1", touch_id="t1", campaign="unlucky"))).recorded
    for i in range(3):
        reply = await parts.replies.record("u1", "push", "别再发了，烦死了，再发就投诉", f"r{i}", in_reply_to="t1")
        assert reply.label == "NEGATIVE"
    for i in range(60):
        assert (await parts.service.check(touch(user=f"n{i}", touch_id=f"n{i}", campaign="noisy"))).recorded
    for i in range(6):
        await parts.engagement.record(Event(f"n{i}", f"n{i}", "SPAM_COMPLAINT", provider="p"))
    unlucky = await parts.health.campaign("unlucky", "", "7d")
    assert unlucky.figures.negative_replies == 1 and unlucky.rates["negative_reply_rate"] == 1.0
    assert all(0.0 <= r <= 1.0 for r in unlucky.rates.values())
    assert not unlucky.enough and (await parts.health.campaign("noisy", "", "7d")).enough
    ranked, _ = await parts.health.ranked(False, "7d", 10, "")
    assert [h.name for h in ranked] == ["noisy", "unlucky"]  # 6 complaints in 60 touches are surer than 1 in 1
