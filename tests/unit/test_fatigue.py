"""The fatigue index: bounded, monotone in every negative rate, and anchored at its documented levels."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from guard.domain.fatigue import Figures, index, rates

counts = st.integers(0, 10_000)
figures = st.builds(lambda t, j, i, n, o, u, s: Figures(touches=t, judged=min(j, t), interacted=min(i, j, t),
                                                        negative_replies=n, opt_outs=o, list_unsubscribes=u,
                                                        spam_complaints=s),
                    st.integers(1, 100_000), counts, counts, counts, counts, counts, counts)


@given(f=figures)
def test_the_index_is_between_0_and_100(f):
    assert 0 <= index(f) <= 100


@given(f=figures, field=st.sampled_from(["negative_replies", "opt_outs", "list_unsubscribes", "spam_complaints"]),
       more=st.integers(1, 1000))
def test_more_of_any_harm_never_lowers_the_index(f, field, more):
    worse = dataclasses.replace(f, **{field: getattr(f, field) + more})
    assert index(worse) >= index(f)


@given(f=figures, fewer=st.integers(1, 1000))
def test_fewer_interactions_never_lower_the_index(f, fewer):
    assert index(dataclasses.replace(f, interacted=max(0, f.interacted - fewer))) >= index(f)


def test_anchors():
    healthy = Figures(touches=100_000, judged=100_000, interacted=50_000, negative_replies=100, opt_outs=100,
                      spam_complaints=50)
    assert index(healthy) == 0
    burning = Figures(touches=1000, judged=1000, interacted=10, negative_replies=50, opt_outs=20, spam_complaints=5)
    assert index(burning) == 100
    # Gmail's and Yahoo's line: a spam rate of 0.3% is as bad as a complaint can score, 0.2% halfway.
    half = Figures(touches=10_000, spam_complaints=20)
    assert rates(half)["complaint_rate"] == 0.002 and index(half) == 20.0
    assert index(Figures()) == 0


def test_a_brake_trips_only_with_touches_enough_and_a_signal_at_its_threshold():
    from guard.policy import BrakeRule
    from guard.usecases.brakes import tripped

    rule = BrakeRule("optouts", "campaign", "24h", 100, {"opt_out_rate": 0.02, "fatigue_index": 80}, 0, False)
    assert tripped(rule, 99, {"opt_out_rate": 0.5}) is None  # too few touches to judge
    assert tripped(rule, 100, {"opt_out_rate": 0.019, "fatigue_index": 79.9}) is None
    assert tripped(rule, 100, {"opt_out_rate": 0.02}) == ("opt_out_rate", 0.02)
    assert tripped(rule, 500, {"opt_out_rate": 0.0, "fatigue_index": 80.0}) == ("fatigue_index", 80.0)


def test_brake_and_index_policy_mistakes_name_the_key():
    import pytest
    import yaml

    from guard import policy
    from guard.policy import PolicyError

    base = yaml.safe_load(policy.load(None).text)
    for fatigue, where in (({"brake": [{"id": "b", "when": {"open_rate": 0.1}}]}, "fatigue.brake[0].when"),
                           ({"brake": [{"id": "b", "when": {}}]}, "fatigue.brake[0].when"),
                           ({"brake": [{"id": "b", "scope": "user", "when": {"opt_out_rate": 0.1}}]},
                            "fatigue.brake[0].scope"),
                           ({"brake": [{"id": "b", "when": {"opt_out_rate": 2}}]}, "fatigue.brake[0].when.opt_out_rate"),
                           ({"index": {"ignore_rate": {"good": 0.9, "bad": 0.5}}}, "fatigue.index.ignore_rate")):
        base["fatigue"] = fatigue
        with pytest.raises(PolicyError) as err:
            policy.parse(yaml.safe_dump(base))
        assert where in str(err.value)
    base["fatigue"] = {"index": {"complaint_rate": {"weight": 1}},
                       "brake": [{"id": "b", "window": "7d", "min_touches": 5, "when": {"complaint_rate": 0.003},
                                  "release_after": "12h", "shadow": True}]}
    parsed = policy.parse(yaml.safe_dump(base)).fatigue
    assert parsed.components["complaint_rate"].weight == 1 and parsed.components["complaint_rate"].bad == 0.003
    assert parsed.brakes[0].release_after_ms == 12 * 3_600_000 and parsed.brakes[0].shadow


def test_a_shadow_brake_or_one_past_its_release_blocks_nothing():
    from guard.store.brakes import Brake

    assert Brake("r", 0, 0, False, "opt_out_rate", 0.5).blocks(10**13)  # until resumed
    assert not Brake("r", 0, 0, True, "opt_out_rate", 0.5).blocks(1)  # shadow: reported only
    assert Brake("r", 0, 100, False, "opt_out_rate", 0.5).blocks(99)
    assert not Brake("r", 0, 100, False, "opt_out_rate", 0.5).blocks(100)  # release_after has passed


def test_rates_never_pass_one_and_bounds_sit_below_them():
    from guard.domain.fatigue import cautious_rates, lower_bound

    many = Figures(touches=1, negative_replies=3, spam_complaints=2)  # harms counted on touches elsewhere
    assert max(rates(many).values()) == 1.0
    assert 0.0 < lower_bound(1, 1) < 0.25 and lower_bound(0, 10) == 0.0 and lower_bound(5, 0) == 0.0
    assert abs(lower_bound(100, 10_000) - 0.0082) < 0.0005  # a hundred in ten thousand: surely about 0.8%
    big = Figures(touches=10_000, spam_complaints=100)
    assert all(cautious_rates(big)[k] <= rates(big)[k] for k in rates(big))


def test_the_cautious_index_ranks_sure_fatigue_above_a_lucky_guess():
    from guard.domain.fatigue import cautious_index

    thin = Figures(touches=100, spam_complaints=1)  # 1%, on one complaint
    sure = Figures(touches=10_000, spam_complaints=50)  # 0.5%, on fifty
    assert index(thin) == index(sure) == 40.0  # both past the harmful level: the plain index cannot tell them apart
    assert cautious_index(sure) > cautious_index(thin)
