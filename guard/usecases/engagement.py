"""What providers report of touches (engagement events), and the manual calibration of a user's tier.

Events arrive as webhooks: late, twice, out of order. Each (touch, event) counts once; an event
for a touch guard does not know is kept against the user and counted apart, never refused
(the touch may be another system's, or its webhook may outrun it). Opens, clicks and
conversions are interactions (they bring the user back to the first tier); a spam complaint
or a provider's unsubscribe closes the channel for marketing, ledgered with its source, and a
spam complaint is held and filed on the recovery desk like a negative reply. A hard bounce
makes the channel undeliverable until a later delivery on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from guard import logs, metrics
from guard.domain import clock, timing
from guard.domain.clock import Clock
from guard.domain.engagement import ignored_in_a_row, tier_at
from guard.errors import InvalidArgument
from guard.policy import Policy
from guard.store.counters import CampaignCounters
from guard.store.keys import UserKeys
from guard.store.redis_store import RedisStore
from guard.usecases.preferences import PreferenceService, PreferencesPatch
from guard.usecases.replies import ReplyService
from guard.validate import by_user, check_id, check_name, check_text, check_word, shown

log = logs.get("guard.usecases.engagement")

EVENTS = ("DELIVERED", "OPENED", "CLICKED", "CONVERTED", "BOUNCED", "SPAM_COMPLAINT", "UNSUBSCRIBED")
CLOSING = {"SPAM_COMPLAINT": "complaint", "UNSUBSCRIBED": "list_unsubscribe"}  # event → ledger source
# The campaign figure each event adds to.
COUNTED = {"DELIVERED": "deliveries", "OPENED": "opens", "CLICKED": "clicks", "CONVERTED": "conversions",
           "BOUNCED": "bounces", "SPAM_COMPLAINT": "spam_complaints", "UNSUBSCRIBED": "list_unsubscribes"}
MAX_BATCH = 1000
MAX_AGE_MS = 400 * 86_400_000
MAX_CALIBRATION_MS = 366 * 86_400_000


@dataclass(frozen=True)
class Event:
    touch_id: str
    user_id: str
    event: str
    occurred_ms: int = 0  # 0: now
    detail: str = ""
    provider: str = ""
    channel: str = ""  # used only when the touch is unknown


@dataclass(frozen=True)
class EventResult:
    replayed: bool
    touch_known: bool
    campaign_id: str
    channel: str
    action: str  # none, interaction, channel_closed, undeliverable, deliverable
    task_id: str = ""


@dataclass(frozen=True)
class EngagementState:
    tier: str
    last_interaction_ms: int
    ignored_in_a_row: int
    override_tier: str
    override_until_ms: int
    undeliverable: tuple[str, ...]
    hours: tuple[tuple[int, float], ...] = ()  # hour of the week (UTC) → interactions there, faded to now
    interactions: float = 0.0  # every interaction, faded to now


class EngagementService:
    def __init__(self, policy: Policy, store: RedisStore, preferences: PreferenceService, replies: ReplyService,
                 counters: CampaignCounters, *, now: Clock = clock.system_clock, tenant: str = "default") -> None:
        self.policy = policy
        self.store = store
        self.preferences = preferences
        self.replies = replies
        self.counters = counters
        self.now = now
        self.tenant = tenant

    def _validate(self, e: Event, now: int, prefix: str = "") -> Event:
        check_id(e.user_id, prefix + "user_id")
        check_id(e.touch_id, prefix + "touch_id")
        if e.event not in EVENTS:
            raise InvalidArgument(prefix + "event", f"name one of {', '.join(EVENTS)}")
        if e.occurred_ms > now + 3_600_000:
            raise InvalidArgument(prefix + "occurred_at", "is in the future")
        if e.occurred_ms and e.occurred_ms < now - MAX_AGE_MS:
            raise InvalidArgument(prefix + "occurred_at", "is more than 400 days ago")
        check_text(e.detail, prefix + "detail", max_chars=128)
        check_word(e.provider, prefix + "provider", required=False)
        if e.channel and e.channel not in self.policy.channels:
            names = ", ".join(sorted(self.policy.channels))
            raise InvalidArgument(prefix + "channel", f"unknown channel {shown(e.channel)} (known: {names})")
        return Event(e.touch_id, e.user_id, e.event, e.occurred_ms or now, e.detail.strip().lower(), e.provider,
                     e.channel)

    async def record(self, event: Event) -> EventResult:
        now = self.now()
        return await self._record(self._validate(event, now))

    async def record_many(self, events: Sequence[Event]) -> list[EventResult]:
        """Each exactly as ``record``; one user's events in request order, all users at once."""
        if len(events) > MAX_BATCH:
            raise InvalidArgument("events", f"holds {len(events)} items; at most {MAX_BATCH}")
        now = self.now()
        valid = [self._validate(e, now, f"events[{i}].") for i, e in enumerate(events)]
        results: list[EventResult | None] = [None] * len(valid)

        async def one_user(indexes: list[int]) -> None:
            for i in indexes:
                results[i] = await self._record(valid[i])

        await asyncio.gather(*(one_user(ix) for ix in by_user([e.user_id for e in valid]).values()))
        return [r for r in results if r is not None]

    async def _record(self, e: Event) -> EventResult:
        keys = UserKeys(self.tenant, e.user_id)
        closing = e.event in CLOSING
        if closing and not e.channel and not await self.store.touch_known(keys, e.touch_id):
            raise InvalidArgument("channel", "is required when guard does not know the touch: a complaint or an "
                                             "unsubscribe must close a channel")
        done = await self.store.record_engagement(keys, e.touch_id, e.event, e.occurred_ms, e.channel, e.detail,
                                                  self.policy.timing)
        metrics.ENGAGEMENT_EVENTS.labels(e.event, "known" if done.known else "unknown").inc()
        if done.fresh:
            at = done.sent_at_ms or e.occurred_ms
            self.counters.add(self.tenant, done.campaign_id, COUNTED[e.event], strategy_id=done.strategy_id, at_ms=at)
            if done.first_interaction:  # counted in the hour the touch went out: what its ignore rate is over
                self.counters.add(self.tenant, done.campaign_id, "interacted", strategy_id=done.strategy_id, at_ms=at)
        action, task_id = done.action, ""
        if closing and done.channel:
            # Done again on a replay: closing a closed channel changes nothing, and a crash between storing
            # the event and closing the channel must not lose the user's wish.
            await self.preferences.update_preferences(
                e.user_id, PreferencesPatch(paths=[f"channels.{done.channel}"], channels={done.channel: False}),
                source=CLOSING[e.event], actor=f"{e.provider or 'provider'}:{e.touch_id}", expected_version=None,
                evidence={"provider": e.provider or "provider", "provider_event": f"{e.event}:{e.touch_id}"})
            action = "channel_closed"
            if e.event == "SPAM_COMPLAINT":
                task_id = await self.replies.file_complaint(e.user_id, done.channel, done.campaign_id, e.touch_id,
                                                             e.provider, e.occurred_ms)
        return EventResult(not done.fresh, done.known, done.campaign_id, done.channel, action, task_id)

    # -- the tier --------------------------------------------------------------------------------

    async def state(self, user_id: str) -> EngagementState:
        check_id(user_id, "user_id")
        raw, marketing = await self.store.engagement(UserKeys(self.tenant, user_id))
        now = self.now()
        last = int(raw.get("last_int", 0) or 0)
        override_until = int(raw.get("tier_until", 0) or 0)
        override = (raw.get("tier", ""), override_until) if raw.get("tier") and override_until > now else None
        e = self.policy.engagement
        profile = timing.parse(raw.get("hours"))
        fade = profile.faded(now, self.policy.timing.half_life_ms)
        return EngagementState(
            tier_at(e, marketing, last, now, override).name, last, ignored_in_a_row(marketing, last, now, e.ignore_after_ms),
            override[0] if override else "", override_until if override else 0,
            tuple(sorted(k.split(":", 1)[1] for k in raw if k.startswith("undeliverable:"))),
            tuple((h, round(w * fade, 4)) for h, w in sorted(profile.weights.items())), round(profile.total * fade, 4))

    async def set_tier(self, user_id: str, tier: str, until_ms: int, reason: str, actor: str) -> EngagementState:
        check_id(user_id, "user_id")
        now = self.now()
        names = [t.name for t in self.policy.engagement.tiers]
        if tier and tier not in names:
            raise InvalidArgument("tier", f"unknown tier {shown(tier)} (known: {', '.join(names)}; empty ends a "
                                          "calibration)")
        if tier and not now < until_ms <= now + MAX_CALIBRATION_MS:
            raise InvalidArgument("until", "is required with a tier: a time in the coming year")
        actor = actor.strip()
        if not actor:
            raise InvalidArgument("actor", "is required: who calibrates the tier")
        check_name(actor, "actor")
        check_text(reason, "reason", required=True)
        await self.store.set_tier(UserKeys(self.tenant, user_id), tier, until_ms, now, actor, reason)
        log.info("engagement_tier_set", tier=tier or "(computed)", actor=actor)
        return await self.state(user_id)
