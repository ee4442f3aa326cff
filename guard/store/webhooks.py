"""A tenant's webhook endpoints, their delivery state, and the outbox they read (all in the tenant's slot).

An endpoint's configuration (URL, events, secrets) and its delivery state (cursor in the outbox, attempts, when
to try next) are two fields, so the operator's changes and the deliverer's never overwrite each other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from guard.store.connection import Connection
from guard.store.keys import TenantKeys

FAILED_KEPT = 1000  # deliveries given up on, kept for replay


@dataclass
class Endpoint:
    endpoint_id: str
    url: str
    events: list[str]
    secrets: list[dict[str, Any]]  # {"secret": "whsec_…", "until_ms": 0 (current) or when a rotated-out one expires}
    created_ms: int
    format: str = "standard"  # or a robot's: wecom_robot, dingtalk, slack (guard.domain.alerts)
    language: str = "en"  # a robot's messages: zh or en
    robot_secret: str = ""  # DingTalk's own signing secret (SEC…)

    def signing(self, now_ms: int) -> list[str]:
        return [s["secret"] for s in self.secrets if not s["until_ms"] or s["until_ms"] > now_ms]


@dataclass
class Delivery:
    cursor: str = "0-0"  # the last outbox entry this endpoint is done with
    attempts: int = 0  # failed attempts at the entry after the cursor
    next_ms: int = 0  # not before this
    first_failed_ms: int = 0  # when the endpoint started failing (0: it answers)
    disabled_ms: int = 0
    last_error: str = ""
    delivered: int = 0
    failed: int = 0


def _fields(raw: Any) -> dict[str, str]:
    """A stream entry's fields, however the connection hands them over (a mapping, or a flat list)."""
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    return {str(k): str(v) for k, v in pairs}


class WebhookStore:
    def __init__(self, conn: Connection, tenant: str) -> None:
        self.conn = conn
        self.keys = TenantKeys(tenant)

    async def endpoints(self) -> list[tuple[Endpoint, Delivery]]:
        raw = {str(k): str(v) for k, v in dict(await self.conn.execute("HGETALL", self.keys.webhooks) or {}).items()}
        out = []
        for name, value in sorted(raw.items()):
            if ":" in name:
                continue
            state = raw.get(f"{name}:state")
            out.append((Endpoint(**json.loads(value)), Delivery(**json.loads(state)) if state else Delivery()))
        return out

    async def save(self, endpoint: Endpoint) -> None:
        await self.conn.execute("HSET", self.keys.webhooks, endpoint.endpoint_id, json.dumps(asdict(endpoint)))

    async def start_at_end(self, endpoint_id: str) -> None:
        """A new endpoint hears what happens from now on, not the outbox's past."""
        last = await self.conn.execute("XREVRANGE", self.keys.outbox, "+", "-", "COUNT", 1)
        cursor = str(last[0][0]) if last else "0-0"
        await self.save_state(endpoint_id, Delivery(cursor=cursor))

    async def save_state(self, endpoint_id: str, state: Delivery) -> None:
        await self.conn.execute("HSET", self.keys.webhooks, f"{endpoint_id}:state", json.dumps(asdict(state)))

    async def remove(self, endpoint_id: str) -> bool:
        return bool(await self.conn.execute("HDEL", self.keys.webhooks, endpoint_id, f"{endpoint_id}:state"))

    async def after(self, cursor: str, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Outbox entries after ``cursor``, oldest first."""
        rows = await self.conn.execute("XRANGE", self.keys.outbox, f"({cursor}", "+", "COUNT", count)
        return [(str(entry_id), _fields(fields)) for entry_id, fields in rows or []]

    async def forget_user(self, user_id: str) -> int:
        """Erasure: the outbox's events about the user are deleted (delivered or not); how many."""
        removed, start = 0, "-"
        while True:
            rows = await self.conn.execute("XRANGE", self.keys.outbox, start, "+", "COUNT", 1000)
            entries = [(str(entry_id), _fields(fields)) for entry_id, fields in rows or []]
            mine = [e for e, f in entries if json.loads(f.get("data") or "{}").get("user_id") == user_id]
            if mine:
                removed += int(await self.conn.execute("XDEL", self.keys.outbox, *mine))
            if len(entries) < 1000:
                return removed
            start = f"({entries[-1][0]}"

    async def failed(self, endpoint_id: str) -> list[tuple[str, dict[str, str]]]:
        """The endpoint's deliveries given up on, oldest first: (record id, {msg_id, entry, error, at})."""
        rows = await self.conn.execute("XRANGE", self.keys.webhooks_failed, "-", "+")
        out = [(str(i), _fields(f)) for i, f in rows or []]
        return [(i, f) for i, f in out if f.get("endpoint") == endpoint_id]

    async def entry(self, entry_id: str) -> dict[str, str] | None:
        rows = await self.conn.execute("XRANGE", self.keys.outbox, entry_id, entry_id)
        return _fields(rows[0][1]) if rows else None

    async def drop_failed(self, record_id: str) -> None:
        await self.conn.execute("XDEL", self.keys.webhooks_failed, record_id)

    async def keep_failed(self, endpoint_id: str, msg_id: str, entry_id: str, error: str, at_ms: int) -> None:
        await self.conn.execute("XADD", self.keys.webhooks_failed, "MAXLEN", "~", FAILED_KEPT, "*", "endpoint",
                                endpoint_id, "msg_id", msg_id, "entry", entry_id, "error", error[:300], "at", at_ms)
