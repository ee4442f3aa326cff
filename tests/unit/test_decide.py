"""The pure decision core: windows, quiet hours, reasons and the DEFER/BLOCK split."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from guard.domain import clock, decide
from guard.domain.types import DAY_MS, Check, Preferences, QuietHours, Reason, RuleCheck, Verdict
from tests.helpers import ms

WEEK = 7 * DAY_MS
ALL_MARKETING = frozenset({Check.UNSUBSCRIBED, Check.CHANNEL, Check.CATEGORY, Check.PAUSE, Check.HOLD,
                           Check.QUIET_HOURS, Check.CAPS})
SHANGHAI_QUIET = QuietHours("Asia/Shanghai", 21 * 60, 8 * 60)
NOON_SHANGHAI = ms(2026, 11, 23, 12, 0, "Asia/Shanghai")


def facts(at: int = NOON_SHANGHAI, events: dict[tuple[str, str], list[int]] | None = None, prefs: Preferences | None = None,
          checks: frozenset[Check] = ALL_MARKETING, rules: list[RuleCheck] | None = None,
          hold: int = 0, channel: str = "push") -> decide.Facts:
    return decide.Facts(
        at_ms=at, checks=checks, channel=channel, category="promotion", channel_default=True,
        category_default=True, channel_scope_before="all" if channel == "sms" else "marketing", prefs=prefs or Preferences(),
        hold_until_ms=hold, default_quiet=SHANGHAI_QUIET,
        rules=rules if rules is not None else [RuleCheck("weekly", "", 3, WEEK)],
        events=events or {},
    )


def test_window_usage_counts_the_fullest_window_holding_the_instant():
    """Touches after the instant (scheduled ones) count when a window holds both."""
    assert decide.window_usage([0, 10, 20], 25, 100) == 3
    assert decide.window_usage([0, 10, 20], 100, 100) == 2  # 0 left the window [1, 101)
    assert decide.window_usage([150], 100, 100) == 1  # a later touch in [100, 200)
    assert decide.window_usage([250], 100, 100) == 0


def test_cap_defers_until_the_oldest_touch_leaves_the_window():
    """The 4th marketing touch in 7 days is DEFERred to the moment the first one ages out."""
    base = NOON_SHANGHAI
    out = decide.decide(facts(events={("weekly", ""): [base - 3 * DAY_MS, base - 2 * DAY_MS, base - DAY_MS]}))
    assert out.verdict is Verdict.DEFER
    assert out.reasons == (Reason.FREQUENCY_CAP,)
    assert out.retry_at_ms == base - 3 * DAY_MS + WEEK
    assert out.caps[0].used == 3 and out.caps[0].exceeded


def test_shadow_rule_reports_but_never_blocks():
    """A shadow rule is counted and shows as exceeded, yet the touch is allowed."""
    rule = RuleCheck("new", "", 1, DAY_MS, shadow=True)
    out = decide.decide(facts(rules=[rule], events={("new", ""): [NOON_SHANGHAI - 1000]}))
    assert out.verdict is Verdict.ALLOW
    assert out.caps[0].shadow and out.caps[0].exceeded


def test_quiet_hours_cross_midnight_in_shanghai():
    """23:00 and 03:00 local are quiet; the retry is 08:00 local."""
    late = ms(2026, 11, 23, 23, 0, "Asia/Shanghai")
    out = decide.decide(facts(at=late))
    assert out.verdict is Verdict.DEFER and out.reasons == (Reason.QUIET_HOURS,)
    assert out.retry_at_ms == ms(2026, 11, 24, 8, 0, "Asia/Shanghai")
    early = ms(2026, 11, 24, 3, 0, "Asia/Shanghai")
    assert decide.decide(facts(at=early)).retry_at_ms == ms(2026, 11, 24, 8, 0, "Asia/Shanghai")
    assert decide.decide(facts(at=ms(2026, 11, 24, 8, 0, "Asia/Shanghai"))).verdict is Verdict.ALLOW


def test_quiet_hours_on_the_us_spring_forward_day():
    """New York skips 02:00–03:00 on 2026-03-08: quiet 22:00–02:30 ends at 03:30 EDT, the first real instant."""
    prefs = Preferences(quiet_hours=QuietHours("America/New_York", 22 * 60, 2 * 60 + 30))
    at = ms(2026, 3, 8, 1, 0, "America/New_York")
    out = decide.decide(facts(at=at, prefs=prefs))
    assert out.verdict is Verdict.DEFER
    segs = clock.segments_for("America/New_York", out.retry_at_ms or 0)
    assert not clock.in_quiet_hours(prefs.quiet_hours, segs, out.retry_at_ms or 0)  # type: ignore[arg-type]
    assert out.retry_at_ms == ms(2026, 3, 8, 7, 30)  # 03:30 EDT


def test_quiet_hours_on_the_eu_fall_back_day():
    """Berlin repeats 02:00–03:00 on 2026-10-25: 21:00–08:00 still ends at 08:00 CET."""
    at = ms(2026, 10, 25, 1, 30, "UTC")  # 02:30 CET (second pass)
    prefs = Preferences(quiet_hours=QuietHours("Europe/Berlin", 21 * 60, 8 * 60))
    out = decide.decide(facts(at=at, prefs=prefs))
    assert out.retry_at_ms == ms(2026, 10, 25, 7, 0)  # 08:00 CET = 07:00 UTC


def test_opt_outs_block_and_pause_defers():
    """Closed channel / category / unsubscribe BLOCK; a pause DEFERs to its end."""
    prefs = Preferences(channels={"push": False})
    assert decide.decide(facts(prefs=prefs)).reasons == (Reason.CHANNEL_OPTED_OUT,)
    assert decide.decide(facts(prefs=Preferences(categories={"promotion": False}))).verdict is Verdict.BLOCK
    assert decide.decide(facts(prefs=Preferences(unsubscribed_all=True))).reasons == (Reason.UNSUBSCRIBED,)
    paused = decide.decide(facts(prefs=Preferences(paused_until_ms=NOON_SHANGHAI + DAY_MS)))
    assert paused.verdict is Verdict.DEFER and paused.retry_at_ms == NOON_SHANGHAI + DAY_MS


def test_retry_moves_past_quiet_hours_that_a_cap_retry_lands_in():
    """A cap frees at 23:00 local, inside quiet hours: the answer is 08:00 the next morning."""
    at = NOON_SHANGHAI
    oldest = ms(2026, 11, 16, 23, 0, "Asia/Shanghai")
    out = decide.decide(facts(at=at, rules=[RuleCheck("weekly", "", 1, WEEK)], events={("weekly", ""): [oldest]}))
    assert out.retry_at_ms == ms(2026, 11, 24, 8, 0, "Asia/Shanghai")


def test_transactional_passes_everything_but_a_channel_closed_by_law():
    """Transactional ignores caps, quiet hours, holds and push opt-outs, but not a closed SMS channel."""
    late = ms(2026, 11, 23, 23, 0, "Asia/Shanghai")
    tx = frozenset({Check.STOPPED_CHANNEL})
    full = {("weekly", ""): [late - 1, late - 2, late - 3]}
    assert decide.decide(facts(at=late, checks=tx, events=full, hold=late + DAY_MS,
                               prefs=Preferences(channels={"push": False}))).verdict is Verdict.ALLOW
    sms = decide.decide(facts(at=late, checks=tx, channel="sms", prefs=Preferences(channels={"sms": False})))
    assert sms.verdict is Verdict.BLOCK and sms.reasons == (Reason.CHANNEL_OPTED_OUT,)


def test_hold_blocks_with_retry_at_its_end():
    out = decide.decide(facts(hold=NOON_SHANGHAI + 3 * DAY_MS))
    assert out.verdict is Verdict.BLOCK and out.reasons == (Reason.NEGATIVE_SENTIMENT,)
    assert out.retry_at_ms == NOON_SHANGHAI + 3 * DAY_MS


def test_user_weekly_maximum_applies_only_when_set():
    rule = decide.user_rule(Preferences(max_marketing_per_week=1))
    out = decide.decide(facts(rules=[rule], events={rule.counter: [NOON_SHANGHAI - DAY_MS]}))
    assert out.reasons == (Reason.FREQUENCY_CAP,)
    unset = decide.user_rule(Preferences())
    assert decide.decide(facts(rules=[unset], events={unset.counter: [NOON_SHANGHAI - DAY_MS] * 5})).verdict is Verdict.ALLOW


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30 * DAY_MS), min_size=1, max_size=60),
       st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=10))
def test_no_window_ever_holds_more_than_the_limit(attempts, limit, window_days):
    """Whatever the order of attempts (scheduled ones too), recorded touches never overfill any window, and a
    DEFER's retry_at is the first moment the touch passes."""
    window = window_days * DAY_MS
    rule = RuleCheck("r", "", limit, window)
    recorded: list[int] = []
    base = facts(checks=frozenset({Check.CAPS}), rules=[rule])
    for at in attempts:
        out = decide.decide(dataclasses.replace(base, at_ms=at, events={("r", ""): recorded}))
        if out.verdict is Verdict.ALLOW:
            recorded.append(at)
        elif out.retry_at_ms is not None:
            # The answer is exact: the same touch passes at retry_at, and not a moment before it.
            assert out.retry_at_ms > at
            then = dataclasses.replace(base, at_ms=out.retry_at_ms, events={("r", ""): recorded})
            before = dataclasses.replace(base, at_ms=out.retry_at_ms - 1, events={("r", ""): recorded})
            assert decide.decide(then).verdict is Verdict.ALLOW
            assert decide.decide(before).verdict is not Verdict.ALLOW
    recorded.sort()
    for start in recorded:
        assert sum(1 for e in recorded if start <= e < start + window) <= limit
