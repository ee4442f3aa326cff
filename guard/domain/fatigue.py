"""The strategy fatigue index: how hard a campaign or strategy is wearing its users out. Pure, no I/O.

Four negative rates, each per touch sent: users who ignored the touch, who answered it negatively,
who opted out because of it, who reported it as spam. A rate counts people, not messages: a user who
answers three times negatively counts once, so no rate passes 100%. Each rate becomes a score from 0 (at or
below the level a healthy programme lives with) to 1 (at or above the level where harm is done),
and the index is their weighted mean times 100. The default levels and weights, and why they are
what they are, are in docs/api.md ("Fatigue index"); a policy may set its own (``fatigue.index``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    good: float  # a rate at or below this scores 0
    bad: float  # at or above this, 1
    weight: float

    def score(self, rate: float) -> float:
        if rate <= self.good:
            return 0.0
        if rate >= self.bad:
            return 1.0
        return (rate - self.good) / (self.bad - self.good)


RATES = ("complaint_rate", "opt_out_rate", "negative_reply_rate", "ignore_rate")
DEFAULT_COMPONENTS: Mapping[str, Component] = {
    "complaint_rate": Component(0.001, 0.003, 0.40),
    "opt_out_rate": Component(0.002, 0.010, 0.25),
    "negative_reply_rate": Component(0.005, 0.030, 0.25),
    "ignore_rate": Component(0.60, 0.95, 0.10),
}


@dataclass(frozen=True)
class Figures:
    """Counts over one window of one campaign, strategy or tenant."""

    touches: int = 0
    deliveries: int = 0
    opens: int = 0
    clicks: int = 0
    conversions: int = 0
    replies: int = 0
    negative_replies: int = 0
    opt_outs: int = 0  # keyword opt-outs
    list_unsubscribes: int = 0
    spam_complaints: int = 0
    bounces: int = 0
    judged: int = 0  # touches old enough to have been ignored (sent ignore_after ago or more)
    interacted: int = 0  # of those, touches someone opened, clicked, converted on or replied to
    tasks_opened: int = 0
    tasks_resolved: int = 0
    tasks_resolved_in_sla: int = 0
    tasks_recovered: int = 0

    @property
    def ignored(self) -> int:
        return max(0, self.judged - self.interacted)

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Figures:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: int(v) for k, v in counts.items() if k in names})


MIN_TOUCHES = 50  # below this many touches in a window, a campaign shows "too few touches", not an index
Z = 1.96  # the confidence of the cautious rates the ranking uses (95%, two-sided)


def lower_bound(n: int, d: int, z: float = Z) -> float:
    """The Wilson score interval's lower end for ``n`` of ``d``: a rate we are fairly sure is at least this.

    One complaint on one touch is a rate of 100% but a lower bound near 20%; a hundred on ten thousand,
    1% with a lower bound of 0.8%. Ranking by it keeps one unlucky touch from topping the list."""
    if d <= 0:
        return 0.0
    p = min(1.0, n / d)
    centre = p + z * z / (2 * d)
    margin = z * math.sqrt((p * (1 - p) + z * z / (4 * d)) / d)
    return max(0.0, (centre - margin) / (1 + z * z / d))


def counts(f: Figures) -> dict[str, tuple[int, int]]:
    """Each rate as (people it befell, people it could have): what the rates and their bounds are made of."""
    return {
        "complaint_rate": (f.spam_complaints, f.touches),
        "opt_out_rate": (f.opt_outs + f.list_unsubscribes, f.touches),
        "negative_reply_rate": (f.negative_replies, f.touches),
        "ignore_rate": (f.ignored, f.judged),
    }


def rates(f: Figures) -> dict[str, float]:
    """Each rate, at most 1 (a harm counted on a touch the window does not hold cannot make it more)."""
    return {name: min(1.0, n / d) if d else 0.0 for name, (n, d) in counts(f).items()}


def cautious_rates(f: Figures) -> dict[str, float]:
    return {name: lower_bound(n, d) for name, (n, d) in counts(f).items()}


def _weighted(r: Mapping[str, float], components: Mapping[str, Component]) -> float:
    total = sum(c.weight for c in components.values())
    if not total:
        return 0.0
    return round(100 * sum(c.weight * c.score(r[name]) for name, c in components.items()) / total, 1)


def index(f: Figures, components: Mapping[str, Component] = DEFAULT_COMPONENTS) -> float:
    """0 (no sign of fatigue) to 100 (every signal at its harmful level), one decimal."""
    return _weighted(rates(f), components)


def cautious_index(f: Figures, components: Mapping[str, Component] = DEFAULT_COMPONENTS) -> float:
    """The index over each rate's lower bound: what campaigns are ranked by (sure fatigue first)."""
    return _weighted(cautious_rates(f), components)
