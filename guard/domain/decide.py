"""The decision rules: policy facts + user state → Outcome. Pure, no I/O.

The Lua script ``check_touch.lua`` mirrors these rules so that the decision
and the recording of a touch happen in one atomic step inside Redis; the
property tests prove the two agree on random histories.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guard.domain import clock, timing
from guard.domain.engagement import tier_at
from guard.domain.types import (
    DAY_MS,
    DEFERRABLE,
    CapUsage,
    Check,
    EngagementPolicy,
    Outcome,
    Preferences,
    QuietHours,
    Reason,
    RuleCheck,
    Tier,
    Verdict,
)

USER_RULE_ID = "user_max_marketing_per_week"
USER_RULE_WINDOW_MS = 7 * DAY_MS
# Retry search: each round moves to the latest retry of the reasons still standing.
MAX_RETRY_ROUNDS = 8


@dataclass(frozen=True)
class Facts:
    """Everything a decision needs, as the store reads it atomically."""

    at_ms: int
    checks: frozenset[Check]
    channel: str
    category: str
    channel_default: bool
    category_default: bool
    channel_scope_before: str  # what a channel closed before scopes existed means: "marketing" or "all"
    prefs: Preferences
    hold_until_ms: int
    default_quiet: QuietHours
    rules: Sequence[RuleCheck]
    events: Mapping[tuple[str, str], Sequence[int]]  # rule counter → recorded touch times (any order)
    pending_replies: bool = False  # unscored replies within the look-back
    pending_retry_ms: int = 60_000
    engagement: EngagementPolicy | None = None  # the tiers (checked where the class checks engagement)
    marketing_ms: Sequence[int] = ()  # times of the user's recorded marketing touches
    last_interaction_ms: int = 0
    tier_override: tuple[str, int] | None = None  # a manual calibration: (tier, until)
    undeliverable: bool = False  # the channel hard-bounced for this user and has not delivered since
    campaign_braked: bool = False  # the touch's campaign or strategy is braked (fatigue.brake)
    # The sender asked for the user's best hour (timing BEST_HOUR, where the class checks best_time): the policy's
    # timing, the user's interaction profile, and the hour named to this touch before (0: none), which it keeps.
    timing_policy: timing.TimingPolicy | None = None
    profile: timing.Profile = timing.EMPTY
    timing_promised_ms: int = 0


def window_usage(events: Sequence[int], at_ms: int, window_ms: int) -> int:
    """Touches in the fullest window of length ``window_ms`` that contains ``at_ms``.

    Windows are half-open ``[s, s + window)``. The fullest one starts at a
    recorded touch in ``(at - window, at]`` or at ``at`` itself, so only those
    starts are tried. Touches after ``at`` (scheduled ones) count too.
    """
    ordered = sorted(events)
    starts = [e for e in ordered if at_ms - window_ms < e <= at_ms] + [at_ms]
    best = 0
    for s in starts:
        best = max(best, bisect.bisect_left(ordered, s + window_ms) - bisect.bisect_left(ordered, s))
    return best


def cap_retry(events: Sequence[int], at_ms: int, window_ms: int, limit: int) -> int:
    """The earliest instant ≥ at when one more touch fits the rule.

    Usage only falls when a touch leaves every window, at its time + window,
    so those are the only candidates.
    """
    for candidate in sorted({e + window_ms for e in events if e + window_ms > at_ms}):
        if window_usage(events, candidate, window_ms) < limit:
            return candidate
    return at_ms


def user_rule(prefs: Preferences) -> RuleCheck:
    """The user's own weekly maximum as a rule (limit 0: not set, never decides)."""
    return RuleCheck(USER_RULE_ID, "", prefs.max_marketing_per_week, USER_RULE_WINDOW_MS)


def effective_quiet(facts: Facts) -> QuietHours:
    return facts.prefs.quiet_hours or facts.default_quiet


def _opted_in(choices: Mapping[str, bool], key: str, default: bool) -> bool:
    return choices.get(key, default)


def _active_rules(facts: Facts) -> list[RuleCheck]:
    """Rules that can hold a touch back: the user's own weekly maximum counts only when set."""
    rules = list(facts.rules)
    return [r for r in rules if not (r.rule_id == USER_RULE_ID and r.limit <= 0)]


def _tier(facts: Facts, at_ms: int) -> Tier | None:
    if Check.ENGAGEMENT not in facts.checks or facts.engagement is None:
        return None
    return tier_at(facts.engagement, facts.marketing_ms, facts.last_interaction_ms, at_ms, facts.tier_override)


def _timed(facts: Facts, at_ms: int) -> list[tuple[Reason, int]]:
    """Reasons that pass with time, each with the instant it passes, evaluated at ``at_ms``."""
    out: list[tuple[Reason, int]] = []
    prefs = facts.prefs
    if Check.PAUSE in facts.checks and prefs.paused_until_ms > at_ms:
        out.append((Reason.PAUSED, prefs.paused_until_ms))
    if Check.QUIET_HOURS in facts.checks:
        quiet = effective_quiet(facts)
        segs = clock.segments_for(quiet.time_zone, at_ms)
        if clock.in_quiet_hours(quiet, segs, at_ms):
            out.append((Reason.QUIET_HOURS, clock.quiet_hours_end(quiet, segs, at_ms)))
    if Check.CAPS in facts.checks:
        for rule in _active_rules(facts):
            if rule.shadow:
                continue
            events = facts.events.get(rule.counter, ())
            if window_usage(events, at_ms, rule.window_ms) + 1 > rule.limit:
                out.append((Reason.FREQUENCY_CAP, cap_retry(events, at_ms, rule.window_ms, rule.limit)))
    tier = _tier(facts, at_ms)
    if tier is not None and not tier.shadow:
        for tier_rule in tier.rules:
            if window_usage(facts.marketing_ms, at_ms, tier_rule.window_ms) + 1 > tier_rule.limit:
                out.append((Reason.LOW_ENGAGEMENT,
                            cap_retry(facts.marketing_ms, at_ms, tier_rule.window_ms, tier_rule.limit)))
    return out


def best_time(facts: Facts) -> int:
    """The instant of the user's best hour when the sender asked for it and it is not now; 0 otherwise.

    A touch told to wait for an hour is not sent on again when it comes back at it, though the next 24 hours
    then hold a heavier one: the hour it was named is kept (``timing_promised_ms``)."""
    if facts.timing_policy is None or (facts.timing_promised_ms and facts.at_ms >= facts.timing_promised_ms):
        return 0
    quiet = None
    if Check.QUIET_HOURS in facts.checks:
        hours = effective_quiet(facts)
        segs = clock.segments_for(hours.time_zone, facts.at_ms)

        def quiet(t: int) -> int:
            return clock.quiet_hours_end(hours, segs, t) if clock.in_quiet_hours(hours, segs, t) else t
    best = timing.best_hour(facts.profile, facts.at_ms, facts.timing_policy, quiet)
    return best if best > facts.at_ms else 0


def decide(facts: Facts) -> Outcome:
    """The decision for one touch at ``facts.at_ms`` (recording is the store's job)."""
    prefs = facts.prefs
    reasons: list[Reason] = []
    if Check.UNSUBSCRIBED in facts.checks and prefs.unsubscribed_all:
        reasons.append(Reason.UNSUBSCRIBED)
    channel_open = _opted_in(prefs.channels, facts.channel, facts.channel_default)
    if not channel_open:
        scope = prefs.channel_scopes.get(facts.channel, facts.channel_scope_before)
        if Check.CHANNEL in facts.checks or (Check.STOPPED_CHANNEL in facts.checks and scope == "all"):
            reasons.append(Reason.CHANNEL_OPTED_OUT)
    elif Check.CHANNEL in facts.checks and prefs.pending.get(facts.channel):
        reasons.append(Reason.CONSENT_PENDING)
    topic_open = prefs.grid.get(f"{facts.channel}.{facts.category}")
    if topic_open is None:
        topic_open = _opted_in(prefs.categories, facts.category, facts.category_default)
    if Check.CATEGORY in facts.checks and not topic_open:
        reasons.append(Reason.CATEGORY_OPTED_OUT)
    if facts.undeliverable:  # a fact of the address, not a consent: every class
        reasons.append(Reason.UNDELIVERABLE)
    if facts.campaign_braked:
        reasons.append(Reason.CAMPAIGN_FATIGUED)
    on_hold = Check.HOLD in facts.checks and facts.hold_until_ms > facts.at_ms
    if on_hold:
        reasons.append(Reason.NEGATIVE_SENTIMENT)

    timed = _timed(facts, facts.at_ms)
    for reason, _ in timed:
        if reason not in reasons:
            reasons.append(reason)
    best = best_time(facts)
    if best:
        reasons.append(Reason.BEST_TIME)
    pending = Check.HOLD in facts.checks and facts.pending_replies
    if pending:
        reasons.append(Reason.SENTIMENT_PENDING)

    caps = tuple(
        CapUsage(
            rule_id=r.rule_id,
            limit=r.limit,
            used=(used := window_usage(facts.events.get(r.counter, ()), facts.at_ms, r.window_ms)),
            window_ms=r.window_ms,
            shadow=r.shadow,
            exceeded=used + 1 > r.limit,
        )
        for r in _active_rules(facts)
    ) if Check.CAPS in facts.checks else ()
    tier = _tier(facts, facts.at_ms)
    if tier is not None:
        caps += tuple(
            CapUsage(rule_id=f"tier.{tier.name}.{r.rule_id}", limit=r.limit,
                     used=(used := window_usage(facts.marketing_ms, facts.at_ms, r.window_ms)), window_ms=r.window_ms,
                     shadow=tier.shadow, exceeded=used + 1 > r.limit)
            for r in tier.rules)

    retry: int | None = None
    if timed or best:
        at = max(facts.at_ms, best)  # the best hour, or the first moment after it the timed reasons allow
        for _ in range(MAX_RETRY_ROUNDS):
            standing = _timed(facts, at)
            if not standing:
                break
            at = max(when for _, when in standing)
        retry = at
    if pending:
        retry = max(retry if retry is not None else facts.at_ms, facts.at_ms + facts.pending_retry_ms)
    blocking = [r for r in reasons if r not in DEFERRABLE]
    if blocking:
        verdict = Verdict.BLOCK
        retry = facts.hold_until_ms if blocking == [Reason.NEGATIVE_SENTIMENT] else None
        if retry is not None and timed:
            retry = max(retry, max(when for _, when in timed))
        if retry is not None and pending:
            retry = max(retry, facts.at_ms + facts.pending_retry_ms)
    elif reasons:
        verdict = Verdict.DEFER
    else:
        verdict = Verdict.ALLOW
        retry = None
    return Outcome(verdict, tuple(reasons), retry, caps, detail="", evaluated_at_ms=facts.at_ms,
                   tier=tier.name if tier is not None else "")


def describe(outcome: Outcome) -> str:
    """One readable line for people and logs (never any message text)."""
    parts = [outcome.verdict.value]
    if outcome.reasons:
        parts.append("reasons=" + ",".join(r.value for r in outcome.reasons))
    full = [f"{c.rule_id} {c.used}/{c.limit}{' (shadow)' if c.shadow else ''}" for c in outcome.caps if c.exceeded]
    if full:
        parts.append("full: " + "; ".join(full))
    if outcome.retry_at_ms is not None:
        parts.append(f"retry in {max(0, outcome.retry_at_ms - outcome.evaluated_at_ms) // 1000}s")
    if outcome.replayed:
        parts.append("replayed earlier decision")
    if outcome.recorded:
        parts.append("recorded")
    return "; ".join(parts)
