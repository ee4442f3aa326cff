"""Replies in Redis: each stored under its user's hash tag before anything else, scored once, its words
dropped by retention; the tenant's queue of replies still to score or to file on a task."""

from __future__ import annotations

import json
from dataclasses import dataclass

from guard.store.keys import UserKeys
from guard.store.redis_store import TenantStore

# A reply's record (score, label, action) outlives its words (the policy's replies.retention) by this much.
REPLY_RECORD_AFTER_TEXT_MS = 365 * 86_400_000


@dataclass(frozen=True)
class FirstInteraction:
    sent_at_ms: int
    strategy_id: str


@dataclass(frozen=True)
class ScoreApplied:
    fresh: bool  # this call applied the score (False: someone had already)
    label: str
    negative: float
    action: str  # none, hold, opt_out, opt_in
    task_id: str
    task_is_new: bool


class ReplyStore(TenantStore):
    """One tenant's replies: stored first, scored once, forgotten by retention; shares the store's connection."""

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
