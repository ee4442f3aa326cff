"""The recovery desk: tasks opened for held replies and braked campaigns, listed, watched, claimed
and resolved by the support team; resolving one releases its user (and lifts the hold if asked).

The reply loop (``usecases.replies``) files held replies here; the desk knows nothing of scoring.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from guard import logs, metrics
from guard.domain import replies as rules
from guard.domain.replies import StoredReply
from guard.errors import InvalidArgument, NotFound, PreconditionFailed
from guard.policy import Policy
from guard.store.counters import CampaignCounters
from guard.store.desk import DeskStore
from guard.store.keys import UserKeys
from guard.usecases.checks import GuardService
from guard.validate import check_id, check_page_size, check_text, shown

log = logs.get("guard.usecases.desk")

OUTCOMES = ("RECOVERED", "NO_ACTION", "ESCALATED")
PRIORITY_RANK = {"P1": 1, "P2": 2, "P3": 3}
STATUSES = ("OPEN", "CLAIMED", "RESOLVED")
# A page of tasks stops growing past this many bytes of reply text (a client's 4 MB default stays far off).
MAX_PAGE_BYTES = 1 << 20
_TASK_TOKEN = re.compile(r"([0-9]{1,15}):(.{1,128})")


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


def new_task_id(now_ms: int) -> str:
    """Time-ordered and unique: milliseconds in hex, then randomness."""
    return f"task-{now_ms:012x}{secrets.token_hex(5)}"


def task_from_hash(raw: dict[str, str]) -> RecoveryTask:
    replies = [TaskReply(r["reply_id"], r["text"], int(r["at"]), float(r["negative"]))
               for r in json.loads(raw.get("replies") or "[]")]
    return RecoveryTask(raw.get("task_id", ""), raw.get("user_id", ""), raw.get("channel", ""),
                        raw.get("campaign_id", ""), raw.get("priority", "P3"), int(raw.get("created_at", 0)),
                        int(raw.get("due_at", 0)), raw.get("status", "OPEN"), raw.get("assignee", ""),
                        raw.get("outcome", ""), raw.get("note", ""), replies, int(raw.get("replies_omitted", 0)),
                        raw.get("kind", "USER"), raw.get("summary", ""), raw.get("assignee_key", ""))


class DeskService:
    def __init__(self, guard: GuardService, store: DeskStore, counters: CampaignCounters) -> None:
        self.guard = guard
        self.store = store
        self.counters = counters
        self.policy: Policy = guard.policy

    def _count(self, campaign_id: str, field_name: str, at_ms: int | None = None, strategy_id: str = "") -> None:
        self.counters.add(self.guard.tenant, campaign_id, field_name, at_ms=at_ms, strategy_id=strategy_id)

    @property
    def now(self) -> Callable[[], int]:
        return self.guard.now

    # -- opening tasks ----------------------------------------------------------------------

    async def file(self, keys: UserKeys, task_id: str, negative: float, reply: StoredReply, now: int, *,
                    new: bool) -> str:
        """Put a held reply on its recovery task, publishing the task if nobody has yet; the task it went to.

        The user's pointer to the task and the task itself live in different slots, so they
        change in two steps; a held reply stays on the sweep's queue until this has returned
        (the caller takes it off), and doing it again is harmless (the task is created once, a reply listed once). ``new``
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
                task_id = await self.store.repoint_task(keys, reply.reply_id, task_id, new_task_id(now))
                status = await self.store.append_to_task(task_id, entry, keep)
            filed = status != "missing"
        if not filed and not await self._open(keys, task_id, entry, reply, now):  # published by a twin filer meanwhile
            await self.store.append_to_task(task_id, entry, keep)
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
        task_id = new_task_id(now)
        sla = self.policy.replies.sla_ms["P1"]
        await self.store.create_task(task_id, now, "", {
            "task_id": task_id, "user_id": "", "channel": "", "campaign_id": campaign_id, "priority": "P1",
            "created_at": str(now), "due_at": str(now + sla), "replies": "[]", "kind": "CAMPAIGN", "summary": summary})
        metrics.TASKS_OPENED.labels("P1").inc()
        log.info("campaign_task_opened", task_id=task_id, campaign=campaign_id)
        return task_id

    async def open_contact_task(self, user_id: str, channel: str, campaign_id: str, summary: str, now: int,
                                task_id: str) -> bool:
        """A P1 task for a high-value customer who cut a channel off themselves (deleted the staff member on WeCom):
        someone should reach out another way. Opened once per ``task_id``."""
        sla = self.policy.replies.sla_ms["P1"]
        opened = await self.store.create_task(task_id, now, "", {
            "task_id": task_id, "user_id": user_id, "channel": channel, "campaign_id": campaign_id, "priority": "P1",
            "created_at": str(now), "due_at": str(now + sla), "replies": "[]", "kind": "CONTACT", "summary": summary})
        if opened:
            metrics.TASKS_OPENED.labels("P1").inc()
            self._count(campaign_id, "tasks_opened", now)
            log.info("contact_task_opened", task_id=task_id)
        return bool(opened)

    async def retain(self) -> int:
        """Retention: delete resolved tasks past ``recovery.retention`` (run by the sweep); how many went."""
        tasks = await self.store.trim_tasks(self.now() - self.policy.replies.task_retention_ms)
        if tasks:
            log.info("retention_applied", tasks_deleted=tasks)
        return tasks

    # -- working tasks ----------------------------------------------------------------------

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
