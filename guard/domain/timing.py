"""The user's own best hour: when in the week they open and click, and the pre-send choice that uses it.

guard sees every open, click and conversion with its time. Each touch's first interaction adds one to the
hour of the week it happened in (UTC, Monday 00:00 is hour 0), every count fading with a half-life, so a
person whose habits change is followed within weeks; only the heaviest hours are kept, so the profile stays
small enough to read inside the check script. ``add`` is the specification of what ``engagement_record.lua``
writes and ``best_hour`` of what ``check_touch.lua`` decides; the agreement property holds them together.

Hours are UTC on purpose: an interaction's hour is a fact that needs no zone, and a daylight-saving change
moves a person's habit by one hour, which the fading corrects within a few weeks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

HOUR_MS = 3_600_000
WEEK_HOURS = 168
# 1970-01-01 (the epoch) was a Thursday: three days on from Monday 00:00.
_EPOCH_HOUR_OF_WEEK = 72
# How far ahead the best hour is looked for: the next 24 hours, the current one included.
LOOK_AHEAD_HOURS = 24


@dataclass(frozen=True)
class TimingPolicy:
    """Policy ``timing``: how much history is enough, how fast it fades, how many hours are kept."""

    min_interactions: float = 5.0  # fewer (faded) interactions: too little history, the touch goes now
    half_life_ms: int = 28 * 86_400_000
    profile_hours: int = 24  # the heaviest hours kept per user


@dataclass(frozen=True)
class Profile:
    """Interactions per hour of the week, faded to ``ref_ms``; ``total`` counts every interaction (hours dropped
    for size included), faded the same way."""

    ref_ms: int
    total: float
    weights: Mapping[int, float]

    def faded(self, at_ms: int, half_life_ms: int) -> float:
        """How much ``ref_ms``'s weights are worth at ``at_ms``."""
        return float(2.0 ** (-(at_ms - self.ref_ms) / half_life_ms))


EMPTY = Profile(0, 0.0, {})
DEFAULT_TIMING = TimingPolicy()


def hour_of_week(at_ms: int) -> int:
    return (at_ms // HOUR_MS + _EPOCH_HOUR_OF_WEEK) % WEEK_HOURS


def _num(x: float) -> str:
    return f"{x:.4f}"


def encode(p: Profile) -> str:
    """``ref|total|hour:weight,...`` (four decimals, hours ascending): what the engagement hash's ``hours`` holds."""
    return f"{p.ref_ms}|{_num(p.total)}|" + ",".join(f"{h}:{_num(w)}" for h, w in sorted(p.weights.items()))


def parse(raw: str | None) -> Profile:
    """The stored profile; an absent or unreadable one is empty (the touch then goes as if there were no history)."""
    if not raw:
        return EMPTY
    try:
        ref, total, rest = raw.split("|", 2)
        weights = {int(h): float(w) for h, w in (pair.split(":", 1) for pair in rest.split(",") if pair)}
        return Profile(int(ref), float(total), weights)
    except ValueError:
        return EMPTY


def add(p: Profile, at_ms: int, policy: TimingPolicy) -> Profile:
    """One more interaction at ``at_ms``: everything fades to the newest interaction seen, a late one (its webhook
    came after a newer one) counts for what it is worth by then; the heaviest ``profile_hours`` hours stay."""
    if at_ms >= p.ref_ms:
        f = p.faded(at_ms, policy.half_life_ms)
        weights = {h: w * f for h, w in p.weights.items()}
        total, ref, one = p.total * f, at_ms, 1.0
    else:
        weights, total, ref = dict(p.weights), p.total, p.ref_ms
        one = float(2.0 ** (-(p.ref_ms - at_ms) / policy.half_life_ms))
    h = hour_of_week(at_ms)
    weights[h] = weights.get(h, 0.0) + one
    # Rounded as stored, so the next step (here and in the script) starts from the same numbers.
    rounded = {k: float(_num(w)) for k, w in weights.items()}
    kept = sorted((k for k, w in rounded.items() if w > 0), key=lambda k: (-rounded[k], k))[:policy.profile_hours]
    return Profile(ref, float(_num(total + one)), {k: rounded[k] for k in kept})


def best_hour(p: Profile, at_ms: int, policy: TimingPolicy, quiet: Callable[[int], int] | None = None) -> int:
    """When the touch should go: the start of the user's most responsive hour in the next 24 hours (the earliest
    of the heaviest), or ``at_ms`` itself when that is the current hour or the history is too thin.

    ``quiet`` maps an instant inside quiet hours to the instant they end (the identity elsewhere); an hour wholly
    inside quiet hours is no candidate, one that they end partway starts where they end.
    """
    if p.total * p.faded(at_ms, policy.half_life_ms) < policy.min_interactions:
        return at_ms
    best, best_weight = at_ms, -1.0
    first = at_ms - at_ms % HOUR_MS
    for k in range(LOOK_AHEAD_HOURS):
        hour = first + k * HOUR_MS
        start = max(hour, at_ms)
        if quiet is not None:
            start = quiet(start)
        if start >= hour + HOUR_MS:
            continue
        weight = p.weights.get(hour_of_week(hour), 0.0)
        if weight > best_weight:
            best, best_weight = start, weight
    return best
