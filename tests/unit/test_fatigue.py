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
