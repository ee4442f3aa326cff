"""guard's storage: every key, every script, every round trip (with ``keys`` and ``connection``).

Each user's keys share one hash tag, ``{tenant:user}``, so every script touches a single slot
and runs unchanged on Redis Cluster. Driver errors become one ``StoreUnavailable`` at the
connection. ``RedisStore`` holds touches, preferences, the ledger, engagement and holds;
``store.replies.ReplyStore`` holds replies and ``store.desk.DeskStore`` the recovery desk; all
three share one ``Connection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from guard import metrics
from guard.domain import clock
from guard.domain.decide import USER_RULE_ID, USER_RULE_WINDOW_MS
from guard.domain.timing import DEFAULT_TIMING, TimingPolicy
from guard.domain.types import BLOCKING, CapUsage, Check, Outcome, Reason, RuleCheck, Touch, TouchClass, Verdict
from guard.errors import StaleVersion, StoreUnavailable
from guard.policy import Policy
from guard.store.connection import Connection
from guard.store.keys import TenantKeys, UserKeys
from guard.store.target import Target

# How long a recorded touch is remembered for idempotency and CancelTouch.
RECORD_TTL_MS = 35 * 86_400_000
# How far into the past send_at may lie; cap events older than a window plus this are trimmed.
PAST_TOLERANCE_MS = 86_400_000
INDEX_SIZE = 200
# How long a user's engagement records (last interaction, calibration, its audit, unmatched events) live.
ENGAGEMENT_TTL_MS = 12 * RECORD_TTL_MS
# A user's newest marketing touches kept for the engagement tiers: deeper than any tier's run, and than any
# tier cap's limit, so the count and the windows stay exact.
MARKETING_SIZE = 64
# A check script that starts later than this share of the caller's timeout records nothing: its
# answer would come too late to be heard, and a sender told DEFER must not find the touch counted.
DEADLINE_SHARE = 0.8


class ZoneNeeded(Exception):
    """The user's own quiet hours are in a zone whose offsets the caller did not send; nothing was done."""

    def __init__(self, time_zone: str) -> None:
        super().__init__(time_zone)
        self.time_zone = time_zone


@dataclass(frozen=True)
class StoredTouch:
    touch_id: str
    channel: str
    category: str
    campaign_id: str
    touch_class: str
    at_ms: int


@dataclass(frozen=True)
class EngagementRecorded:
    fresh: bool  # first time for this (touch, event)
    known: bool  # the touch is one guard recorded
    channel: str
    campaign_id: str
    action: str  # none, interaction, deliverable, undeliverable
    strategy_id: str = ""
    sent_at_ms: int = 0  # when the touch was sent (0: unknown touch)
    first_interaction: bool = False  # the first open, click or conversion of this touch


class _Parts:
    """The policy's part of the check script's arguments, encoded once per class, channel, category and year."""

    def __init__(self) -> None:
        self.policy: Policy | None = None
        self.cache: dict[tuple[TouchClass, str, str, int], str] = {}

    def get(self, policy: Policy, touch: Touch) -> str:
        if policy is not self.policy:
            self.policy, self.cache = policy, {}
        year_segments = clock.segments_for(policy.default_quiet.time_zone, touch.at_ms)
        key = (touch.touch_class, touch.channel, touch.category, year_segments[0][0])
        encoded = self.cache.get(key)
        if encoded is None:
            quiet = policy.default_quiet
            encoded = json.dumps({
                "checks": {c.value: True for c in policy.classes[touch.touch_class].checks},
                "channel_default": policy.channels[touch.channel].default_opt_in,
                "category_default": policy.categories[touch.category],
                "channel_scope_before": policy.channels[touch.channel].scope_before,
                "default_quiet": {"start_minute": quiet.start_minute, "end_minute": quiet.end_minute,
                                  "segments": year_segments},
                "lookback_ms": policy.replies.lookback_ms, "pending_retry_ms": policy.replies.pending_retry_ms,
                "past_ms": PAST_TOLERANCE_MS, "record_ttl_ms": RECORD_TTL_MS, "index_size": INDEX_SIZE,
                "marketing_size": MARKETING_SIZE,
                "blocking": sorted(r.value for r in BLOCKING),  # the BLOCK-or-DEFER split, from the core
                "engagement": _engagement_part(policy) if Check.ENGAGEMENT in policy.classes[touch.touch_class].checks
                else None,
                "timing": {"min_interactions": policy.timing.min_interactions,
                           "half_life_ms": policy.timing.half_life_ms}
                if Check.BEST_TIME in policy.classes[touch.touch_class].checks else None,
            })
            self.cache[key] = encoded
        return encoded


def _engagement_part(policy: Policy) -> dict[str, Any]:
    e = policy.engagement
    return {"ignore_after_ms": e.ignore_after_ms,
            "tiers": [{"name": t.name, "after_ignored": t.after_ignored, "shadow": t.shadow,
                       "rules": [{"rule_id": r.rule_id, "limit": r.limit, "window_ms": r.window_ms} for r in t.rules]}
                      for t in e.tiers]}


DURABILITY = ("local", "replica", "aof")


class NotDurable(StoreUnavailable):
    """A touch was recorded but not copied as GUARD_REDIS_DURABILITY asks in time: it was taken back."""


class RedisStore:
    def __init__(self, conn: Connection, *, durability: str = "local") -> None:
        if durability not in DURABILITY:
            raise ValueError(f"GUARD_REDIS_DURABILITY: one of {', '.join(DURABILITY)} is expected, got {durability[:32]!r}")
        self.conn = conn
        self.durability = durability
        # Why the store is not trusted ('' when it is): set by the identity check (``guard.store.amnesia``), read by
        # every CheckTouch without a round trip.
        self.reset_reason = ""
        self._parts = _Parts()

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> RedisStore:
        return cls(Connection.from_url(url, timeout_s=timeout_s))

    @classmethod
    def to(cls, where: Target, *, timeout_s: float = 1.0, durability: str = "local") -> RedisStore:
        return cls(Connection.to(where, timeout_s=timeout_s), durability=durability)

    @property
    def client(self) -> Any:
        """The driver, for tests and tools that look at Redis directly."""
        return self.conn.client

    async def close(self) -> None:
        await self.conn.close()

    async def ping(self) -> bool:
        return await self.conn.ping()

    # -- touches ---------------------------------------------------------------------------

    async def check_touch(self, keys: UserKeys, touch: Touch, policy: Policy, now_ms: int,
                          zone: tuple[str, clock.Segments] | None = None, *, braked: bool = False) -> Outcome:
        """One round trip: decide, and record when allowed and not a dry run.

        ``zone`` carries the offsets of the user's own quiet-hours zone when the caller knows it;
        a user whose zone differs raises ``ZoneNeeded`` (nothing done) so the caller can send it.
        """
        script_keys, args = self._check_call(keys, touch, policy, now_ms, zone, braked)
        outcome = _check_answer(await self.conn.run("check_touch", script_keys, args), touch)
        if outcome.recorded and not outcome.replayed and self.durability != "local":
            await self._made_durable(keys, touch)
        return outcome

    async def check_touches(self, calls: Sequence[tuple[UserKeys, Touch, tuple[str, clock.Segments] | None, bool]],
                            policy: Policy, now_ms: int) -> list[Outcome | Exception]:
        """Many checks (of different users) written as one pipeline; each answer, or the failure of that check."""
        built = [self._check_call(keys, touch, policy, now_ms, zone, braked) for keys, touch, zone, braked in calls]
        replies = await self.conn.run_many("check_touch", built)
        out: list[Outcome | Exception] = []
        for (_, touch, _, _), reply in zip(calls, replies, strict=True):
            try:
                out.append(_check_answer(reply, touch))
            except Exception as exc:  # each check fails alone: a late or zone-less one is one answer, not the batch
                out.append(exc)
        if self.durability != "local":
            fresh = [i for i, o in enumerate(out) if isinstance(o, Outcome) and o.recorded and not o.replayed]
            made = await asyncio.gather(*(self._made_durable(calls[i][0], calls[i][1]) for i in fresh),
                                        return_exceptions=True)
            for i, result in zip(fresh, made, strict=True):
                if isinstance(result, Exception):
                    out[i] = result
        return out

    async def _made_durable(self, keys: UserKeys, touch: Touch) -> None:
        """Wait until the recorded touch is as durable as GUARD_REDIS_DURABILITY asks; if it is not within half the
        Redis timeout, take it back (best effort) and raise ``NotDurable``: the caller answers its fail mode."""
        timeout_ms = max(1, int(self.conn.timeout_s * 500))
        try:
            if await self.conn.copies_made(keys.touch(touch.touch_id), aof=self.durability == "aof",
                                           timeout_ms=timeout_ms):
                return
        except StoreUnavailable:
            pass
        with contextlib.suppress(StoreUnavailable):
            await self.cancel_touch(keys, touch.touch_id)
        where = "on a replica" if self.durability == "replica" else "on the primary's disk"
        raise NotDurable(f"the touch was not {where} within {timeout_ms} ms (GUARD_REDIS_DURABILITY="
                         f"{self.durability}); it was taken back")

    def _check_call(self, keys: UserKeys, touch: Touch, policy: Policy, now_ms: int,
                    zone: tuple[str, clock.Segments] | None, braked: bool = False) -> tuple[list[str], list[Any]]:
        rules = policy.rules_for(touch)
        user_rule = touch.touch_class is TouchClass.MARKETING
        cap_keys = [keys.cap(r) for r in rules]
        if user_rule:
            cap_keys.append(keys.cap(RuleCheck(USER_RULE_ID, "", 0, USER_RULE_WINDOW_MS)))
        mine = orjson.dumps({
            "touch_id": touch.touch_id, "channel": touch.channel, "category": touch.category,
            "campaign_id": touch.campaign_id, "strategy_id": touch.strategy_id,
            "touch_class": touch.touch_class.value, "dry_run": touch.dry_run,
            "at_ms": touch.at_ms, "high_value": touch.high_value, "now_ms": now_ms, "braked": braked,
            "timing": touch.timing,
            "deadline_ms": time.time_ns() // 1_000_000 + int(self.conn.timeout_s * 1000 * DEADLINE_SHARE),
            "rules": [{"rule_id": r.rule_id, "limit": r.limit, "window_ms": r.window_ms, "shadow": r.shadow}
                      for r in rules],
            "user_rule": {"rule_id": USER_RULE_ID, "window_ms": USER_RULE_WINDOW_MS} if user_rule else None,
            "zone": {"time_zone": zone[0], "segments": zone[1]} if zone else None,
        })
        script_keys = [keys.prefs, keys.touch(touch.touch_id), keys.hold, keys.touch_index, keys.unscored,
                       keys.marketing, keys.engagement, *cap_keys]
        return script_keys, [self._parts.get(policy, touch), mine]

    async def cancel_touch(self, keys: UserKeys, touch_id: str) -> bool:
        return bool(await self.conn.run("cancel_touch", [keys.touch(touch_id), keys.touch_index], [touch_id]))

    async def recent_touches(self, keys: UserKeys, limit: int = 20) -> list[StoredTouch]:
        ids = [str(i) for i in await self.conn.execute("ZREVRANGE", keys.touch_index, 0, limit - 1)]
        rows = await self.conn.pipeline([("HGETALL", keys.touch(touch_id)) for touch_id in ids])
        out = []
        for touch_id, row in zip(ids, rows, strict=True):
            if row and row.get("state") == "recorded":
                out.append(StoredTouch(touch_id, row.get("channel", ""), row.get("category", ""),
                                       row.get("campaign", ""), row.get("class", ""), int(float(row.get("at", 0)))))
        return out

    async def cap_events(self, keys: UserKeys, rules: Sequence[RuleCheck], now_ms: int) -> list[list[int]]:
        """Each rule's recorded touches that a window holding ``now`` can count: from ``now - window`` on, the
        ones scheduled ahead included (what the check script reads, for the same window arithmetic)."""
        rows = await self.conn.pipeline([("ZRANGEBYSCORE", keys.cap(r), f"({now_ms - r.window_ms}", "+inf", "WITHSCORES")
                                         for r in rules])
        return [[int(float(score)) for score in row[1::2]] for row in rows]

    # -- preferences and the consent ledger ----------------------------------------------

    async def read_preferences(self, keys: UserKeys) -> dict[str, Any]:
        raw = await self.conn.execute("GET", keys.prefs)
        return json.loads(raw) if raw else {}

    async def write_preferences(
        self, keys: UserKeys, read_version: int, expected_version: int | None,
        doc: dict[str, Any], events: Sequence[dict[str, str]],
    ) -> bool:
        """Compare-and-set; False when someone else wrote since ``read_version`` (read again)."""
        flat = [[x for kv in e.items() for x in kv] for e in events]
        args = [str(read_version), str(-1 if expected_version is None else expected_version),
                json.dumps(doc, ensure_ascii=False), json.dumps(flat, ensure_ascii=False)]
        status, current = await self.conn.run("update_preferences", [keys.prefs, keys.consent], args)
        if status == "stale":
            raise StaleVersion(int(current))
        return bool(status == "ok")

    async def consent_events(self, keys: UserKeys, count: int, before: str | None) -> list[tuple[str, dict[str, str]]]:
        """Newest first; ``before`` is an exclusive stream id (the page token)."""
        top = f"({before}" if before else "+"
        rows: list[Any] = await self.conn.call(lambda: self.client.xrevrange(keys.consent, top, "-", count=count))
        return [(str(entry_id), dict(fields)) for entry_id, fields in rows or []]

    # -- engagement -------------------------------------------------------------------------

    async def record_engagement(self, keys: UserKeys, touch_id: str, event: str, occurred_ms: int, channel: str,
                                detail: str, timing: TimingPolicy = DEFAULT_TIMING) -> EngagementRecorded:
        """Once per (touch, event); an interaction also moves the last interaction and the user's hours profile."""
        fresh, known, ch, campaign, action, strategy, sent_at, first = await self.conn.run(
            "engagement_record", [keys.touch(touch_id), keys.engagement, keys.stray_events],
            [touch_id, event, str(occurred_ms), channel, detail, str(ENGAGEMENT_TTL_MS), str(timing.half_life_ms),
             str(timing.profile_hours)])
        return EngagementRecorded(bool(int(fresh)), bool(int(known)), str(ch), str(campaign), str(action),
                                  str(strategy), int(float(sent_at or 0)), bool(int(first)))

    async def touch_known(self, keys: UserKeys, touch_id: str) -> bool:
        """A touch guard recorded (perhaps cancelled since); one only told to wait for its best hour is not."""
        return bool(await self.conn.execute("HEXISTS", keys.touch(touch_id), "state"))

    async def engagement(self, keys: UserKeys) -> tuple[dict[str, str], list[int]]:
        """The user's engagement hash and the times of their recorded marketing touches."""
        raw, rows = await self.conn.pipeline([("HGETALL", keys.engagement),
                                              ("ZRANGE", keys.marketing, 0, -1, "WITHSCORES")])
        return dict(raw or {}), sorted(int(float(score)) for score in rows[1::2])

    async def set_tier(self, keys: UserKeys, tier: str, until_ms: int, now_ms: int, actor: str, reason: str) -> None:
        await self.conn.run("tier_set", [keys.engagement, keys.engagement_audit],
                            [tier, str(until_ms) if tier else "", str(now_ms), actor, reason, str(ENGAGEMENT_TTL_MS)])

    async def hold_until(self, keys: UserKeys) -> int:
        raw = await self.conn.execute("GET", keys.hold)
        return int(raw) if raw else 0


def _check_answer(reply: Any, touch: Touch) -> Outcome:
    """The check script's reply as an outcome; ``StoreUnavailable`` (late) or ``ZoneNeeded`` raised."""
    if isinstance(reply, Exception):
        raise reply
    kind, payload = reply
    if kind == "late":
        metrics.STORE_ERRORS.inc()
        raise StoreUnavailable("redis ran the check after the caller's deadline; nothing was recorded")
    if kind == "zone":
        raise ZoneNeeded(str(payload))
    return outcome_from_script(payload, replayed=kind == "replay", at_ms=touch.at_ms)


def outcome_from_script(payload: str, *, replayed: bool, at_ms: int) -> Outcome:
    """The script's answer; records written before the names were spelled out (v, r, ra, rec) read too."""
    data = orjson.loads(payload)
    reasons = data.get("reasons", data.get("r")) or []
    caps = data.get("caps") or []
    retry = data.get("retry_at_ms", data.get("ra", -1))
    return Outcome(
        verdict=Verdict(data.get("verdict", data.get("v"))),
        reasons=tuple(Reason(r) for r in reasons),
        retry_at_ms=None if retry is None or retry < 0 else int(retry),
        caps=tuple(CapUsage(c[0], int(c[1]), int(c[2]), int(c[3]), bool(c[4]), bool(c[5])) for c in caps),
        detail="",
        recorded=bool(data.get("recorded", data.get("rec"))),
        replayed=replayed,
        evaluated_at_ms=at_ms,
        tier=str(data.get("tier") or ""),
    )


class TenantStore:
    """A part of one tenant's store (its replies, its desk) on the store's connection."""

    def __init__(self, store: RedisStore, tenant: str) -> None:
        self.store = store
        self.conn = store.conn
        self.client: Any = store.client  # redis-py's own annotations are looser than its answers
        self.tenant = TenantKeys(tenant)
