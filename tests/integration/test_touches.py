"""CheckTouch on real Redis: atomic caps under races, idempotency, cancel, agreement with the pure core."""

from __future__ import annotations

import asyncio

import pytest

from guard import policy
from guard.domain.types import DAY_MS, Reason, TouchClass, Verdict
from guard.errors import InvalidArgument
from guard.store.redis_store import RedisStore
from guard.usecases.checks import GuardService
from guard.usecases.preferences import PreferencesPatch
from guard.usecases.tenants import wire
from tests.helpers import FakeClock, ms, touch

NOON = ms(2026, 11, 23, 12, 0, "Asia/Shanghai")


def service(store: RedisStore, now: int = NOON) -> tuple[GuardService, FakeClock]:
    clock = FakeClock(now)
    return wire(policy.load(None), store, None, now=clock).service, clock


async def test_fifty_racing_senders_get_exactly_three_allows(store):
    """50 concurrent checks on one user under a cap of 3: exactly 3 ALLOW, all recorded."""
    svc, _ = service(store)
    outs = await asyncio.gather(*(svc.check(touch(touch_id=f"t{i}", campaign=f"c{i}")) for i in range(50)))
    allowed = [o for o in outs if o.verdict is Verdict.ALLOW]
    assert len(allowed) == 3 and all(o.recorded for o in allowed)
    assert all(o.verdict is Verdict.DEFER and o.reasons == (Reason.FREQUENCY_CAP,) for o in outs if not o.recorded)
    state = await svc.user_state("u1")
    assert {c.rule_id: c.used for c in state.caps}["marketing_weekly"] == 3


async def test_same_touch_id_is_counted_once_and_replayed(store):
    svc, _ = service(store)
    first = await svc.check(touch(touch_id="same"))
    again = await svc.check(touch(touch_id="same"))
    assert first.recorded and again.replayed and again.verdict is Verdict.ALLOW
    state = await svc.user_state("u1")
    assert {c.rule_id: c.used for c in state.caps}["marketing_weekly"] == 1


async def test_cancel_gives_the_touch_back_once(store):
    svc, _ = service(store)
    for i in range(3):
        await svc.check(touch(touch_id=f"t{i}"))
    assert (await svc.check(touch(touch_id="t3"))).verdict is Verdict.DEFER
    assert await svc.cancel("u1", "t0") is True
    assert await svc.cancel("u1", "t0") is False
    assert (await svc.check(touch(touch_id="t3"))).verdict is Verdict.ALLOW


async def test_dry_run_records_nothing(store):
    svc, _ = service(store)
    for _ in range(5):
        out = await svc.check(touch(touch_id="", dry_run=True))
        assert out.verdict is Verdict.ALLOW and not out.recorded
    assert (await svc.user_state("u1")).recent_touches == []


async def test_touches_survive_in_the_rolling_window_and_age_out(store):
    svc, clock = service(store)
    for i in range(3):
        await svc.check(touch(touch_id=f"t{i}", campaign=f"c{i}"))
        clock.advance(DAY_MS)
    # The user opened them all (else three ignored touches would make them cooling): the window alone decides.
    await store.client.hset(svc.keys("u1").engagement, "last_int", clock.now_ms)
    out = await svc.check(touch(touch_id="t9"))
    assert out.verdict is Verdict.DEFER and out.retry_at_ms == NOON + 7 * DAY_MS
    clock.now_ms = NOON + 7 * DAY_MS
    assert (await svc.check(touch(touch_id="t9"))).verdict is Verdict.ALLOW


async def test_campaign_and_sms_rules(store):
    svc, _ = service(store)
    assert (await svc.check(touch(touch_id="a", campaign="spring"))).verdict is Verdict.ALLOW
    again = await svc.check(touch(touch_id="b", campaign="spring"))
    assert again.verdict is Verdict.DEFER and any(c.rule_id == "campaign_once_30d" and c.exceeded for c in again.caps)
    assert (await svc.check(touch(touch_id="c", channel="sms"))).verdict is Verdict.ALLOW
    assert (await svc.check(touch(touch_id="d", channel="sms"))).reasons == (Reason.FREQUENCY_CAP,)


async def test_transactional_passes_caps_and_quiet_hours_but_not_a_stopped_sms(store):
    svc, _ = service(store, ms(2026, 11, 23, 23, 0, "Asia/Shanghai"))
    night = await svc.check(touch(touch_id="m"))
    assert night.verdict is Verdict.DEFER and night.reasons == (Reason.QUIET_HOURS,)
    tx = await svc.check(touch(touch_id="otp", channel="sms", touch_class=TouchClass.TRANSACTIONAL))
    assert tx.verdict is Verdict.ALLOW
    # The user closes SMS: for marketing, as an unsubscribe means; the code still comes.
    await svc.preferences.update_preferences("u1", PreferencesPatch(paths=["channels.sms"], channels={"sms": False}),
                                             source="user", actor="self", expected_version=None)
    marketing_only = await svc.check(touch(touch_id="otp1", channel="sms", touch_class=TouchClass.TRANSACTIONAL))
    assert marketing_only.verdict is Verdict.ALLOW
    # A STOP by SMS stops every SMS, as the carrier does.
    await svc.preferences.update_preferences("u1", PreferencesPatch(paths=["channels.sms"], channels={"sms": False}),
                                             source="keyword", actor="reply:r1", expected_version=None)
    closed = await svc.check(touch(touch_id="otp2", channel="sms", touch_class=TouchClass.TRANSACTIONAL))
    assert closed.verdict is Verdict.BLOCK and closed.reasons == (Reason.CHANNEL_OPTED_OUT,)
    push = await svc.check(touch(touch_id="otp3", channel="push", touch_class=TouchClass.TRANSACTIONAL))
    assert push.verdict is Verdict.ALLOW


async def test_bad_input_names_the_field_and_changes_nothing(store):
    svc, _ = service(store)
    await svc.check(touch(touch_id="keep"))
    before = await store.client.keys("*")
    cases = [
        (touch(user=""), "user_id"), (touch(user="x" * 129), "user_id"), (touch(user="a b"), "user_id"),
        (touch(touch_id=""), "touch_id"), (touch(channel="fax"), "channel"), (touch(category="spam"), "category"),
        (touch(at_ms=NOON + 400 * DAY_MS), "send_at"),
    ]
    for bad, field in cases:
        with pytest.raises(InvalidArgument) as err:
            await svc.check(bad)
        assert err.value.field == field
    with pytest.raises(InvalidArgument) as err:
        await svc.check_many([touch(touch_id=f"t{i}") for i in range(1001)])
    assert err.value.field == "checks"
    with pytest.raises(InvalidArgument) as err:
        await svc.check_many([touch(touch_id="ok1"), touch(touch_id="ok2", channel="fax")])
    assert err.value.field == "checks[1].channel"
    assert sorted(await store.client.keys("*")) == sorted(before)


async def test_store_unreachable_follows_the_fail_modes():
    """No Redis: marketing DEFERs (closed), transactional ALLOWs (open); both say STORE_UNAVAILABLE."""
    from guard import metrics
    from guard.store.embedded import free_port

    errors_before = metrics.STORE_ERRORS._value.get()
    dead = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    svc, _ = service(dead)
    marketing = await svc.check(touch(touch_id="m"))
    assert marketing.verdict is Verdict.DEFER and marketing.reasons == (Reason.STORE_UNAVAILABLE,)
    assert marketing.retry_at_ms == NOON + 30_000
    tx = await svc.check(touch(touch_id="t", touch_class=TouchClass.TRANSACTIONAL))
    assert tx.verdict is Verdict.ALLOW and tx.reasons == (Reason.STORE_UNAVAILABLE,) and not tx.recorded
    assert metrics.STORE_ERRORS._value.get() == errors_before + 2  # counted once each, at the store boundary
    await dead.close()


async def test_user_state_counts_cap_usage_as_check_touch_does_with_touches_scheduled_ahead(store):
    """GetUserState's caps once counted only the trailing window up to now, so two touches scheduled for the
    coming days read as 1 of 3 used while CheckTouch (which counts every window holding the touch) refused a
    third. Both now use the same window arithmetic (``decide.window_usage``)."""
    svc, _ = service(store)
    await svc.preferences.update_preferences("u1", PreferencesPatch(paths=["quiet_hours"],
                                                                    quiet_hours=("UTC", "00:00", "00:00")),
                                             source="test", actor="test", expected_version=None)
    assert (await svc.check(touch(touch_id="now", campaign="a"))).recorded
    for day, campaign in ((2, "b"), (4, "c")):  # scheduled ahead (send_at), within the same week
        assert (await svc.check(touch(touch_id=f"d{day}", campaign=campaign, at_ms=NOON + day * DAY_MS))).recorded
    refused = await svc.check(touch(touch_id="more", campaign="d", dry_run=True))
    weekly = next(c for c in refused.caps if c.rule_id == "marketing_weekly")
    state = await svc.user_state("u1")
    shown = next(c for c in state.caps if c.rule_id == "marketing_weekly")
    assert refused.verdict is Verdict.DEFER and weekly.used == 3
    assert (shown.used, shown.exceeded) == (weekly.used, True)
