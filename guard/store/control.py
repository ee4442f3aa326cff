"""The deployment's own records in Redis: tenants, API keys (hashed) and each tenant's policy.

All of it lives in the ``{control}`` slot. Every change bumps one revision counter, which
every serving process polls: so a revoked key or a new policy reaches them all within a
poll interval without a Redis round trip on any call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from guard.store.connection import Connection
from guard.store.keys import ControlKeys

K = ControlKeys()


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    digest: str
    tenant: str
    roles: tuple[str, ...]
    name: str
    created_ms: int
    last_used_ms: int
    revoked_ms: int

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> KeyRecord:
        return cls(raw.get("key_id", ""), raw.get("digest", ""), raw.get("tenant", ""),
                   tuple(r for r in raw.get("roles", "").split(",") if r), raw.get("name", ""),
                   int(raw.get("created_ms", 0)), int(raw.get("last_used_ms", 0)), int(raw.get("revoked_ms", 0)))


@dataclass(frozen=True)
class PolicyRecord:
    tenant: str
    yaml: str
    version: int
    applied_ms: int
    actor: str


class ControlStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def revision(self) -> int:
        return int(await self.conn.execute("GET", K.revision) or 0)

    async def tenants(self) -> list[str]:
        return sorted(str(t) for t in await self.conn.execute("SMEMBERS", K.tenants) or [])

    # -- API keys ----------------------------------------------------------------------------

    async def create_key(self, key_id: str, digest: str, tenant: str, roles: Iterable[str], name: str, now_ms: int,
                         *, first: bool = False) -> bool:
        """Store a key's record; with ``first``, only while no key exists at all (the first start's key)."""
        done = await self.conn.run("key_create", [K.key(key_id), K.key_index, K.tenants, K.revision],
                                   [key_id, digest, tenant, ",".join(sorted(roles)), name, str(now_ms),
                                    "1" if first else "0"])
        return int(done) == 1

    async def key(self, key_id: str) -> KeyRecord | None:
        raw = await self.conn.execute("HGETALL", K.key(key_id))
        return KeyRecord.from_hash(dict(raw)) if raw else None

    async def keys(self, tenant: str) -> list[KeyRecord]:
        """The tenant's keys, oldest first (revoked ones too: they are the audit of who could call)."""
        ids = [str(i) for i in await self.conn.execute("ZRANGE", K.key_index, 0, -1)]
        rows = await self.conn.pipeline([("HGETALL", K.key(i)) for i in ids])
        records = [KeyRecord.from_hash(dict(r)) for r in rows if r]
        return [r for r in records if r.tenant == tenant]

    async def revoke_key(self, tenant: str, key_id: str, now_ms: int) -> str:
        """'ok', 'again' (already revoked) or 'missing' (no such key in this tenant)."""
        return str(await self.conn.run("key_revoke", [K.key(key_id), K.revision], [tenant, str(now_ms)]))

    async def keys_used(self, key_ids: Iterable[str], now_ms: int) -> None:
        names = [K.key(i) for i in key_ids]
        if names:
            await self.conn.run("key_used", names, [str(now_ms)])

    # -- tenants' policies --------------------------------------------------------------------

    async def apply_policy(self, tenant: str, yaml_text: str, actor: str, now_ms: int) -> int:
        return int(await self.conn.run("policy_apply", [K.policy(tenant), K.policy_versions, K.tenants, K.revision],
                                       [tenant, yaml_text, actor, str(now_ms)]))

    async def policy_versions(self) -> dict[str, int]:
        raw = await self.conn.execute("HGETALL", K.policy_versions)
        return {str(t): int(v) for t, v in dict(raw or {}).items()}

    # -- preference links and the pages' own secret ------------------------------------------------

    async def link_secrets(self, tenant: str) -> tuple[str, dict[str, bytes]]:
        """(the id signing now or '', every accepted secret by id)."""
        raw = dict(await self.conn.execute("HGETALL", K.link_secrets(tenant)) or {})
        secrets = {str(f)[2:]: bytes.fromhex(str(v)) for f, v in raw.items() if str(f).startswith("s:")}
        return str(raw.get("current", "")), secrets

    async def change_link_secret(self, tenant: str, mode: str, secret_id: str, secret: bytes, *,
                                 retire_previous: bool = False, keep: int = 4) -> str:
        """``ensure`` (the first secret, made while there is none) or ``rotate``; the id signing now."""
        return str(await self.conn.run("link_secret", [K.link_secrets(tenant), K.revision, K.tenants],
                                       [mode, secret_id, secret.hex(), "1" if retire_previous else "0", str(keep), tenant]))

    async def web_secret(self, candidate: bytes) -> bytes:
        """The deployment's pages secret: ``candidate`` when none existed yet, else the one every process shares."""
        await self.conn.execute("SET", K.web_secret, candidate.hex(), "NX")
        return bytes.fromhex(str(await self.conn.execute("GET", K.web_secret)))

    async def remember_wording(self, version: str, text: str) -> None:
        """Keep the words a consent page showed under their hash, once: the ledger's evidence names the hash."""
        await self.conn.execute("SET", K.wording(version), text, "NX")

    async def wordings(self, versions: list[str]) -> dict[str, str]:
        """The words behind these hashes (those kept)."""
        if not versions:
            return {}
        found = await self.conn.pipeline([("GET", K.wording(v)) for v in versions])
        return {v: str(t) for v, t in zip(versions, found, strict=True) if t}

    # -- desk sessions ------------------------------------------------------------------------------

    async def open_desk_session(self, session_id: str, key_id: str, tenant: str, agent: str, ttl_ms: int) -> None:
        name = K.desk_session(session_id)
        await self.conn.pipeline([("HSET", name, "key_id", key_id, "tenant", tenant, "agent", agent),
                                  ("PEXPIRE", name, ttl_ms)])

    async def desk_session(self, session_id: str) -> tuple[str, str, str] | None:
        """(key id, tenant, agent) of a session still signed in; None once it ended or expired."""
        raw = dict(await self.conn.execute("HGETALL", K.desk_session(session_id)) or {})
        return (str(raw["key_id"]), str(raw["tenant"]), str(raw["agent"])) if raw.get("key_id") else None

    async def end_desk_session(self, session_id: str) -> None:
        await self.conn.execute("DEL", K.desk_session(session_id))

    async def policy(self, tenant: str) -> PolicyRecord | None:
        raw = dict(await self.conn.execute("HGETALL", K.policy(tenant)) or {})
        if not raw:
            return None
        return PolicyRecord(tenant, raw.get("yaml", ""), int(raw.get("version", 0)), int(raw.get("applied_ms", 0)),
                            raw.get("actor", ""))
