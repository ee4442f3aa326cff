"""The only module that talks to Redis: every key, every script, every round trip.

Each user's keys share one hash tag, ``{tenant:user}``, so every script touches
a single slot and runs unchanged on Redis Cluster. Driver errors become one
``StoreUnavailable`` at this boundary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from guard import metrics
from guard.domain.decide import USER_RULE_ID, USER_RULE_WINDOW_MS
from guard.domain.types import CapUsage, Outcome, Reason, RuleCheck, Verdict
from guard.errors import StaleVersion, StoreUnavailable

T = TypeVar("T")

# How long a recorded touch is remembered for idempotency and CancelTouch.
RECORD_TTL_MS = 35 * 86_400_000
# How far into the past send_at may lie; cap events older than a window plus this are trimmed.
PAST_TOLERANCE_MS = 86_400_000
INDEX_SIZE = 200


# A check script that starts later than this share of the caller's timeout records nothing: its
# answer would come too late to be heard, and a sender told DEFER must not find the touch counted.
DEADLINE_SHARE = 0.8


def _script(name: str) -> str:
    return resources.files("guard.store").joinpath(f"lua/{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class UserKeys:
    """Every key of one user. The braces make Redis Cluster hash them to one slot."""

    tenant: str
    user_id: str

    def _k(self, suffix: str) -> str:
        return f"guard:{{{self.tenant}:{self.user_id}}}:{suffix}"

    @property
    def prefs(self) -> str:
        return self._k("prefs")

    @property
    def consent(self) -> str:
        return self._k("consent")

    @property
    def hold(self) -> str:
        return self._k("hold")

    @property
    def touch_index(self) -> str:
        return self._k("touches")

    def touch(self, touch_id: str) -> str:
        return self._k(f"touch:{touch_id}")

    def cap(self, rule_key: str) -> str:
        return self._k(rule_key)

    @property
    def replies(self) -> str:
        return self._k("replies")

    @property
    def unscored(self) -> str:
        return self._k("unscored")

    @property
    def open_task(self) -> str:
        return self._k("open_task")

    def reply(self, reply_id: str) -> str:
        return self._k(f"reply:{reply_id}")


@dataclass(frozen=True)
class TenantKeys:
    """Keys shared by a tenant (the recovery desk, campaign counters): one slot per tenant."""

    tenant: str

    def _k(self, suffix: str) -> str:
        return f"guard:{{{self.tenant}}}:{suffix}"

    @property
    def task_stream(self) -> str:
        return self._k("tasks:stream")

    @property
    def task_index(self) -> str:
        return self._k("tasks:index")

    @property
    def pending_replies(self) -> str:
        return self._k("replies:pending")

    def task(self, task_id: str) -> str:
        return self._k(f"task:{task_id}")

    def task_replies(self, task_id: str) -> str:
        """The ids of every reply ever filed on a task (the task itself lists only the newest)."""
        return self._k(f"task:{task_id}:replies")

    def campaign(self, campaign_id: str) -> str:
        return self._k(f"campaign:{campaign_id}")


@dataclass(frozen=True)
class TouchPlan:
    """What the check script needs besides the user's stored state."""

    keys: UserKeys
    now_ms: int
    at_ms: int
    touch_id: str
    dry_run: bool
    checks: Sequence[str]
    channel: str
    category: str
    campaign_id: str
    touch_class: str
    channel_default: bool
    category_default: bool
    channel_closed_by_law: bool
    default_quiet: dict[str, Any]  # {"tz", "start", "end", "segs"}
    rules: Sequence[RuleCheck]
    user_rule_key: str | None  # the user's own weekly maximum, counted for marketing
    high_value: bool = False
    lookback_ms: int = 3 * 86_400_000  # unscored replies this recent hold marketing back
    pending_retry_ms: int = 60_000


@dataclass(frozen=True)
class StoredTouch:
    touch_id: str
    channel: str
    category: str
    campaign_id: str
    touch_class: str
    at_ms: int


class RedisStore:
    def __init__(self, client: aioredis.Redis, *, timeout_s: float = 1.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._check = client.register_script(_script("check_touch"))
        self._cancel = client.register_script(_script("cancel_touch"))
        self._update = client.register_script(_script("update_preferences"))
        self._record_reply = client.register_script(_script("record_reply"))
        self._apply_score = client.register_script(_script("apply_score"))
        self._task_create = client.register_script(_script("task_create"))
        self._task_append = client.register_script(_script("task_append"))
        self._task_claim = client.register_script(_script("task_claim"))
        self._task_resolve = client.register_script(_script("task_resolve"))
        self._task_closed = client.register_script(_script("task_closed"))
        self._task_repoint = client.register_script(_script("task_repoint"))

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> RedisStore:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True,
            health_check_interval=10,
        )
        return cls(client, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.client.aclose()

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        """Every Redis call passes here: driver errors become StoreUnavailable, counted once."""
        try:
            return await call()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreUnavailable(f"redis unreachable: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreUnavailable(f"redis error: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._guarded(self.client.ping))
        except StoreUnavailable:
            return False

    # -- touches ---------------------------------------------------------------------------

    async def check_touch(self, plan: TouchPlan) -> Outcome:
        """One round trip: decide, and record when allowed and not a dry run."""
        rules: list[dict[str, Any]] = [
            {"id": r.rule_id, "limit": r.limit, "window": r.window_ms, "shadow": r.shadow, "user": False}
            for r in plan.rules
        ]
        cap_keys = [plan.keys.cap(r.key) for r in plan.rules]
        if plan.user_rule_key is not None:
            rules.append({"id": USER_RULE_ID, "limit": -1, "window": USER_RULE_WINDOW_MS, "shadow": False, "user": True})
            cap_keys.append(plan.keys.cap(plan.user_rule_key))
        args = {
            "t": plan.at_ms, "now": plan.now_ms, "touch_id": plan.touch_id, "dry": plan.dry_run,
            "checks": {c: True for c in plan.checks}, "channel": plan.channel, "category": plan.category,
            "campaign": plan.campaign_id, "class": plan.touch_class, "channel_default": plan.channel_default,
            "category_default": plan.category_default, "channel_legal": plan.channel_closed_by_law,
            "quiet": plan.default_quiet, "rules": rules, "past_ms": PAST_TOLERANCE_MS,
            "record_ttl": RECORD_TTL_MS, "index_size": INDEX_SIZE,
            "lookback": plan.lookback_ms, "pending_retry": plan.pending_retry_ms, "hv": "1" if plan.high_value else "0",
            "deadline": time.time_ns() // 1_000_000 + int(self.timeout_s * 1000 * DEADLINE_SHARE),
        }
        keys = [plan.keys.prefs, plan.keys.touch(plan.touch_id), plan.keys.hold, plan.keys.touch_index,
                plan.keys.unscored, *cap_keys]
        kind, payload = await self._guarded(lambda: self._check(keys=keys, args=[json.dumps(args)]))
        if kind == "late":
            metrics.STORE_ERRORS.inc()
            raise StoreUnavailable("redis ran the check after the caller's deadline; nothing was recorded")
        return outcome_from_script(payload, replayed=kind == "replay", at_ms=plan.at_ms)

    async def cancel_touch(self, keys: UserKeys, touch_id: str) -> bool:
        done = await self._guarded(
            lambda: self._cancel(keys=[keys.touch(touch_id), keys.touch_index], args=[touch_id]))
        return bool(done)

    async def recent_touches(self, keys: UserKeys, limit: int = 20) -> list[StoredTouch]:
        ids: list[str] = list(await self._guarded(lambda: self.client.zrevrange(keys.touch_index, 0, limit - 1)))  # type: ignore[arg-type, return-value]
        if not ids:
            return []

        async def fetch() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for touch_id in ids:
                    pipe.hgetall(keys.touch(touch_id))
                return list(await pipe.execute())

        rows = await self._guarded(fetch)
        out = []
        for touch_id, row in zip(ids, rows, strict=True):
            if row and row.get("state") == "recorded":
                out.append(StoredTouch(touch_id, row.get("channel", ""), row.get("category", ""),
                                       row.get("campaign", ""), row.get("class", ""), int(float(row.get("at", 0)))))
        return out

    async def cap_counts(self, keys: UserKeys, rules: Sequence[RuleCheck], now_ms: int) -> list[int]:
        async def fetch() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for rule in rules:
                    pipe.zcount(keys.cap(rule.key), f"({now_ms - rule.window_ms}", now_ms)
                return list(await pipe.execute())

        return [int(n) for n in await self._guarded(fetch)]

    # -- preferences and the consent ledger ----------------------------------------------

    async def read_preferences(self, keys: UserKeys) -> dict[str, Any]:
        raw = await self._guarded(lambda: self.client.get(keys.prefs))
        return json.loads(raw) if raw else {}

    async def write_preferences(
        self, keys: UserKeys, read_version: int, expected_version: int | None,
        doc: dict[str, Any], events: Sequence[dict[str, str]],
    ) -> bool:
        """Compare-and-set; False when someone else wrote since ``read_version`` (read again)."""
        flat = [[x for kv in e.items() for x in kv] for e in events]
        args = [str(read_version), str(-1 if expected_version is None else expected_version),
                json.dumps(doc, ensure_ascii=False), json.dumps(flat, ensure_ascii=False)]
        status, current = await self._guarded(lambda: self._update(keys=[keys.prefs, keys.consent], args=args))
        if status == "stale":
            raise StaleVersion(int(current))
        return bool(status == "ok")

    async def consent_events(self, keys: UserKeys, count: int, before: str | None) -> list[tuple[str, dict[str, str]]]:
        """Newest first; ``before`` is an exclusive stream id (the page token)."""
        top = f"({before}" if before else "+"
        rows: list[Any] = await self._guarded(lambda: self.client.xrevrange(keys.consent, top, "-", count=count))  # type: ignore[arg-type, return-value]
        return [(str(entry_id), dict(fields)) for entry_id, fields in rows or []]

    async def hold_until(self, keys: UserKeys) -> int:
        raw = await self._guarded(lambda: self.client.get(keys.hold))
        return int(raw) if raw else 0


def outcome_from_script(payload: str, *, replayed: bool, at_ms: int) -> Outcome:
    data = json.loads(payload)
    reasons = data.get("r") or []
    caps = data.get("caps") or []
    retry = data.get("ra", -1)
    return Outcome(
        verdict=Verdict(data["v"]),
        reasons=tuple(Reason(r) for r in reasons),
        retry_at_ms=None if retry is None or retry < 0 else int(retry),
        caps=tuple(CapUsage(c[0], int(c[1]), int(c[2]), int(c[3]), bool(c[4]), bool(c[5])) for c in caps),
        detail="",
        recorded=bool(data.get("rec")),
        replayed=replayed,
        evaluated_at_ms=at_ms,
    )


REPLY_RETENTION_MS = 90 * 86_400_000
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
    """Replies, holds and the recovery desk; shares the client and the boundary of RedisStore."""

    def __init__(self, store: RedisStore, tenant: str) -> None:
        self.store = store
        self.client: Any = store.client  # redis-py's own annotations are looser than its answers
        self.tenant = TenantKeys(tenant)

    async def record_reply(
        self, keys: UserKeys, reply_id: str, received_ms: int, fields: dict[str, str]
    ) -> dict[str, str] | None:
        """None when stored now; the stored fields when this reply_id was known."""
        flat = [x for kv in fields.items() for x in kv]
        args = [reply_id, str(received_ms), str(REPLY_RETENTION_MS), *flat]
        status, known = await self.store._guarded(
            lambda: self.store._record_reply(keys=[keys.reply(reply_id), keys.replies, keys.unscored], args=args))
        if status == "exists":
            pairs = json.loads(known)
            return dict(zip(pairs[::2], pairs[1::2], strict=True))
        await self.store._guarded(lambda: self.client.zadd(self.tenant.pending_replies,
                                                           {f"{keys.user_id} {reply_id}": received_ms}))
        return None

    async def reply(self, keys: UserKeys, reply_id: str) -> dict[str, str]:
        return dict(await self.store._guarded(lambda: self.client.hgetall(keys.reply(reply_id))))

    async def unscored(self, keys: UserKeys, since_ms: int) -> list[str]:
        rows = await self.store._guarded(lambda: self.client.zrangebyscore(keys.unscored, since_ms, "+inf"))
        return [str(r) for r in rows]

    async def apply_score(self, keys: UserKeys, reply_id: str, label: str, negative: float, threshold: float,
                          hold_ms: int, new_task_id: str, now_ms: int) -> ScoreApplied:
        args = [reply_id, label, repr(negative), repr(threshold), str(hold_ms), new_task_id, str(now_ms)]
        out = await self.store._guarded(lambda: self._apply(keys, args))
        fresh, lab, neg, action, task, is_new = out
        if action != "hold":  # a held reply stays on the sweep's queue until it is on its task
            await self.drop_pending(keys, reply_id)
        return ScoreApplied(bool(int(fresh)), str(lab), float(neg), str(action), str(task), bool(int(is_new)))

    async def drop_pending(self, keys: UserKeys, reply_id: str) -> None:
        """Take a reply off the sweep's queue (scored, or gone)."""
        await self.store._guarded(lambda: self.client.zrem(self.tenant.pending_replies, f"{keys.user_id} {reply_id}"))

    async def _apply(self, keys: UserKeys, args: list[str]) -> Any:
        return await self.store._apply_score(keys=[keys.reply(args[0]), keys.unscored, keys.hold, keys.open_task], args=args)

    async def pending(self, limit: int) -> list[tuple[str, str]]:
        rows = await self.store._guarded(lambda: self.client.zrange(self.tenant.pending_replies, 0, limit - 1))
        pairs = [str(r).split(" ", 1) for r in rows]
        return [(p[0], p[1]) for p in pairs if len(p) == 2]

    async def last_touch(self, keys: UserKeys) -> tuple[str, int, bool] | None:
        """(campaign, time, high-value mark) of the user's most recent recorded touch."""
        rows = await self.store._guarded(lambda: self.client.zrevrange(keys.touch_index, 0, 0, withscores=True))
        if not rows:
            return None
        touch_id, at = rows[0]
        campaign, hv = await self.store._guarded(lambda: self.client.hmget(keys.touch(str(touch_id)), "campaign", "hv"))
        return (str(campaign or ""), int(at), hv == "1")

    async def touch_facts(self, keys: UserKeys, touch_id: str) -> tuple[str, bool]:
        """(campaign, high-value mark) of one recorded touch; ("", False) when unknown."""
        campaign, hv = await self.store._guarded(lambda: self.client.hmget(keys.touch(touch_id), "campaign", "hv"))
        return str(campaign or ""), hv == "1"

    async def count_campaign(self, campaign_id: str, field_name: str) -> None:
        await self.store._guarded(lambda: self.client.hincrby(self.tenant.campaign(campaign_id), field_name, 1))

    async def campaign_counters(self, campaign_id: str) -> dict[str, int]:
        raw = await self.store._guarded(lambda: self.client.hgetall(self.tenant.campaign(campaign_id)))
        return {str(k): int(v) for k, v in dict(raw).items()}

    # -- the recovery desk ----------------------------------------------------------------

    async def ensure_group(self) -> None:
        try:
            await self.store._guarded(lambda: self.client.xgroup_create(self.tenant.task_stream, SUPPORT_GROUP, id="0",
                                                                        mkstream=True))
        except StoreUnavailable as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def create_task(self, task_id: str, created_ms: int, first_reply_id: str, fields: dict[str, str]) -> bool:
        flat = [x for kv in fields.items() for x in kv]
        t = self.tenant
        done = await self.store._guarded(lambda: self.store._task_create(
            keys=[t.task(task_id), t.task_index, t.task_stream, t.task_replies(task_id)],
            args=[task_id, str(created_ms), first_reply_id, *flat]))
        return bool(done)

    async def append_to_task(self, task_id: str, reply: dict[str, Any], keep: int) -> str:
        """'appended', 'present' (filed before), 'resolved', or 'missing' (the task is not published yet).

        The task lists its newest ``keep`` replies in full and counts the rest, so one user cannot
        grow a task (and every page that lists it) without bound.
        """
        t = self.tenant
        status = await self.store._guarded(lambda: self.store._task_append(
            keys=[t.task(task_id), t.task_replies(task_id)],
            args=[json.dumps(reply, ensure_ascii=False), str(reply["reply_id"]), str(keep)]))
        return str(status)

    async def repoint_task(self, keys: UserKeys, reply_id: str, resolved_task_id: str, fresh_task_id: str) -> str:
        """The task a held reply belongs to once the one its user pointed at turned out resolved."""
        task = await self.store._guarded(lambda: self.store._task_repoint(
            keys=[keys.open_task, keys.reply(reply_id)], args=[resolved_task_id, fresh_task_id]))
        return str(task)

    async def task(self, task_id: str) -> dict[str, str]:
        return dict(await self.store._guarded(lambda: self.client.hgetall(self.tenant.task(task_id))))

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

        return await self.store._guarded(fetch)

    async def claim(self, task_id: str, agent: str, now_ms: int) -> tuple[str, str]:
        t = self.tenant
        status, who = await self.store._guarded(lambda: self.store._task_claim(
            keys=[t.task(task_id), t.task_stream], args=[agent, str(now_ms), SUPPORT_GROUP]))
        return str(status), str(who)

    async def resolve(self, task_id: str, agent: str, now_ms: int, outcome: str, note: str) -> tuple[str, str]:
        t = self.tenant
        status, who = await self.store._guarded(lambda: self.store._task_resolve(
            keys=[t.task(task_id), t.task_stream], args=[agent, str(now_ms), SUPPORT_GROUP, outcome, note]))
        return str(status), str(who)

    async def task_closed(self, keys: UserKeys, task_id: str, lift_hold: bool) -> bool:
        """Release the user from this task (and lift the hold if asked); False when another task holds them."""
        held = await self.store._guarded(lambda: self.store._task_closed(keys=[keys.open_task, keys.hold],
                                                                         args=[task_id, "1" if lift_hold else "0"]))
        return bool(held)

    async def read_new(self, consumer: str, block_ms: int) -> list[tuple[str, str]]:
        """(stream id, task id) delivered to this consumer for the first time."""
        rows = await self.store._guarded(lambda: self.client.xreadgroup(
            SUPPORT_GROUP, consumer, {self.tenant.task_stream: ">"}, count=10, block=block_ms))
        out = []
        for _stream, entries in rows or []:
            out += [(str(entry_id), str(fields.get("task_id", ""))) for entry_id, fields in entries]
        return out

    async def reclaim(self, consumer: str, idle_ms: int) -> list[tuple[str, str]]:
        """Tasks another watcher received and nobody claimed within ``idle_ms``: now this consumer's."""
        result = await self.store._guarded(lambda: self.client.xautoclaim(
            self.tenant.task_stream, SUPPORT_GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=10))
        entries = result[1] if result else []
        return [(str(entry_id), str(fields.get("task_id", ""))) for entry_id, fields in entries if fields]

    async def ack(self, stream_id: str) -> None:
        await self.store._guarded(lambda: self.client.xack(self.tenant.task_stream, SUPPORT_GROUP, stream_id))
