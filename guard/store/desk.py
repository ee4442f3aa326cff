"""The recovery desk in Redis: one tenant's tasks (a hash each, an index by creation, a stream the
watchers read through the ``support`` consumer group) and the user's pointer to the task that holds them."""

from __future__ import annotations

import json
from typing import Any

from guard.errors import StoreUnavailable
from guard.store.keys import UserKeys
from guard.store.redis_store import TenantStore

SUPPORT_GROUP = "support"
# What a task.opened event says of the task (no reply text: an endpoint learns that a task opened, and whose).
OPENED_FIELDS = ("task_id", "user_id", "channel", "campaign_id", "priority", "created_at", "due_at", "kind", "summary")


class DeskStore(TenantStore):
    """One tenant's recovery tasks; shares the store's connection."""

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
        event = json.dumps({k: fields.get(k, "") for k in OPENED_FIELDS}, ensure_ascii=False)
        done = await self.conn.run("task_create", [t.task(task_id), t.task_index, t.task_stream, t.task_replies(task_id),
                                                   t.outbox], [task_id, str(created_ms), first_reply_id, event, *flat])
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
        event = json.dumps({"task_id": task_id, "agent": agent}, ensure_ascii=False)
        status, who = await self.conn.run("task_claim", [t.task(task_id), t.task_stream, t.outbox],
                                          [agent, str(now_ms), SUPPORT_GROUP, agent_key, event])
        return str(status), str(who)

    async def resolve(self, task_id: str, agent: str, agent_key: str, now_ms: int, outcome: str,
                      note: str) -> tuple[str, str]:
        t = self.tenant
        event = json.dumps({"task_id": task_id, "agent": agent, "outcome": outcome}, ensure_ascii=False)
        status, who = await self.conn.run("task_resolve", [t.task(task_id), t.task_stream, t.outbox],
                                          [agent, str(now_ms), SUPPORT_GROUP, outcome, note, agent_key, event])
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
