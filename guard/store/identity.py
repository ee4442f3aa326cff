"""The store's identity: how guard notices a Redis that forgot.

When guard first initialises a store it writes an identity (a random id, when, how) into the control
records, and a copy of the id on every shard (on one Redis or a Sentinel-watched primary the control
record is that copy; on a Cluster, a marker under a hash tag each master serves). A flush, a restart
without persistence, a restore from before the marker, or one shard losing its data leaves the identity
or a marker missing: ``seen`` says which, and the caller decides (it refuses marketing until an operator
adopts the store; it never re-initialises silently).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from guard.store.cluster import ClusterConnection
from guard.store.connection import Connection
from guard.store.keys import ControlKeys, shard_marker

K = ControlKeys()
MARKER_TAG = "store-"
AUDIT_KEPT = 1000


@dataclass(frozen=True)
class Identity:
    store_id: str
    created_ms: int
    how: str  # initialised (guard made it on an empty or pre-identity store) or adopted (an operator said so)
    previous: str = ""  # adopted: the identity this store replaced, as the adopter knew it ('' when none)

    @staticmethod
    def new(now_ms: int, how: str, previous: str = "") -> Identity:
        return Identity(secrets.token_hex(8), now_ms, how, previous)


@dataclass(frozen=True)
class Seen:
    """The store as it is now: its identity (None: it has none), the shards whose marker is missing or another's."""

    identity: Identity | None
    lost: tuple[str, ...] = ()


class IdentityStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def _markers(self) -> dict[str, str]:
        """Shard (host:port) -> marker key; empty on one Redis (the control record is the only copy needed)."""
        if isinstance(self.conn.resp, ClusterConnection):
            return {shard: shard_marker(tag) for shard, tag in (await self.conn.resp.shard_tags(MARKER_TAG)).items()}
        return {}

    async def seen(self) -> Seen:
        markers = await self._markers()
        raw = dict(await self.conn.execute("HGETALL", K.store_identity) or {})
        copies = await self.conn.pipeline([("GET", key) for key in markers.values()]) if markers else []
        identity = (Identity(str(raw["id"]), int(raw.get("created_ms", 0)), str(raw.get("how", "")),
                             str(raw.get("previous", ""))) if raw.get("id") else None)
        lost = tuple(shard for shard, copy in zip(markers, copies, strict=True)
                     if identity is None or copy != identity.store_id)
        return Seen(identity, lost)

    async def initialise(self, identity: Identity, actor: str, reason: str) -> Identity:
        """Give a store with no identity this one, unless another process gave it one first; the identity it has.

        Atomic (one script on the control records), so processes starting together on a fresh store agree on
        one identity; the shards' markers are then set to that one (by every racer alike, so it is harmless)."""
        stored = await self.conn.run("store_init", [K.store_identity, K.store_audit], [
            identity.store_id, identity.created_ms, identity.how, identity.previous, actor, reason, AUDIT_KEPT])
        winner = Identity(str(stored[0]), int(stored[1]), str(stored[2]), str(stored[3]))
        markers = (await self._markers()).values()
        if markers:
            await self.conn.pipeline([("SET", key, winner.store_id) for key in markers])
        return winner

    async def write(self, identity: Identity, actor: str, reason: str) -> None:
        """The identity, its copy on every shard, and an audit entry (who and why)."""
        fields: list[Any] = ["id", identity.store_id, "created_ms", identity.created_ms, "how", identity.how,
                             "previous", identity.previous]
        commands: list[tuple[Any, ...]] = [("HSET", K.store_identity, *fields)]
        commands += [("SET", key, identity.store_id) for key in (await self._markers()).values()]
        commands.append(("XADD", K.store_audit, "MAXLEN", "~", AUDIT_KEPT, "*", "id", identity.store_id, "how",
                         identity.how, "previous", identity.previous, "actor", actor, "reason", reason,
                         "at_ms", identity.created_ms))
        await self.conn.pipeline(commands)

    async def risks(self) -> list[str]:
        """What in the Redis servers' own settings could lose consent data, each naming the setting to change:
        an eviction policy other than noeviction (opt-outs evicted under memory pressure), or no persistence
        at all (no AOF and no RDB snapshots: a restart forgets everything). CONFIG may be refused on managed
        Redis; INFO still tells the eviction policy and AOF."""
        commands = [("INFO", "memory"), ("INFO", "persistence"), ("CONFIG", "GET", "save")]
        if isinstance(self.conn.resp, ClusterConnection):
            answers = await self.conn.resp.each_master(commands)
        else:
            answers = {"redis": await self.conn.resp.send(commands)}
        found = []
        for server, (memory, persistence, save) in answers.items():
            info = _info(str(memory)) | _info(str(persistence))
            policy = info.get("maxmemory_policy", "noeviction")
            if policy != "noeviction":
                found.append(f"{server}: maxmemory-policy is {policy}: under memory pressure Redis may evict opt-outs, "
                             "holds and the consent ledger; set maxmemory-policy noeviction")
            snapshots = "" if isinstance(save, Exception) or not save else str(save[1] if len(save) > 1 else "")
            if info.get("aof_enabled") == "0" and not snapshots and not isinstance(save, Exception):
                found.append(f"{server}: no persistence (appendonly no, save \"\"): a restart forgets every opt-out; set "
                             "appendonly yes")
        return found

    async def history(self, count: int = 20) -> list[dict[str, str]]:
        rows = await self.conn.execute("XREVRANGE", K.store_audit, "+", "-", "COUNT", count)
        return [dict(zip(fields[::2], fields[1::2], strict=True)) for _, fields in rows or []]


def _info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))
