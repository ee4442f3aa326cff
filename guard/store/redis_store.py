"""guard's storage: every key, every script, every round trip (with ``keys`` and ``connection``).

Each user's keys share one hash tag, ``{tenant:user}``, so every script touches a single slot
and runs unchanged on Redis Cluster. Driver errors become one ``StoreUnavailable`` at the
connection. ``RedisStore`` holds touches, preferences, the ledger and holds; ``FeedbackStore``
holds replies and the recovery desk; both share one ``Connection``.
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
class FirstInteraction:
    sent_at_ms: int
    strategy_id: str


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
                "channel_closed_by_law": policy.channels[touch.channel].closed_by_law,
                "default_quiet": {"start_minute": quiet.start_minute, "end_minute": quiet.end_minute,
                                  "segments": year_segments},
                "lookback_ms": policy.replies.lookback_ms, "pending_retry_ms": policy.replies.pending_retry_ms,
                "past_ms": PAST_TOLERANCE_MS, "record_ttl_ms": RECORD_TTL_MS, "index_size": INDEX_SIZE,
                "marketing_size": MARKETING_SIZE,
                "blocking": sorted(r.value for r in BLOCKING),  # the BLOCK-or-DEFER split, from the core
                "engagement": _engagement_part(policy) if Check.ENGAGEMENT in policy.classes[touch.touch_class].checks
                else None,
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
        # Why the store is not trusted ('' when it is): set by the identity check (``guard.amnesia``), read by
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
                                detail: str) -> EngagementRecorded:
        fresh, known, ch, campaign, action, strategy, sent_at, first = await self.conn.run(
            "engagement_record", [keys.touch(touch_id), keys.engagement, keys.stray_events],
            [touch_id, event, str(occurred_ms), channel, detail, str(ENGAGEMENT_TTL_MS)])
        return EngagementRecorded(bool(int(fresh)), bool(int(known)), str(ch), str(campaign), str(action),
                                  str(strategy), int(float(sent_at or 0)), bool(int(first)))

    async def touch_known(self, keys: UserKeys, touch_id: str) -> bool:
        return bool(await self.conn.execute("EXISTS", keys.touch(touch_id)))

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


# A reply's record (score, label, action) outlives its words (the policy's replies.retention) by this much.
REPLY_RECORD_AFTER_TEXT_MS = 365 * 86_400_000
SUPPORT_GROUP = "support"


@dataclass(frozen=True)
class ScoreApplied:
    fresh: bool  # this call applied the score (False: someone had already)
    label: str
    negative: float
    action: str  # none, hold, opt_out, opt_in
    task_id: str
    task_is_new: bool


class FeedbackStore:
    """Replies, holds and the recovery desk of one tenant; shares the store's connection."""

    def __init__(self, store: RedisStore, tenant: str) -> None:
        self.store = store
        self.conn = store.conn
        self.client: Any = store.client  # redis-py's own annotations are looser than its answers
        self.tenant = TenantKeys(tenant)

    async def record_reply(
        self, keys: UserKeys, reply_id: str, received_ms: int, fields: dict[str, str], text_retention_ms: int,
        *, interaction: bool = True,
    ) -> dict[str, str] | FirstInteraction | None:
        """The stored fields when this reply_id was known (nothing changes then); else None, or, when the reply
        was the first interaction with the touch it answers, that touch's send time and strategy.

        A reply is an interaction (the user is back in the first engagement tier) unless ``interaction`` is off.
        """
        flat = [x for kv in fields.items() for x in kv]
        args = [reply_id, str(received_ms), str(text_retention_ms + REPLY_RECORD_AFTER_TEXT_MS),
                "1" if interaction else "0", *flat]
        replied_to = keys.touch(fields.get("touch", ""))  # touch:"" never exists: no touch, nothing marked
        status, known = await self.conn.run("record_reply", [keys.reply(reply_id), keys.replies, keys.unscored,
                                                             keys.engagement, replied_to], args)
        if status == "exists":
            pairs = json.loads(known)
            return dict(zip(pairs[::2], pairs[1::2], strict=True))
        first, sent, strategy = json.loads(known)
        if int(first):  # the first interaction with that touch: its campaign counts it in the hour it went out
            return FirstInteraction(int(float(sent)), str(strategy))
        member = f"{keys.user_id} {reply_id}"
        await self.conn.pipeline([("ZADD", self.tenant.pending_replies, received_ms, member),
                                  ("ZADD", self.tenant.reply_texts, received_ms, member)])
        return None

    async def forget_texts(self, received_before_ms: int, now_ms: int, limit: int = 500) -> int:
        """Drop the words of replies that came before ``received_before_ms`` (retention); how many were dropped."""
        rows = await self.conn.execute("ZRANGEBYSCORE", self.tenant.reply_texts, "-inf", f"({received_before_ms}",
                                       "LIMIT", 0, limit)
        pairs = [str(r).split(" ", 1) for r in rows]
        calls = [([UserKeys(self.tenant.tenant, p[0]).reply(p[1])], [str(now_ms)]) for p in pairs if len(p) == 2]
        answers = await self.conn.run_many("reply_forget", calls) if calls else []
        failed = [a for a in answers if isinstance(a, Exception)]
        if failed:
            raise failed[0]
        if rows:
            await self.conn.execute("ZREM", self.tenant.reply_texts, *rows)
        return sum(int(a) for a in answers)

    async def trim_tasks(self, created_before_ms: int, limit: int = 500) -> int:
        """Delete resolved tasks opened before ``created_before_ms`` (retention); how many went."""
        t = self.tenant
        ids = [str(i) for i in await self.conn.execute("ZRANGEBYSCORE", t.task_index, "-inf", f"({created_before_ms}",
                                                       "LIMIT", 0, limit)]
        done = 0
        for task_id in ids:
            done += int(await self.conn.run("task_trim", [t.task(task_id), t.task_replies(task_id), t.task_index,
                                                          t.task_stream], [task_id]))
        return done

    async def reply(self, keys: UserKeys, reply_id: str) -> dict[str, str]:
        return dict(await self.conn.execute("HGETALL", keys.reply(reply_id)) or {})

    async def unscored(self, keys: UserKeys, since_ms: int) -> list[str]:
        rows = await self.conn.execute("ZRANGEBYSCORE", keys.unscored, since_ms, "+inf")
        return [str(r) for r in rows]

    async def apply_score(self, keys: UserKeys, reply_id: str, label: str, negative: float, threshold: float,
                          hold_ms: int, new_task_id: str, now_ms: int) -> ScoreApplied:
        args = [reply_id, label, repr(negative), repr(threshold), str(hold_ms), new_task_id, str(now_ms)]
        out = await self.conn.run("apply_score", [keys.reply(reply_id), keys.unscored, keys.hold, keys.open_task], args)
        fresh, lab, neg, action, task, is_new = out
        if action != "hold":  # a held reply stays on the sweep's queue until it is on its task
            await self.drop_pending(keys, reply_id)
        return ScoreApplied(bool(int(fresh)), str(lab), float(neg), str(action), str(task), bool(int(is_new)))

    async def drop_pending(self, keys: UserKeys, reply_id: str) -> None:
        """Take a reply off the sweep's queue (scored, or gone)."""
        await self.conn.execute("ZREM", self.tenant.pending_replies, f"{keys.user_id} {reply_id}")

    async def first_time(self, keys: UserKeys, figure: str, campaign_id: str, keep_ms: int) -> bool:
        """Whether this is the first time the user counts in the campaign's ``figure`` (remembered ``keep_ms``)."""
        return bool(await self.conn.execute("SET", keys.harmed(figure, campaign_id), "1", "NX", "PX", keep_ms))

    async def pending_count(self) -> int:
        return int(await self.conn.execute("ZCARD", self.tenant.pending_replies) or 0)

    async def pending(self, limit: int) -> list[tuple[str, str]]:
        rows = await self.conn.execute("ZRANGE", self.tenant.pending_replies, 0, limit - 1)
        pairs = [str(r).split(" ", 1) for r in rows]
        return [(p[0], p[1]) for p in pairs if len(p) == 2]

    async def last_touch(self, keys: UserKeys) -> tuple[str, int, bool, str] | None:
        """(campaign, time, high-value mark, strategy) of the user's most recent recorded touch."""
        rows = await self.conn.execute("ZREVRANGE", keys.touch_index, 0, 0, "WITHSCORES", withscores=True)
        if not rows:
            return None
        touch_id, at = rows[0]
        campaign, hv, strategy = await self.conn.execute("HMGET", keys.touch(str(touch_id)), "campaign", "hv",
                                                         "strategy")
        return (str(campaign or ""), int(at), hv == "1", str(strategy or ""))

    async def touch_facts(self, keys: UserKeys, touch_id: str) -> tuple[str, bool, str]:
        """(campaign, high-value mark, strategy) of one recorded touch; ("", False, "") when unknown."""
        campaign, hv, strategy = await self.conn.execute("HMGET", keys.touch(touch_id), "campaign", "hv", "strategy")
        return str(campaign or ""), hv == "1", str(strategy or "")

    # -- the recovery desk ----------------------------------------------------------------

    async def ensure_group(self) -> None:
        try:
            await self.conn.call(lambda: self.client.xgroup_create(self.tenant.task_stream, SUPPORT_GROUP, id="0",
                                                                        mkstream=True))
        except StoreUnavailable as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def create_task(self, task_id: str, created_ms: int, first_reply_id: str, fields: dict[str, str]) -> bool:
        flat = [x for kv in fields.items() for x in kv]
        t = self.tenant
        done = await self.conn.run("task_create", [t.task(task_id), t.task_index, t.task_stream, t.task_replies(task_id)],
                                   [task_id, str(created_ms), first_reply_id, *flat])
        return bool(done)

    async def append_to_task(self, task_id: str, reply: dict[str, Any], keep: int) -> str:
        """'appended', 'present' (filed before), 'resolved', or 'missing' (the task is not published yet).

        The task lists its newest ``keep`` replies in full and counts the rest, so one user cannot
        grow a task (and every page that lists it) without bound.
        """
        t = self.tenant
        status = await self.conn.run("task_append", [t.task(task_id), t.task_replies(task_id)],
                                     [json.dumps(reply, ensure_ascii=False), str(reply["reply_id"]), str(keep)])
        return str(status)

    async def repoint_task(self, keys: UserKeys, reply_id: str, resolved_task_id: str, fresh_task_id: str) -> str:
        """The task a held reply belongs to once the one its user pointed at turned out resolved."""
        task = await self.conn.run("task_repoint", [keys.open_task, keys.reply(reply_id)], [resolved_task_id, fresh_task_id])
        return str(task)

    async def task(self, task_id: str) -> dict[str, str]:
        return dict(await self.conn.execute("HGETALL", self.tenant.task(task_id)) or {})

    async def tasks_before(self, max_created_ms: float, offset: int, count: int) -> list[tuple[str, int, dict[str, str]]]:
        """(task id, created ms, task hash), newest first, from ``max_created_ms`` down; one round trip."""
        async def fetch() -> list[tuple[str, int, dict[str, str]]]:
            top = "+inf" if max_created_ms == float("inf") else str(int(max_created_ms))
            rows = await self.client.zrevrangebyscore(self.tenant.task_index, top, "-inf", start=offset, num=count,
                                                      withscores=True)
            if not rows:
                return []
            async with self.client.pipeline(transaction=False) as pipe:
                for task_id, _ in rows:
                    pipe.hgetall(self.tenant.task(str(task_id)))
                hashes = await pipe.execute()
            return [(str(r[0]), int(r[1]), dict(h)) for r, h in zip(rows, hashes, strict=True)]

        return await self.conn.call(fetch)

    async def claim(self, task_id: str, agent: str, agent_key: str, now_ms: int) -> tuple[str, str]:
        t = self.tenant
        status, who = await self.conn.run("task_claim", [t.task(task_id), t.task_stream],
                                          [agent, str(now_ms), SUPPORT_GROUP, agent_key])
        return str(status), str(who)

    async def resolve(self, task_id: str, agent: str, agent_key: str, now_ms: int, outcome: str,
                      note: str) -> tuple[str, str]:
        t = self.tenant
        status, who = await self.conn.run("task_resolve", [t.task(task_id), t.task_stream],
                                          [agent, str(now_ms), SUPPORT_GROUP, outcome, note, agent_key])
        return str(status), str(who)

    async def task_closed(self, keys: UserKeys, task_id: str, lift_hold: bool) -> bool:
        """Release the user from this task (and lift the hold if asked); False when another task holds them."""
        held = await self.conn.run("task_closed", [keys.open_task, keys.hold], [task_id, "1" if lift_hold else "0"])
        return bool(held)

    async def read_new(self, consumer: str, block_ms: int) -> list[tuple[str, str]]:
        """(stream id, task id) delivered to this consumer for the first time."""
        rows = await self.conn.call(lambda: self.client.xreadgroup(
            SUPPORT_GROUP, consumer, {self.tenant.task_stream: ">"}, count=10, block=block_ms))
        out = []
        for _stream, entries in rows or []:
            out += [(str(entry_id), str(fields.get("task_id", ""))) for entry_id, fields in entries]
        return out

    async def stream_end(self) -> str:
        """The id of the desk stream's newest entry ('0-0' when empty): where a live view starts reading."""
        rows = await self.conn.execute("XREVRANGE", self.tenant.task_stream, "+", "-", "COUNT", 1)
        return str(rows[0][0]) if rows else "0-0"

    async def stream_after(self, last_id: str, block_ms: int) -> list[tuple[str, str]]:
        """(stream id, task id) added after ``last_id``, read without a consumer group: a view, not a claim."""
        rows = await self.conn.call(lambda: self.client.xread({self.tenant.task_stream: last_id}, count=50, block=block_ms))
        out = []
        for _stream, entries in rows or []:
            out += [(str(entry_id), str(fields.get("task_id", ""))) for entry_id, fields in entries]
        return out

    async def reclaim(self, consumer: str, idle_ms: int) -> list[tuple[str, str]]:
        """Tasks another watcher received and nobody claimed within ``idle_ms``: now this consumer's."""
        result = await self.conn.call(lambda: self.client.xautoclaim(
            self.tenant.task_stream, SUPPORT_GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=10))
        entries = result[1] if result else []
        return [(str(entry_id), str(fields.get("task_id", ""))) for entry_id, fields in entries if fields]

    async def ack(self, stream_id: str) -> None:
        await self.conn.execute("XACK", self.tenant.task_stream, SUPPORT_GROUP, stream_id)
