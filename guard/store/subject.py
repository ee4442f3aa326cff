"""Everything stored about one user (a data subject): found, read whole, and erased.

A user's keys share the hash tag ``{tenant:user}``, so a SCAN on that prefix finds every one,
whatever later features add. Tasks live in the tenant's slot and are found by their user field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from guard.store.keys import USER_PREFIXES, USER_SUFFIXES, TenantKeys, UserKeys
from guard.store.redis_store import RedisStore

_GLOB_SPECIAL = set("*?[]\\")


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def _is_users(name: str, prefix: str) -> bool:
    """The prefix of user ``a`` also begins the keys of a user named ``a}:…``: keep the names guard gives ``a``."""
    rest = name[len(prefix):]
    return rest in USER_SUFFIXES or (rest.startswith(USER_PREFIXES) and "}:" not in rest)


class SubjectStore:
    def __init__(self, store: RedisStore, tenant: str) -> None:
        self.conn = store.conn
        self.client: Any = store.client
        self.tenant = TenantKeys(tenant)

    async def key_names(self, keys: UserKeys) -> list[str]:
        prefix = keys.prefs[: -len("prefs")]
        pattern = _glob_escape(prefix) + "*"

        async def scan() -> list[str]:
            return [str(k) async for k in self.client.scan_iter(match=pattern, count=1000)]

        return sorted(n for n in await self.conn.call(scan) if _is_users(n, prefix))

    async def read(self, names: Sequence[str]) -> dict[str, Any]:
        """Each key's value in a JSON-friendly shape, by its type."""
        types = await self.conn.pipeline([("TYPE", n) for n in names])
        reads = []
        for name, kind in zip(names, types, strict=True):
            reads.append({"string": ("GET", name), "hash": ("HGETALL", name), "set": ("SMEMBERS", name),
                          "list": ("LRANGE", name, 0, -1), "stream": ("XRANGE", name, "-", "+"),
                          "zset": ("ZRANGE", name, 0, -1, "WITHSCORES")}.get(str(kind), ("TYPE", name)))
        values = await self.conn.pipeline(reads)
        out: dict[str, Any] = {}
        for name, kind, value in zip(names, types, values, strict=True):
            if kind == "zset":
                out[name] = [[m, float(s)] for m, s in zip(value[::2], value[1::2], strict=True)]
            elif kind == "set":
                out[name] = sorted(value)
            elif kind == "stream":
                out[name] = [{"id": i, **dict(zip(f[::2], f[1::2], strict=True))} for i, f in value]
            elif kind != "none":
                out[name] = value
        return out

    async def tasks_of(self, user_id: str, chunk: int = 500) -> list[tuple[str, dict[str, str]]]:
        """Every task of the tenant that names this user (erasure and export are rare: a scan is fine)."""
        ids = [str(i) for i in await self.conn.execute("ZRANGE", self.tenant.task_index, 0, -1)]
        found: list[str] = []
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            owners = await self.conn.pipeline([("HGET", self.tenant.task(i), "user_id") for i in part])
            found += [i for i, owner in zip(part, owners, strict=True) if owner == user_id]
        rows = await self.conn.pipeline([("HGETALL", self.tenant.task(i)) for i in found])
        return [(i, dict(r)) for i, r in zip(found, rows, strict=True) if r]

    async def erase(self, keys: UserKeys, names: Sequence[str], suppression: dict[str, Any],
                    event: dict[str, str]) -> int:
        others = [n for n in names if n not in (keys.prefs, keys.consent)]
        flat = [x for kv in event.items() for x in kv]
        removed = await self.conn.run("user_erase", [keys.prefs, keys.consent, *others],
                                      [orjson.dumps(suppression).decode(), orjson.dumps(flat).decode()])
        return int(removed)

    async def redact_task(self, task_id: str, user_id: str, now_ms: int) -> bool:
        return bool(await self.conn.run("task_redact", [self.tenant.task(task_id)], [user_id, str(now_ms)]))

    async def drop_from_queues(self, user_id: str) -> int:
        """The user's entries (``"<user> <reply>"``) in the tenant's sweep queue and retention index."""
        pattern = _glob_escape(user_id) + " *"
        dropped = 0
        for queue in (self.tenant.pending_replies, self.tenant.reply_texts):
            async def scan(name: str = queue) -> list[str]:
                return [str(m) async for m, _ in self.client.zscan_iter(name, match=pattern)]

            members = await self.conn.call(scan)
            if members:
                await self.conn.execute("ZREM", queue, *members)
            dropped += len(members)
        return dropped
