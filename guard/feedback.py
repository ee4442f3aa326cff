"""The feedback loop: replies are stored first, then keywords, then the model; holds and the recovery desk.

A reply is never dropped: it is written to Redis before anything else, and a
reply the model could not score stays "unscored" until a CheckTouch on that
user or the background sweep scores it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from guard import logs, metrics, tracing
from guard.domain import replies as rules
from guard.errors import InvalidArgument, NotFound, PreconditionFailed
from guard.policy import Policy
from guard.preferences import PreferenceService, PreferencesPatch
from guard.service import GuardService
from guard.store.counters import KEEP_S, CampaignCounters
from guard.store.keys import UserKeys
from guard.store.redis_store import FeedbackStore, FirstInteraction, ScoreApplied
from guard.validate import check_id, check_page_size, check_text, shown

log = logs.get("guard.feedback")
MODEL_OUTAGE = logs.Condition(log, "sentiment_unavailable")  # once when scoring starts failing, once when it ends

OUTCOMES = ("RECOVERED", "NO_ACTION", "ESCALATED")
PRIORITY_RANK = {"P1": 1, "P2": 2, "P3": 3}
FIGURES_KEPT_MS = KEEP_S * 1000  # as long as the hourly figures: a user counts once in them
STATUSES = ("OPEN", "CLAIMED", "RESOLVED")
# A page of tasks stops growing past this many bytes of reply text (a client's 4 MB default stays far off).
MAX_PAGE_BYTES = 1 << 20
_TASK_TOKEN = re.compile(r"([0-9]{1,15}):(.{1,128})")

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


@dataclass(frozen=True)
class StoredReply:
    """A reply as stored, with what scoring it and opening its task needs."""

    reply_id: str
    text: str
    at_ms: int
    channel: str
    campaign_id: str
    high_value: bool
    strategy_id: str = ""

    @classmethod
    def from_hash(cls, reply_id: str, raw: dict[str, str]) -> StoredReply:
        return cls(reply_id, raw.get("text", ""), int(raw.get("at", 0)), raw.get("channel", ""),
                   raw.get("campaign", ""), raw.get("hv") == "1", raw.get("strategy", ""))


@dataclass(frozen=True)
class TaskReply:
    reply_id: str
    text: str
    at_ms: int
    negative: float


@dataclass(frozen=True)
class RecoveryTask:
    task_id: str
    user_id: str
    channel: str
    campaign_id: str
    priority: str
    created_ms: int
    due_ms: int
    status: str
    assignee: str  # the acting key's name (the desk's agent)
    outcome: str
    note: str
    replies: list[TaskReply] = field(default_factory=list)
    replies_omitted: int = 0  # earlier replies counted, not listed (the policy's max_replies_per_task)
    kind: str = "USER"  # USER (a user's complaint) or CAMPAIGN (a braked campaign or strategy)
    summary: str = ""  # what a campaign task is about
    assignee_key: str = ""  # the id of the key that claimed or resolved it: two keys may share a name


def new_id(prefix: str, now_ms: int) -> str:
    """Time-ordered and unique: milliseconds in hex, then randomness."""
    return f"{prefix}{now_ms:012x}{secrets.token_hex(5)}"


def task_from_hash(raw: dict[str, str]) -> RecoveryTask:
    replies = [TaskReply(r["reply_id"], r["text"], int(r["at"]), float(r["negative"]))
               for r in json.loads(raw.get("replies") or "[]")]
    return RecoveryTask(raw.get("task_id", ""), raw.get("user_id", ""), raw.get("channel", ""),
                        raw.get("campaign_id", ""), raw.get("priority", "P3"), int(raw.get("created_at", 0)),
                        int(raw.get("due_at", 0)), raw.get("status", "OPEN"), raw.get("assignee", ""),
                        raw.get("outcome", ""), raw.get("note", ""), replies, int(raw.get("replies_omitted", 0)),
                        raw.get("kind", "USER"), raw.get("summary", ""), raw.get("assignee_key", ""))


class FeedbackService:
    def __init__(self, guard: GuardService, preferences: PreferenceService, store: FeedbackStore, scorer: Scorer | None,
                 counters: CampaignCounters) -> None:
        self.guard = guard
        self.preferences = preferences
        self.store = store
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
                                                   rp.negative_threshold, rp.hold_ms, new_id("task-", now), now)
            if applied.fresh and applied.action == "hold":
                task_id = await self._file(keys, applied.task_id, applied.negative, item, now, new=applied.task_is_new)
                applied = replace(applied, task_id=task_id)
            out[item.reply_id] = applied
            # Complaints count apart; and a rate counts people: a user's second angry reply to a campaign is not
            # another user.
            if (applied.fresh and applied.action == "hold" and known_scores is None
                    and await self.store.first_time(keys, "negative_replies", item.campaign_id, FIGURES_KEPT_MS)):
                self._count(item.campaign_id, "negative_replies", item.at_ms, item.strategy_id)
        return out

    async def _file(self, keys: UserKeys, task_id: str, negative: float, reply: StoredReply, now: int, *,
                    new: bool) -> str:
        """Put a held reply on its recovery task, publishing the task if nobody has yet; the task it went to.

        The user's pointer to the task and the task itself live in different slots, so they
        change in two steps; a held reply stays on the sweep's queue until this is done, and
        doing it again is harmless (the task is created once, a reply listed once). ``new``
        says which step to try first: creating (the reply opened the task) or appending.
        A task found resolved (its resolver died before releasing the user) is replaced by a
        fresh one, so a complaint never lands on a closed task.
        """
        entry = {"reply_id": reply.reply_id, "text": reply.text, "at": reply.at_ms, "negative": negative}
        keep = self.policy.replies.max_task_replies
        filed = new and await self._open(keys, task_id, entry, reply, now)
        if not filed:
            status = await self.store.append_to_task(task_id, entry, keep)
            if status == "resolved":
                task_id = await self.store.repoint_task(keys, reply.reply_id, task_id, new_id("task-", now))
                status = await self.store.append_to_task(task_id, entry, keep)
            filed = status != "missing"
        if not filed and not await self._open(keys, task_id, entry, reply, now):  # published by a twin filer meanwhile
            await self.store.append_to_task(task_id, entry, keep)
        await self.store.drop_pending(keys, reply.reply_id)
        return task_id

    async def _open(self, keys: UserKeys, task_id: str, entry: dict[str, Any], reply: StoredReply, now: int) -> bool:
        """Publish the task with this reply as its first; False when it exists already."""
        rp = self.policy.replies
        prio = rules.priority([reply.text], entry["negative"], rp.legal_words, high_value=reply.high_value)
        opened = await self.store.create_task(task_id, now, reply.reply_id, {
            "task_id": task_id, "user_id": keys.user_id, "channel": reply.channel, "campaign_id": reply.campaign_id,
            "priority": prio, "created_at": str(now), "due_at": str(now + rp.sla_ms[prio]),
            "replies": json.dumps([entry], ensure_ascii=False)})
        if opened:
            metrics.TASKS_OPENED.labels(prio).inc()
            self._count(reply.campaign_id, "tasks_opened", now, reply.strategy_id)
            log.info("recovery_task_opened", task_id=task_id, priority=prio)
        return opened

    async def open_campaign_task(self, campaign_id: str, summary: str, now: int) -> str:
        """A P1 task for a braked campaign or strategy, so a person looks at it."""
        task_id = new_id("task-", now)
        sla = self.policy.replies.sla_ms["P1"]
        await self.store.create_task(task_id, now, "", {
            "task_id": task_id, "user_id": "", "channel": "", "campaign_id": campaign_id, "priority": "P1",
            "created_at": str(now), "due_at": str(now + sla), "replies": "[]", "kind": "CAMPAIGN", "summary": summary})
        metrics.TASKS_OPENED.labels("P1").inc()
        log.info("campaign_task_opened", task_id=task_id, campaign=campaign_id)
        return task_id

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
                    await self._file(keys, raw["task"], float(raw.get("negative", 0)), StoredReply.from_hash(reply_id, raw),
                                     self.now(), new=False)
                    done += 1
                else:  # expired, or scored by a CheckTouch meanwhile
                    await self.store.drop_pending(keys, reply_id)
            done += len(await self._score_and_apply(keys, items))
        return done

    async def retain(self) -> tuple[int, int]:
        """Retention: drop replies' words past ``replies.retention`` and resolved tasks past ``recovery.retention``.

        Run by the sweep; returns (replies whose words went, tasks deleted).
        """
        now = self.now()
        texts = await self.store.forget_texts(now - self.policy.replies.text_retention_ms, now)
        tasks = await self.store.trim_tasks(now - self.policy.replies.task_retention_ms)
        if texts or tasks:
            log.info("retention_applied", reply_texts_dropped=texts, tasks_deleted=tasks)
        return texts, tasks

    # -- the recovery desk ----------------------------------------------------------------

    async def get_task(self, task_id: str) -> RecoveryTask:
        check_id(task_id, "task_id")
        raw = await self.store.task(task_id)
        if not raw:
            raise NotFound(f"no recovery task {shown(task_id)}")
        return task_from_hash(raw)

    async def list_tasks(self, status: str, page_size: int, page_token: str) -> tuple[list[RecoveryTask], str]:
        """Newest first. A page ends at ``page_size`` tasks or ``MAX_PAGE_BYTES`` of replies, whichever comes first.

        The token is the last task's (created ms, id): tasks created in the same millisecond are
        neither skipped nor repeated across pages.
        """
        if status and status not in STATUSES:
            raise InvalidArgument("status", f"unknown status {shown(status)} (known: {', '.join(STATUSES)})")
        check_page_size(page_size)
        cursor: tuple[int, str] | None = None
        if page_token:
            match = _TASK_TOKEN.fullmatch(page_token)
            if match is None:
                raise InvalidArgument("page_token", "is not a token this service gave out")
            cursor = (int(match.group(1)), check_id(match.group(2), "page_token"))
        size = page_size or 50
        out: list[RecoveryTask] = []
        spent = 0
        token = ""
        offset = 0
        last = (0, "")
        top = float(cursor[0]) if cursor else float("inf")
        while not token:
            rows = await self.store.tasks_before(top, offset, 200)
            offset += len(rows)
            for task_id, created, raw in rows:
                if cursor and created == cursor[0] and task_id >= cursor[1]:
                    continue  # on an earlier page
                if not raw or (status and raw.get("status") != status):
                    continue
                task = task_from_hash(raw)
                cost = 512 + sum(len(r.text.encode()) + 96 for r in task.replies) + len(task.note.encode())
                if out and (len(out) == size or spent + cost > MAX_PAGE_BYTES):
                    token = f"{last[0]}:{last[1]}"
                    break
                out.append(task)
                spent += cost
                last = (created, task_id)
            if len(rows) < 200:
                break
        return out, token

    async def open_tasks(self, limit: int = 500) -> list[RecoveryTask]:
        """Open and claimed tasks (at most ``limit``), by priority, then due time: the desk's queue, on-call's gauges."""
        found: list[RecoveryTask] = []
        for status in ("OPEN", "CLAIMED"):
            token = ""
            while len(found) < limit:
                tasks, token = await self.list_tasks(status, 500, token)
                found += tasks
                if not token:
                    break
        found.sort(key=lambda task: (PRIORITY_RANK.get(task.priority, 9), task.due_ms, task.task_id))
        return found[:limit]

    async def unscored(self) -> int:
        """Replies stored but not scored (or not yet on their task): what waits for the model or the sweep."""
        return await self.store.pending_count()

    async def claim(self, task_id: str, agent: str, agent_key: str) -> RecoveryTask:
        """Claim for the agent a key acts as (``agent`` its name, ``agent_key`` its id: the identity)."""
        check_id(task_id, "task_id")
        check_id(agent, "agent")
        status, who = await self.store.claim(task_id, agent, agent_key, self.now())
        self._raise_for(status, who, task_id)
        return await self.get_task(task_id)

    async def resolve(self, task_id: str, agent: str, agent_key: str, outcome: str, note: str,
                      lift_hold: bool) -> RecoveryTask:
        """Resolve once. The same agent resolving again changes nothing (its retry after a lost answer)
        beyond finishing a release a crash interrupted; a hold is lifted only by the task that holds it."""
        check_id(task_id, "task_id")
        check_id(agent, "agent")
        if outcome not in OUTCOMES:
            raise InvalidArgument("outcome", f"one of {', '.join(OUTCOMES)} is required")
        check_text(note, "note")
        now = self.now()
        status, who = await self.store.resolve(task_id, agent, agent_key, now, outcome, note)
        self._raise_for(status, who, task_id)
        if status == "ok":  # the experience health's desk figures, counted once
            task = await self.get_task(task_id)
            self._count("", "tasks_resolved", now)
            if now <= task.due_ms:
                self._count("", "tasks_resolved_in_sla", now)
            if outcome == "RECOVERED":
                self._count("", "tasks_recovered", now)
        if not who:  # a campaign task (or an erased user's): nobody to release; a campaign is resumed apart
            return await self.get_task(task_id)
        held = await self.store.task_closed(self.guard.keys(who), task_id, lift_hold)
        log.info("recovery_task_resolved", task_id=task_id, outcome=outcome, lift_hold=lift_hold and held,
                 repeated=status == "again")
        return await self.get_task(task_id)

    @staticmethod
    def _raise_for(status: str, who: str, task_id: str) -> None:
        if status == "missing":
            raise NotFound(f"no recovery task {shown(task_id)}")
        if status == "taken":
            raise PreconditionFailed(f"task {task_id} is claimed by {who}")
        if status == "resolved":
            raise PreconditionFailed(f"task {task_id} is already resolved")

    async def desk_stream_end(self) -> str:
        return await self.store.stream_end()

    async def new_tasks(self, after: str, block_ms: int = 250) -> tuple[str, list[RecoveryTask]]:
        """Open tasks that entered the desk stream after ``after`` (a live view's read; claims nothing), and
        where the next read starts."""
        tasks = []
        for stream_id, task_id in await self.store.stream_after(after, block_ms):
            after = stream_id
            raw = await self.store.task(task_id)
            if raw and raw.get("status") == "OPEN":
                tasks.append(task_from_hash(raw))
        return after, tasks

    async def open_watch(self, consumer: str) -> None:
        """What a watch needs before its first read: a valid consumer name and the desk's consumer group."""
        check_id(consumer, "consumer")
        await self.store.ensure_group()

    async def watch(self, consumer: str, still_allowed: Callable[[], Awaitable[None]] | None = None,
                    block_ms: int = 250) -> AsyncIterator[RecoveryTask]:
        """New tasks for this watcher, and tasks a vanished watcher left unclaimed (at-least-once).

        Each read blocks for ``block_ms`` only, well under the Redis socket timeout, so an idle
        desk is not mistaken for an unreachable Redis. ``still_allowed`` is asked before every read
        (it raises when the watcher's key was revoked), so a revoked watcher gets nothing more.
        """
        await self.open_watch(consumer)
        redeliver = self.policy.replies.redeliver_after_ms
        while True:
            if still_allowed is not None:
                await still_allowed()
            batch = await self.store.reclaim(consumer, redeliver) + await self.store.read_new(consumer, block_ms)
            for stream_id, task_id in batch:
                raw = await self.store.task(task_id)
                if not raw or raw.get("status") != "OPEN":
                    await self.store.ack(stream_id)  # claimed or resolved meanwhile: nothing to deliver
                    continue
                yield task_from_hash(raw)
