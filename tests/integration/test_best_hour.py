"""The user's own best hour on real Redis: the profile the engagement script keeps is the one its specification
(``guard.domain.timing.add``) computes, and CheckTouch with timing BEST_HOUR waits for the hour, keeps the hour it
named, respects quiet hours and refuses a class that does not offer it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import policy
from guard.domain import timing
from guard.domain.timing import HOUR_MS
from guard.domain.types import Reason, Touch, TouchClass, Verdict
from guard.errors import InvalidArgument
from guard.usecases.engagement import Event
from guard.usecases.tenants import Services, wire
from tests.helpers import FakeClock, ms

MONDAY = ms(2026, 11, 23)  # 00:00 UTC; the shipped quiet hours (21:00-08:00 in Shanghai) are 13:00-24:00 UTC
DAY = 24 * HOUR_MS


def _wired(store: Any, now: int, pol: policy.Policy | None = None) -> tuple[Services, FakeClock]:
    clock = FakeClock(now)
    return wire(pol or policy.load(None), store, None, now=clock), clock


def _best(user: str, touch_id: str, at: int, touch_class: TouchClass = TouchClass.MARKETING) -> Touch:
    return Touch(user, "push", "promotion", "", touch_id, touch_class, False, at, timing="best_hour")


interactions = st.lists(st.tuples(
    st.integers(0, 60 * 24 * 40),  # minutes after the start: forty days, so the weights fade
    st.sampled_from(["OPENED", "CLICKED", "CONVERTED", "DELIVERED"]),
    st.integers(0, 9),  # which touch (some touches are opened and clicked: one interaction)
    st.booleans(),  # a touch guard recorded, or one it never saw
), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=interactions)
async def test_the_script_keeps_the_profile_its_specification_computes(store, events):
    """Random interactions, some late and some twice on one touch: the stored profile is the fold of ``add`` over
    each touch's first interaction, to the digit (only the heaviest hours kept)."""
    await store.client.flushdb()
    small = timing.TimingPolicy(5, 14 * DAY, 6)  # few hours kept, so the pruning is reached
    parts, clock = _wired(store, MONDAY + 41 * DAY, dataclasses.replace(policy.load(None), timing=small))
    for n in range(10):
        await parts.service.check(Touch("u1", "push", "promotion", "", f"known{n}", TouchClass.TRANSACTIONAL, False,
                                        clock.now_ms))
    expected, counted = timing.EMPTY, set()
    for minute, kind, n, known in events:
        touch_id = f"known{n}" if known else f"stray{n}"
        at = MONDAY + minute * 60_000
        await parts.engagement.record(Event(touch_id, "u1", kind, at, channel="push"))
        if kind != "DELIVERED" and touch_id not in counted:
            counted.add(touch_id)
            expected = timing.add(expected, at, small)
    stored = await store.client.hget(parts.service.keys("u1").engagement, "hours")
    assert (stored or "") == (timing.encode(expected) if counted else "")


async def test_a_touch_waits_for_the_best_hour_and_goes_when_it_comes_back_at_it(store):
    """From 02:00 the best hour in view is 05:00; at 05:00 Tuesday's 03:00 (heavier) comes into view: a new touch
    waits for it, the touch told 05:00 goes at 05:00 (no chase)."""
    parts, clock = _wired(store, MONDAY + 2 * HOUR_MS)
    profile = timing.Profile(MONDAY, 20.0, {5: 5.0, 24 + 3: 9.0, 1: 2.0})
    await store.client.hset(parts.service.keys("u1").engagement, "hours", timing.encode(profile))
    told = await parts.service.check(_best("u1", "t1", 0))
    assert (told.verdict, told.reasons, told.retry_at_ms, told.recorded) == (
        Verdict.DEFER, (Reason.BEST_TIME,), MONDAY + 5 * HOUR_MS, False)
    again = await parts.service.check(_best("u1", "t1", 0))  # asked again early: the same hour, nothing recorded
    assert (again.verdict, again.retry_at_ms) == (Verdict.DEFER, MONDAY + 5 * HOUR_MS)
    clock.now_ms = MONDAY + 5 * HOUR_MS
    other = await parts.service.check(_best("u1", "t2", 0))
    assert (other.verdict, other.retry_at_ms) == (Verdict.DEFER, MONDAY + DAY + 3 * HOUR_MS)
    went = await parts.service.check(_best("u1", "t1", 0))
    assert (went.verdict, went.reasons, went.recorded) == (Verdict.ALLOW, (), True)
    # A touch only told its hour is not one guard sent: an open of t2 is an unknown touch's
    assert not (await parts.engagement.record(Event("t2", "u1", "OPENED", channel="push"))).touch_known
    assert (await parts.engagement.record(Event("t1", "u1", "OPENED"))).touch_known


async def test_the_best_hour_is_never_in_quiet_hours_and_a_thin_history_sends_now(store):
    parts, _ = _wired(store, MONDAY + 2 * HOUR_MS)
    keys = parts.service.keys("u1")
    await store.client.hset(keys.engagement, "hours", timing.encode(timing.Profile(MONDAY, 30.0, {15: 20.0, 6: 5.0})))
    quiet_aside = await parts.service.check(_best("u1", "t1", 0))  # 15:00 UTC is 23:00 in Shanghai: quiet
    assert (quiet_aside.verdict, quiet_aside.retry_at_ms) == (Verdict.DEFER, MONDAY + 6 * HOUR_MS)
    await store.client.hset(keys.engagement, "hours", timing.encode(timing.Profile(MONDAY, 4.0, {6: 4.0})))
    thin = await parts.service.check(_best("u1", "t2", 0))  # fewer than timing.min_interactions (5)
    assert (thin.verdict, thin.recorded) == (Verdict.ALLOW, True)
    asked_in_a_dry_run = await parts.service.check(Touch("u2", "push", "promotion", "", "", TouchClass.MARKETING, True,
                                                         0, timing="best_hour"))
    assert asked_in_a_dry_run.verdict is Verdict.ALLOW  # no history at all


async def test_learned_from_opens_and_shown_in_the_state(store):
    """Eight touches opened a week ago at 06:20 UTC: on Monday at 02:00 the touch waits for 06:00."""
    parts, _ = _wired(store, MONDAY + 2 * HOUR_MS)
    opened = MONDAY - 7 * DAY + 6 * HOUR_MS + 20 * 60_000
    for n in range(8):
        await parts.engagement.record(Event(f"old{n}", "u1", "OPENED", opened, channel="email"))
    state = await parts.engagement.state("u1")
    now_worth = round(8 * 2 ** (-(MONDAY + 2 * HOUR_MS - opened) / (28 * DAY)), 4)  # the shipped half-life: 28 days
    assert state.hours == ((6, now_worth),) and state.interactions == now_worth
    waited = await parts.service.check(_best("u1", "t1", 0))
    assert (waited.verdict, waited.reasons, waited.retry_at_ms) == (Verdict.DEFER, (Reason.BEST_TIME,),
                                                                   MONDAY + 6 * HOUR_MS)


async def test_a_class_that_does_not_offer_the_best_hour_is_refused_and_nothing_is_stored(store):
    parts, _ = _wired(store, MONDAY + 2 * HOUR_MS)
    with pytest.raises(InvalidArgument) as err:
        await parts.service.check(_best("u1", "t1", 0, TouchClass.TRANSACTIONAL))
    assert err.value.field == "timing" and "classes.transactional.checks" in str(err.value)
    with pytest.raises(InvalidArgument) as batched:
        await parts.service.check_many([_best("u1", "t1", 0), _best("u1", "t2", 0, TouchClass.SERVICE)])
    assert batched.value.field == "checks[1].timing"
    assert await store.client.dbsize() == 0
