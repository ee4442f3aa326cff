"""The only module that talks to Redis: every key, every script, every round trip.

Each user's keys share one hash tag, ``{tenant:user}``, so every script touches
a single slot and runs unchanged on Redis Cluster. Driver errors become one
``StoreUnavailable`` at this boundary.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from guard.domain.types import CapUsage, Outcome, Reason, RuleCheck, Verdict

T = TypeVar("T")

# How long a recorded touch is remembered for idempotency and CancelTouch.
RECORD_TTL_MS = 35 * 86_400_000
# How far into the past send_at may lie; cap events older than a window plus this are trimmed.
PAST_TOLERANCE_MS = 86_400_000
INDEX_SIZE = 200


class StoreUnavailable(RuntimeError):
    """Redis could not be reached or answered with an error."""


class StaleVersion(RuntimeError):
    """The preferences changed since the caller read them (``expected_version``)."""

    def __init__(self, current: int) -> None:
        super().__init__(f"preferences are at version {current}")
        self.current = current


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


@dataclass(frozen=True)
class StoredTouch:
    touch_id: str
    channel: str
    category: str
    campaign_id: str
    touch_class: str
    at_ms: int


class RedisStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._check = client.register_script(_script("check_touch"))
        self._cancel = client.register_script(_script("cancel_touch"))
        self._update = client.register_script(_script("update_preferences"))

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> RedisStore:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True,
            health_check_interval=10,
        )
        return cls(client)

    async def close(self) -> None:
        await self.client.aclose()

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"redis unreachable: {exc}") from exc
        except redis.exceptions.RedisError as exc:
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
            from guard.domain.decide import USER_RULE_ID, USER_RULE_WINDOW_MS

            rules.append({"id": USER_RULE_ID, "limit": -1, "window": USER_RULE_WINDOW_MS, "shadow": False, "user": True})
            cap_keys.append(plan.keys.cap(plan.user_rule_key))
        args = {
            "t": plan.at_ms, "now": plan.now_ms, "touch_id": plan.touch_id, "dry": plan.dry_run,
            "checks": {c: True for c in plan.checks}, "channel": plan.channel, "category": plan.category,
            "campaign": plan.campaign_id, "class": plan.touch_class, "channel_default": plan.channel_default,
            "category_default": plan.category_default, "channel_legal": plan.channel_closed_by_law,
            "quiet": plan.default_quiet, "rules": rules, "past_ms": PAST_TOLERANCE_MS,
            "record_ttl": RECORD_TTL_MS, "index_size": INDEX_SIZE,
        }
        keys = [plan.keys.prefs, plan.keys.touch(plan.touch_id), plan.keys.hold, plan.keys.touch_index, *cap_keys]
        kind, payload = await self._guarded(lambda: self._check(keys=keys, args=[json.dumps(args)]))
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
