"""The reply loop: replies are stored first, then keywords, then the model; a negative one holds marketing
and goes on a recovery task (``usecases.desk``).

A reply is never dropped: it is written to Redis before anything else, and a
reply the model could not score stays "unscored" until a CheckTouch on that
user or the background sweep scores it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from guard import logs, metrics, tracing
from guard.domain import replies as rules
from guard.domain.replies import StoredReply
from guard.errors import InvalidArgument
from guard.policy import Policy
from guard.store.counters import KEEP_S, CampaignCounters
from guard.store.keys import UserKeys
from guard.store.replies import FirstInteraction, ReplyStore, ScoreApplied
from guard.usecases.checks import GuardService
from guard.usecases.desk import DeskService, new_task_id
from guard.usecases.preferences import PreferenceService, PreferencesPatch
from guard.validate import check_id, check_text, shown

log = logs.get("guard.usecases.replies")
MODEL_OUTAGE = logs.Condition(log, "sentiment_unavailable")  # once when scoring starts failing, once when it ends

FIGURES_KEPT_MS = KEEP_S * 1000  # as long as the hourly figures: a user counts once in them

Scorer = Callable[[Sequence[str]], Awaitable[Sequence[Any]]]  # texts → objects with .label and .negative


@dataclass(frozen=True)
class _Certain:
    label: str
    negative: float


_CERTAINLY_NEGATIVE = _Certain("NEGATIVE", 1.0)


@dataclass(frozen=True)
class ReplyResult:
    label: str  # NEGATIVE, NEUTRAL, POSITIVE or UNSCORED
    negative: float
    action: str  # none, hold, opt_out, opt_in
    task_id: str
    campaign_id: str
    replayed: bool
    detail: str


class ReplyService:
    def __init__(self, guard: GuardService, preferences: PreferenceService, store: ReplyStore, desk: DeskService,
                 scorer: Scorer | None, counters: CampaignCounters) -> None:
        self.guard = guard
        self.preferences = preferences
        self.store = store
        self.desk = desk
        self.scorer = scorer
        self.counters = counters
        self.policy: Policy = guard.policy
        rp = self.policy.replies
        self.keywords = rules.KeywordRules.of(rp.opt_out_keywords, rp.opt_in_keywords)

    def _count(self, campaign_id: str, field_name: str, at_ms: int | None = None, strategy_id: str = "") -> None:
        self.counters.add(self.guard.tenant, campaign_id, field_name, at_ms=at_ms, strategy_id=strategy_id)

    async def campaign_health(self, campaign_id: str) -> dict[str, int]:
        """Touches, negative replies and opt-outs of one campaign (the raw figures of a fatigue index)."""
        check_id(campaign_id, "campaign_id")
        return await self.counters.read(self.guard.tenant, campaign_id)

    @property
    def now(self) -> Callable[[], int]:
        return self.guard.now

    # -- RecordReply ----------------------------------------------------------------------

    async def record(self, user_id: str, channel: str, text: str, reply_id: str, in_reply_to: str = "",
                     campaign_id: str = "", received_ms: int = 0) -> ReplyResult:
        check_id(user_id, "user_id")
        check_id(reply_id, "reply_id")
        check_id(in_reply_to, "in_reply_to_touch_id", required=False)
        check_id(campaign_id, "campaign_id", required=False)
        if channel not in self.policy.channels:
            names = ", ".join(sorted(self.policy.channels))
            raise InvalidArgument("channel", f"unknown channel {shown(channel)} (known: {names})")
        check_text(text, "text", required=True)
        now = self.now()
        if received_ms < 0:
            raise InvalidArgument("received_at", "must not be before 1970")
        if received_ms > now + 3_600_000:
            raise InvalidArgument("received_at", "is in the future")
        received = received_ms or now
        keys = self.guard.keys(user_id)
        window = self.policy.replies.attribution_window_ms
        touch_campaign, high_value, touch_strategy = (await self.store.touch_facts(keys, in_reply_to) if in_reply_to
                                                      else ("", False, ""))
        # The last touch matters only for what the request and the replied-to touch leave open.
        needs_last = not in_reply_to or not (campaign_id or touch_campaign)
        last = await self.store.last_touch(keys) if needs_last else None
        campaign = rules.attribute(campaign_id, touch_campaign, last[:2] if last else None, received, window)
        if not in_reply_to and last is not None and received - last[1] <= window:
            high_value = last[2]
        # The strategy of the touch the campaign came from (none when the caller named another campaign).
        strategy = touch_strategy if campaign and campaign == touch_campaign else (
            last[3] if last is not None and campaign and campaign == last[0] else "")
        keyword = self.keywords.action(text) or ""
        reply = StoredReply(reply_id, text, received, channel, campaign, high_value, strategy)
        known = await self.store.record_reply(keys, reply_id, received, {
            "text": text, "channel": channel, "at": str(received), "campaign": campaign, "touch": in_reply_to,
            "keyword": keyword, "hv": "1" if high_value else "0", "strategy": strategy},
            self.policy.replies.text_retention_ms)
        if isinstance(known, FirstInteraction):
            self.counters.add(self.guard.tenant, campaign, "interacted", strategy_id=known.strategy_id,
                              at_ms=known.sent_at_ms)
        elif known is not None:
            if ("text" in known and known["text"] != text) or known.get("channel", channel) != channel:
                raise InvalidArgument("reply_id", f"{shown(reply_id)} was recorded before with another text or channel; "
                                                  "a new reply needs a new reply_id")
            if known.get("state") != "scored":  # stored but not scored yet (model down, or a racing twin)
                await self._score_and_apply(keys, [StoredReply.from_hash(reply_id, known)])
                known = await self.store.reply(keys, reply_id) or known
            return self._replayed(known)
        self._count(campaign, "replies", received, strategy)
        if keyword:
            await self.preferences.update_preferences(
                user_id, PreferencesPatch(paths=[f"channels.{channel}"], channels={channel: keyword == "opt_in"}),
                source="keyword", actor=f"reply:{reply_id}", expected_version=None)
            if keyword == "opt_out":
                self._count(campaign, "opt_outs", received, strategy)
        applied = await self._score_and_apply(keys, [reply])
        result = applied.get(reply_id)
        if result is None:
            return ReplyResult("UNSCORED", 0.0, keyword or "none", "", campaign, False,
                               "stored; the model could not score it now, it will be scored later")
        detail = {"hold": "negative reply: marketing on hold, recovery task open",
                  "opt_out": f"opt-out keyword: {channel} closed", "opt_in": f"opt-in keyword: {channel} reopened"}
        return ReplyResult(result.label, result.negative, result.action, result.task_id, campaign, False,
                           detail.get(result.action, "recorded"))

    async def file_complaint(self, user_id: str, channel: str, campaign_id: str, touch_id: str, provider: str,
                             at_ms: int) -> str:
        """A spam complaint is a negative reply made with a button: stored like one (it is what the desk shows),
        scored as certainly negative, and held and filed as a negative reply is. Idempotent per touch; the task."""
        keys = self.guard.keys(user_id)
        reply_id = f"spam:{touch_id}"
        text = f"(spam complaint about touch {touch_id}, reported by {provider or 'the provider'})"
        _, high_value, strategy = await self.store.touch_facts(keys, touch_id)
        known = await self.store.record_reply(keys, reply_id, at_ms, {
            "text": text, "channel": channel, "at": str(at_ms), "campaign": campaign_id, "touch": touch_id,
            "keyword": "", "hv": "1" if high_value else "0", "strategy": strategy},
            self.policy.replies.text_retention_ms, interaction=False)
        if isinstance(known, dict) and known.get("state") == "scored":
            return known.get("task", "")
        reply = StoredReply(reply_id, text, at_ms, channel, campaign_id, high_value, strategy)
        applied = await self._score_and_apply(keys, [reply], known_scores=[_CERTAINLY_NEGATIVE])
        return applied[reply_id].task_id if reply_id in applied else ""

    def _replayed(self, known: dict[str, str]) -> ReplyResult:
        scored = known.get("state") == "scored"
        return ReplyResult(known.get("label", "UNSCORED") if scored else "UNSCORED",
                           float(known.get("negative", 0) or 0), known.get("action") or known.get("keyword") or "none",
                           known.get("task", ""), known.get("campaign", ""), True, "this reply_id was recorded before")

    async def _score_and_apply(self, keys: UserKeys, items: Sequence[StoredReply],
                               known_scores: Sequence[Any] | None = None) -> dict[str, ScoreApplied]:
        """Score replies (unless ``known_scores`` are given) and apply each once; {} when the model failed."""
        if not items or (self.scorer is None and known_scores is None):
            return {}
        try:
            if known_scores is not None:
                scores = known_scores
            else:
                with tracing.client_span("sentiment score", replies=len(items)):
                    scores = await asyncio.wait_for(self.scorer([i.text for i in items]),  # type: ignore[misc]
                                                    self.policy.replies.score_wait_ms / 1000)
        except Exception as exc:  # the model failing must never lose a reply
            metrics.SENTIMENT_FAILURES.inc()
            MODEL_OUTAGE.met(error=str(exc) or type(exc).__name__, note="replies are kept and scored when it answers")
            return {}
        if known_scores is None:
            MODEL_OUTAGE.ended()
        rp = self.policy.replies
        out: dict[str, ScoreApplied] = {}
        for item, score in zip(items, scores, strict=True):
            now = self.now()
            applied = await self.store.apply_score(keys, item.reply_id, score.label, float(score.negative),
                                                   rp.negative_threshold, rp.hold_ms, new_task_id(now), now)
            if applied.fresh and applied.action == "hold":
                task_id = await self.desk.file(keys, applied.task_id, applied.negative, item, now, new=applied.task_is_new)
                await self.store.drop_pending(keys, item.reply_id)
                applied = replace(applied, task_id=task_id)
            out[item.reply_id] = applied
            # Complaints count apart; and a rate counts people: a user's second angry reply to a campaign is not
            # another user.
            if (applied.fresh and applied.action == "hold" and known_scores is None
                    and await self.store.first_time(keys, "negative_replies", item.campaign_id, FIGURES_KEPT_MS)):
                self._count(item.campaign_id, "negative_replies", item.at_ms, item.strategy_id)
        return out

    async def score_pending(self, user_id: str) -> bool:
        """Score this user's unscored recent replies (CheckTouch's look-back); False if any is left."""
        keys = self.guard.keys(user_id)
        ids = await self.store.unscored(keys, self.now() - self.policy.replies.lookback_ms)
        items = []
        for reply_id in ids:
            raw = await self.store.reply(keys, reply_id)
            if raw:
                items.append(StoredReply.from_hash(reply_id, raw))
        applied = await self._score_and_apply(keys, items)
        return len(applied) == len(items)

    async def sweep(self, limit: int = 64) -> int:
        """Score what was left unscored (model down, busy, imported), and put on its task any held reply
        that a crash kept off it. Returns how many replies were scored or filed."""
        done = 0
        by_user: dict[str, list[str]] = {}
        for user_id, reply_id in await self.store.pending(limit):
            by_user.setdefault(user_id, []).append(reply_id)
        for user_id, reply_ids in by_user.items():
            keys = self.guard.keys(user_id)
            items = []
            for reply_id in reply_ids:
                raw = await self.store.reply(keys, reply_id)
                if raw and raw.get("state") != "scored":
                    items.append(StoredReply.from_hash(reply_id, raw))
                elif raw.get("action") == "hold" and raw.get("task"):  # held, but maybe never put on its task
                    await self.desk.file(keys, raw["task"], float(raw.get("negative", 0)),
                                         StoredReply.from_hash(reply_id, raw), self.now(), new=False)
                    await self.store.drop_pending(keys, reply_id)
                    done += 1
                else:  # expired, or scored by a CheckTouch meanwhile
                    await self.store.drop_pending(keys, reply_id)
            done += len(await self._score_and_apply(keys, items))
        return done

    async def retain(self) -> int:
        """Retention: drop replies' words past ``replies.retention`` (run by the sweep); how many replies lost them."""
        now = self.now()
        texts = await self.store.forget_texts(now - self.policy.replies.text_retention_ms, now)
        if texts:
            log.info("retention_applied", reply_texts_dropped=texts)
        return texts

    async def unscored(self) -> int:
        """Replies stored but not scored (or not yet on their task): what waits for the model or the sweep."""
        return await self.store.pending_count()
