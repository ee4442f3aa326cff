"""The layering engine's pure core: runs of ignored touches and the tiers they lead to."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from guard import policy
from guard.domain.engagement import ignored_in_a_row, tier_at

DAY = 86_400_000
ENGAGEMENT = policy.load(None).engagement
times = st.lists(st.integers(0, 40 * DAY), max_size=20)


@given(touches=times, last=st.integers(0, 40 * DAY), at=st.integers(0, 45 * DAY), later=st.integers(0, 10 * DAY))
def test_silence_only_deepens_with_time(touches, last, at, later):
    """With no interaction, the run never shrinks and the tier never rises as time passes."""
    order = [t.name for t in ENGAGEMENT.tiers]
    assert ignored_in_a_row(touches, last, at, 3 * DAY) <= ignored_in_a_row(touches, last, at + later, 3 * DAY)
    assert order.index(tier_at(ENGAGEMENT, touches, last, at).name) <= order.index(
        tier_at(ENGAGEMENT, touches, last, at + later).name)


@given(touches=times, at=st.integers(0, 45 * DAY))
def test_any_interaction_after_the_touches_brings_the_user_back_at_once(touches, at):
    assert tier_at(ENGAGEMENT, touches, max(touches, default=0), at).name == "active"


@given(touches=times, last=st.integers(0, 40 * DAY), at=st.integers(0, 45 * DAY))
def test_a_touch_counts_as_ignored_only_once_it_is_old_enough(touches, last, at):
    young = [t for t in touches if t > at - 3 * DAY]
    assert ignored_in_a_row(touches, last, at, 3 * DAY) == ignored_in_a_row(
        [t for t in touches if t not in young], last, at, 3 * DAY)


def test_the_default_tiers_at_three_and_six():
    ignored = [0, DAY, 2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY]
    assert tier_at(ENGAGEMENT, ignored[:2], 0, 30 * DAY).name == "active"
    assert tier_at(ENGAGEMENT, ignored[:3], -1, 30 * DAY).name == "cooling"
    assert tier_at(ENGAGEMENT, ignored, -1, 30 * DAY).name == "dormant"
    assert tier_at(ENGAGEMENT, ignored, -1, 5 * DAY).name == "cooling"  # the last three are not old enough yet


def test_a_calibration_holds_until_it_expires():
    assert tier_at(ENGAGEMENT, [0, DAY, 2 * DAY], -1, 10 * DAY, ("active", 20 * DAY)).name == "active"
    assert tier_at(ENGAGEMENT, [0, DAY, 2 * DAY], -1, 21 * DAY, ("active", 20 * DAY)).name == "cooling"
    assert tier_at(ENGAGEMENT, [], 0, DAY, ("dormant", 2 * DAY)).name == "dormant"
    assert tier_at(ENGAGEMENT, [], 0, DAY, ("no-such-tier", 2 * DAY)).name == "active"


def test_tier_policy_mistakes_name_the_key():
    import pytest
    import yaml

    from guard.policy import PolicyError

    base = yaml.safe_load(policy.load(None).text)
    for tiers, where in (([{"name": "cooling", "after_ignored": 3}], "engagement.tiers[0].after_ignored"),
                         ([{"name": "a"}, {"name": "b", "after_ignored": 0}], "engagement.tiers[1]"),
                         ([{"name": "a"}, {"name": "b", "after_ignored": 2, "caps": [{"limit": 1, "window": "7d",
                                                                                        "channels": ["sms"]}]}],
                          "engagement.tiers[1].caps[0]")):
        base["engagement"]["tiers"] = tiers
        with pytest.raises(PolicyError) as err:
            policy.parse(yaml.safe_dump(base))
        assert where in str(err.value)


def test_a_shadow_tier_is_reported_and_never_holds_a_touch_back():
    import dataclasses

    from guard.domain import decide
    from guard.domain.types import Check, EngagementPolicy, Preferences, QuietHours, Verdict

    shadowed = EngagementPolicy(3 * DAY, tuple(dataclasses.replace(t, shadow=t.name == "cooling")
                                               for t in ENGAGEMENT.tiers))
    touches = [0, DAY, 2 * DAY]
    for engagement, verdict in ((ENGAGEMENT, Verdict.DEFER), (shadowed, Verdict.ALLOW)):
        out = decide.decide(decide.Facts(
            at_ms=6 * DAY, checks=frozenset({Check.ENGAGEMENT}), channel="push", category="promotion",
            channel_default=True, category_default=True, channel_scope_before="marketing", prefs=Preferences(),
            hold_until_ms=0, default_quiet=QuietHours("UTC", 0, 0), rules=[], events={}, engagement=engagement,
            marketing_ms=touches, last_interaction_ms=-1))
        assert out.verdict is verdict and out.tier == "cooling"
        assert [(c.rule_id, c.used, c.shadow, c.exceeded) for c in out.caps] == [
            ("tier.cooling.7d", 3, engagement is shadowed, True)]
