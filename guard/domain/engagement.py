"""The layering engine: which engagement tier a user is in, from silence. Pure, no I/O.

A marketing touch is ignored once ``ignore_after`` has passed with no interaction (an open, a
click, a conversion, a reply) since it was sent. Any interaction returns the user to the first
tier at once, so what counts is the run of ignored marketing touches sent after the user's last
interaction. Counting is lazy and exact: it is done when a touch is checked, over the times of
the user's recorded marketing touches, and nothing has to run in the background for it to be right.
``check_touch.lua`` mirrors these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from guard.domain.types import EngagementPolicy, Tier


def ignored_in_a_row(marketing_ms: Sequence[int], last_interaction_ms: int, at_ms: int, ignore_after_ms: int) -> int:
    """Marketing touches sent after the last interaction that are ignored by ``at_ms``."""
    return sum(1 for t in marketing_ms if last_interaction_ms < t <= at_ms - ignore_after_ms)


def tier_at(policy: EngagementPolicy, marketing_ms: Sequence[int], last_interaction_ms: int, at_ms: int,
            override: tuple[str, int] | None = None) -> Tier:
    """The user's tier at ``at_ms``: a manual calibration while it lasts, else the deepest tier the run reaches."""
    if override is not None and override[1] > at_ms:
        for tier in policy.tiers:
            if tier.name == override[0]:
                return tier
    run = ignored_in_a_row(marketing_ms, last_interaction_ms, at_ms, policy.ignore_after_ms)
    found = policy.tiers[0]
    for tier in policy.tiers:
        if tier.after_ignored <= run:
            found = tier
    return found
