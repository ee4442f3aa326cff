"""The best hour's pure rules: the hours profile (what the engagement script writes) and the choice (what the
check script decides); their agreement with the scripts is held in ``tests/integration``."""

from __future__ import annotations

import pytest
import yaml

from guard import policy
from guard.domain import timing
from guard.domain.timing import HOUR_MS, Profile, TimingPolicy
from guard.errors import InvalidArgument
from guard.transport.mapping import touch_from_pb
from guard.v1 import guard_pb2 as pb
from tests.helpers import ms

MONDAY = ms(2026, 11, 23)  # 00:00 UTC, a Monday
POLICY = TimingPolicy(min_interactions=3, half_life_ms=7 * 24 * HOUR_MS, profile_hours=4)


def test_the_hours_of_the_week_start_on_monday_at_midnight_utc():
    assert timing.hour_of_week(MONDAY) == 0
    assert timing.hour_of_week(MONDAY + 13 * HOUR_MS + 59 * 60_000) == 13
    assert timing.hour_of_week(MONDAY - 1) == 167  # Sunday 23:59
    assert timing.hour_of_week(MONDAY + 7 * 24 * HOUR_MS) == 0


def test_a_profile_reads_back_as_written_and_a_damaged_one_as_empty():
    p = Profile(MONDAY, 12.5, {3: 1.25, 160: 7.0})
    assert timing.parse(timing.encode(p)) == p
    assert timing.encode(p) == f"{MONDAY}|12.5000|3:1.2500,160:7.0000"
    for damaged in ("", None, "x|y|z", "1|2", "5|1.0|3:x"):
        assert timing.parse(damaged) == timing.EMPTY


def test_interactions_fade_with_the_half_life_and_a_late_one_counts_for_what_it_is_worth():
    p = timing.add(timing.EMPTY, MONDAY + 9 * HOUR_MS, POLICY)
    assert p == Profile(MONDAY + 9 * HOUR_MS, 1.0, {9: 1.0})
    week_later = timing.add(p, MONDAY + 7 * 24 * HOUR_MS + 20 * HOUR_MS, POLICY)
    assert week_later.weights == {9: 0.4778, 20: 1.0}  # a week and 11 hours: a little under half
    late = timing.add(week_later, MONDAY + 10 * HOUR_MS, POLICY)  # its webhook came last
    assert late.ref_ms == week_later.ref_ms and late.weights[10] < 0.5
    assert late.total == round(week_later.total + late.weights[10], 4)


def test_only_the_heaviest_hours_are_kept_but_every_interaction_counts_in_the_total():
    kept, whole = timing.EMPTY, timing.EMPTY
    for hour, times in ((1, 5), (2, 4), (3, 3), (4, 2), (5, 1)):
        for _ in range(times):
            kept = timing.add(kept, MONDAY + hour * HOUR_MS, POLICY)
            whole = timing.add(whole, MONDAY + hour * HOUR_MS, TimingPolicy(3, POLICY.half_life_ms, 168))
    assert kept.weights == {h: w for h, w in whole.weights.items() if h != 5}
    assert kept.total == whole.total and abs(whole.total - sum(whole.weights.values())) < 0.001  # rounding apart


def test_the_best_hour_is_the_heaviest_of_the_next_24_hours_and_the_earliest_of_equals():
    p = Profile(MONDAY, 10.0, {9: 2.0, 14: 5.0, 20: 5.0, 24 + 8: 9.0})
    at = MONDAY + 10 * HOUR_MS + 5 * 60_000
    assert timing.best_hour(p, at, POLICY) == MONDAY + 24 * HOUR_MS + 8 * HOUR_MS  # Tuesday 08:00, in view
    early = MONDAY + 7 * HOUR_MS
    assert timing.best_hour(p, early, POLICY) == MONDAY + 14 * HOUR_MS  # Tuesday 08:00 not in view yet: 14 and 20 tie
    now_is_it = MONDAY + 14 * HOUR_MS + 30 * 60_000
    assert timing.best_hour(Profile(MONDAY, 10.0, {14: 5.0, 20: 5.0}), now_is_it, POLICY) == now_is_it


def test_too_little_history_or_history_faded_away_sends_now():
    thin = Profile(MONDAY, 2.9, {14: 2.9})
    assert timing.best_hour(thin, MONDAY, POLICY) == MONDAY
    old = Profile(MONDAY - 28 * 24 * HOUR_MS, 40.0, {14: 40.0})  # four half-lives: 2.5 left
    assert timing.best_hour(old, MONDAY, POLICY) == MONDAY
    assert timing.best_hour(old, MONDAY, TimingPolicy(2, POLICY.half_life_ms, 4)) == MONDAY + 14 * HOUR_MS


def test_quiet_hours_rule_out_the_hours_they_cover_and_shorten_the_one_they_end_in():
    p = Profile(MONDAY, 10.0, {14: 9.0, 15: 4.0, 17: 3.0})
    quiet_from, quiet_to = MONDAY + 13 * HOUR_MS, MONDAY + 15 * HOUR_MS + 30 * 60_000

    def quiet(t: int) -> int:
        return quiet_to if quiet_from <= t < quiet_to else t
    assert timing.best_hour(p, MONDAY + 10 * HOUR_MS, POLICY, quiet) == quiet_to  # 14 is quiet; 15 from 15:30


def test_the_policy_reads_timing_and_names_a_bad_value():
    shipped = policy.load(None)
    assert shipped.timing == TimingPolicy(5.0, 28 * 24 * HOUR_MS, 24)
    base = yaml.safe_load(shipped.text)
    for section, named in (({"half_life": "2h"}, "timing.half_life"), ({"profile_hours": 0}, "timing.profile_hours"),
                           ({"min_interactions": -1}, "timing.min_interactions"), ({"best": 1}, "timing")):
        with pytest.raises(policy.PolicyError, match=named.replace(".", r"\.")):
            policy.parse(yaml.safe_dump({**base, "timing": section}))


def test_an_unknown_timing_is_refused_naming_the_field():
    assert touch_from_pb(pb.CheckTouchRequest(timing=pb.BEST_HOUR)).timing == "best_hour"
    with pytest.raises(InvalidArgument) as err:
        touch_from_pb(pb.CheckTouchRequest(timing=7), "checks[2].")  # type: ignore[arg-type]
    assert err.value.field == "checks[2].timing"
