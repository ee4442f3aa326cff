"""CheckTouch and its neighbours: validate, ask the store's one script, apply the fail modes.

Knows nothing of protobuf (the transport maps) and nothing of Redis commands (the store
owns them). Every bad input is an ``InvalidArgument`` naming its field. The decision itself
is made inside Redis by ``check_touch.lua``, whose specification is ``guard.domain.decide``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from guard import logs, metrics
from guard.domain import clock, decide
from guard.domain.clock import Clock
from guard.domain.types import CapUsage, Check, Outcome, Preferences, Reason, Touch, TouchClass, Verdict
from guard.errors import InvalidArgument, StoreUnavailable
from guard.policy import Policy
from guard.store.brakes import Brake, field_of
from guard.store.counters import CampaignCounters
from guard.store.keys import UserKeys
from guard.store.redis_store import RedisStore, StoredTouch, ZoneNeeded
from guard.usecases.preferences import ConsentEvent, PreferenceService
from guard.validate import by_user, check_id, shown

log = logs.get("guard.usecases.checks")
# One line when Redis stops answering checks, one when it answers again: never one per check.
STORE_OUTAGE = logs.Condition(log, "store_unavailable")

MAX_BATCH = 1000
# Users whose own quiet-hours zone this process has learned (so their checks stay one round trip).
ZONE_CACHE_SIZE = 100_000
PendingScorer = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class UserState:
    preferences: Preferences
    recent_touches: list[StoredTouch]
    caps: list[CapUsage]
    hold_until_ms: int
    consent_events: list[ConsentEvent]


class GuardService:
    """``score_pending`` scores a user's unscored recent replies (the reply loop's; ``tenants.wire`` wires it)."""

    def __init__(self, policy: Policy, store: RedisStore, preferences: PreferenceService, counters: CampaignCounters, *,
                 now: Clock = clock.system_clock, tenant: str = "default") -> None:
        self.policy = policy
        self.store = store
        self.preferences = preferences
        self.counters = counters
        self.now = now
        self.tenant = tenant
        self.score_pending: PendingScorer | None = None
        # Campaigns (c:<id>) and strategies (s:<id>) braked now, as the last control poll read them.
        self.brakes: Mapping[str, Brake] = {}
        self._zones: OrderedDict[str, str] = OrderedDict()

    def keys(self, user_id: str) -> UserKeys:
        return UserKeys(self.tenant, user_id)

    # -- CheckTouch ------------------------------------------------------------------------

    def validate_touch(self, touch: Touch, now_ms: int, prefix: str = "") -> Touch:
        check_id(touch.user_id, prefix + "user_id")
        check_id(touch.touch_id, prefix + "touch_id", required=not touch.dry_run)
        check_id(touch.campaign_id, prefix + "campaign_id", required=False)
        check_id(touch.strategy_id, prefix + "strategy_id", required=False)
        if touch.channel not in self.policy.channels:
            raise InvalidArgument(
                prefix + "channel", f"unknown channel {shown(touch.channel)} (known: {', '.join(sorted(self.policy.channels))})"
            )
        if touch.category not in self.policy.categories:
            raise InvalidArgument(
                prefix + "category",
                f"unknown category {shown(touch.category)} (known: {', '.join(sorted(self.policy.categories))})",
            )
        if touch.timing and Check.BEST_TIME not in self.policy.classes[touch.touch_class].checks:
            name = touch.touch_class.value
            raise InvalidArgument(prefix + "timing", f"BEST_HOUR is not offered to {name} touches (the policy's "
                                                     f"classes.{name}.checks has no best_time)")
        if touch.at_ms and touch.at_ms > now_ms + self.policy.max_schedule_ahead_ms:
            raise InvalidArgument(prefix + "send_at", "is further ahead than the policy's max_schedule_ahead")
        if touch.at_ms and touch.at_ms < now_ms - 3_600_000:
            raise InvalidArgument(prefix + "send_at", "is more than an hour in the past")
        return touch if touch.at_ms else dataclasses.replace(touch, at_ms=now_ms)

    def fail_mode(self, touch: Touch) -> Outcome:
        if self.policy.classes[touch.touch_class].fail_open:
            return Outcome(Verdict.ALLOW, (Reason.STORE_UNAVAILABLE,), None, (), "", evaluated_at_ms=touch.at_ms)
        retry = touch.at_ms + self.policy.store_unavailable_retry_ms
        return Outcome(Verdict.DEFER, (Reason.STORE_UNAVAILABLE,), retry, (), "", evaluated_at_ms=touch.at_ms)

    def reset_answer(self, touch: Touch) -> Outcome:
        """The store lost what guard wrote: marketing waits (DEFER) for an operator; the other classes follow
        their fail mode. Nothing is read or recorded, since nothing read could be trusted."""
        retry = touch.at_ms + self.policy.store_unavailable_retry_ms
        if touch.touch_class is not TouchClass.MARKETING and self.policy.classes[touch.touch_class].fail_open:
            return Outcome(Verdict.ALLOW, (Reason.STORE_RESET,), None, (), "", evaluated_at_ms=touch.at_ms)
        return Outcome(Verdict.DEFER, (Reason.STORE_RESET,), retry, (), "", evaluated_at_ms=touch.at_ms)

    async def check(self, touch: Touch) -> Outcome:
        now = self.now()
        valid = self.validate_touch(touch, now)
        if self.store.reset_reason:
            return self._finish(valid, self.reset_answer(valid))
        return await self._check_valid(valid, now)

    async def _check_valid(self, touch: Touch, now: int) -> Outcome:
        keys = self.keys(touch.user_id)
        try:
            outcome = await self._decide(keys, touch, now)
            # Pending replies: score them through the batcher, then decide again (bounded by score_wait).
            pending = Reason.SENTIMENT_PENDING in outcome.reasons
            if pending and self.score_pending is not None and await self.score_pending(touch.user_id):
                outcome = await self._decide(keys, touch, now)
        except StoreUnavailable as exc:
            outcome = self._failed(touch, exc)
        return self._finish(touch, outcome)

    def _failed(self, touch: Touch, exc: StoreUnavailable) -> Outcome:
        STORE_OUTAGE.met(error=str(exc), note="checks answer by their class's fail mode until Redis answers")
        return self.fail_mode(touch)

    def _finish(self, touch: Touch, outcome: Outcome) -> Outcome:
        """The answer as the caller gets it: described, counted, and its campaign credited when recorded."""
        if STORE_OUTAGE.active and Reason.STORE_UNAVAILABLE not in outcome.reasons:
            STORE_OUTAGE.ended()
        outcome = dataclasses.replace(outcome, detail=decide.describe(outcome))
        metrics.count_decision(outcome, touch.touch_class.value)
        if outcome.recorded and not outcome.replayed:
            self.counters.add(self.tenant, touch.campaign_id, "touches", strategy_id=touch.strategy_id,
                              at_ms=touch.at_ms)
        return outcome

    def braked(self, touch: Touch) -> bool:
        """Whether the touch's campaign or strategy is braked (marketing only; read from memory, no round trip)."""
        if not self.brakes or touch.touch_class is not TouchClass.MARKETING:
            return False
        for scope, name in (("campaign", touch.campaign_id), ("strategy", touch.strategy_id)):
            brake = self.brakes.get(field_of(scope, name)) if name else None
            if brake is not None and brake.blocks(touch.at_ms):
                return True
        return False

    def _zone_for(self, touch: Touch) -> tuple[str, clock.Segments] | None:
        name = self._zones.get(touch.user_id)
        return (name, clock.segments_for(name, touch.at_ms)) if name else None

    async def _decide(self, keys: UserKeys, touch: Touch, now: int) -> Outcome:
        """The store's one round trip, sending the user's own zone when this process has learned it."""
        for _ in range(3):
            try:
                return await self.store.check_touch(keys, touch, self.policy, now, self._zone_for(touch),
                                                    braked=self.braked(touch))
            except ZoneNeeded as need:
                self._learn_zone(touch.user_id, need.time_zone)
        raise StoreUnavailable("the user's quiet-hours zone kept changing during the check; try again")

    def _learn_zone(self, user_id: str, time_zone: str) -> None:
        self._zones[user_id] = time_zone
        self._zones.move_to_end(user_id)
        while len(self._zones) > ZONE_CACHE_SIZE:
            self._zones.popitem(last=False)

    async def check_many(self, touches: Sequence[Touch]) -> list[Outcome]:
        """Each exactly as ``check``; one user's touches in request order, all users at once.

        Round k sends every user's k-th check to Redis as one pipeline, so a batch costs as many
        round trips as its busiest user has checks, not one per check. A check that needs more
        (a pending reply to score, the user's own zone) finishes the way a single check does.
        """
        if len(touches) > MAX_BATCH:
            raise InvalidArgument("checks", f"holds {len(touches)} items; at most {MAX_BATCH}")
        now = self.now()
        valid = [self.validate_touch(t, now, f"checks[{i}].") for i, t in enumerate(touches)]
        if self.store.reset_reason:
            return [self._finish(t, self.reset_answer(t)) for t in valid]
        queues = by_user([t.user_id for t in valid])
        results: list[Outcome | None] = [None] * len(valid)
        depth = max((len(q) for q in queues.values()), default=0)
        for k in range(depth):
            round_ = [q[k] for q in queues.values() if len(q) > k]
            calls = [(self.keys(valid[i].user_id), valid[i], self._zone_for(valid[i]), self.braked(valid[i]))
                     for i in round_]
            try:
                answers: list[Outcome | Exception] = list(await self.store.check_touches(calls, self.policy, now))
            except StoreUnavailable as exc:
                answers = [exc] * len(round_)
            slow = []
            for i, answer in zip(round_, answers, strict=True):
                if isinstance(answer, Outcome) and Reason.SENTIMENT_PENDING not in answer.reasons:
                    results[i] = self._finish(valid[i], answer)
                elif isinstance(answer, StoreUnavailable):
                    results[i] = self._finish(valid[i], self._failed(valid[i], answer))
                else:
                    slow.append(i)
            for i, outcome in zip(slow, await asyncio.gather(*(self._check_valid(valid[i], now) for i in slow)),
                                  strict=True):
                results[i] = outcome
        return [r for r in results if r is not None]

    async def cancel(self, user_id: str, touch_id: str) -> bool:
        check_id(user_id, "user_id")
        check_id(touch_id, "touch_id")
        return await self.store.cancel_touch(self.keys(user_id), touch_id)

    async def user_state(self, user_id: str) -> UserState:
        check_id(user_id, "user_id")
        keys = self.keys(user_id)
        prefs = await self.preferences.get_preferences(user_id)
        now = self.now()
        rules = [r.check_for("", "", "") for r in self.policy.rules if r.per == "user" and TouchClass.MARKETING in r.classes]
        counted = [*rules, decide.user_rule(prefs)]
        recorded = await self.store.cap_events(keys, counted, now)
        counts = [decide.window_usage(e, now, r.window_ms) for r, e in zip(counted, recorded, strict=True)]  # as CheckTouch
        caps = [
            CapUsage(r.rule_id, r.limit, n, r.window_ms, r.shadow, n >= r.limit > 0) for r, n in zip(counted, counts, strict=True)
        ]
        touches = await self.store.recent_touches(keys)
        hold = await self.store.hold_until(keys)
        events, _ = await self.preferences.consent_events(user_id, 20)
        return UserState(prefs, touches, caps, hold if hold > now else 0, events)
