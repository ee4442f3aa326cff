"""What the webhook receivers keep: each tenant's provider secrets, the provider events already applied, and the
contact index (the user behind a phone number or an email address, by a keyed hash: never the address itself)."""

from __future__ import annotations

from guard.store.connection import Connection
from guard.store.keys import ControlKeys, TenantKeys, UserKeys

K = ControlKeys()
# A provider retries for a day or three; an event id is remembered for a week.
SEEN_TTL_MS = 7 * 86_400_000


class HookStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def secrets(self, tenant: str, provider: str, now_ms: int) -> dict[str, list[str]]:
        """Each secret's accepted values, the current first (the previous one while its grace lasts)."""
        raw = {str(k): str(v) for k, v in dict(await self.conn.execute("HGETALL", K.hook_secrets(tenant)) or {}).items()}
        out: dict[str, list[str]] = {}
        for field, value in raw.items():
            name, _, rest = field.partition(".")
            if name != provider or ":" in rest:
                continue
            accepted = [value]
            previous, until = raw.get(f"{field}:previous"), int(raw.get(f"{field}:until", "0") or 0)
            if previous and until > now_ms:
                accepted.append(previous)
            out[rest] = accepted
        return out

    async def configured(self, tenant: str) -> dict[str, list[str]]:
        """provider → the names of the secrets set (never their values)."""
        raw = dict(await self.conn.execute("HGETALL", K.hook_secrets(tenant)) or {})
        out: dict[str, list[str]] = {}
        for field in sorted(str(f) for f in raw):
            provider, _, name = field.partition(".")
            if ":" not in name:
                out.setdefault(provider, []).append(name)
        return out

    async def set_secret(self, tenant: str, provider: str, name: str, value: str, grace_ms: int, now_ms: int) -> None:
        """The new value signs from now on; the one it replaces is accepted ``grace_ms`` more (0: not at all)."""
        await self.conn.run("hook_secret", [K.hook_secrets(tenant), K.revision, K.tenants],
                            [f"{provider}.{name}", value, str(now_ms + grace_ms if grace_ms else 0), tenant])

    async def token_for(self, tenant: str, provider: str, token: str, event_id: str) -> bool:
        """Claims a signature token for one event: True the first time, and for the same event again (the provider's
        retry); False when the token came before with another event (a captured signature replayed)."""
        key = TenantKeys(tenant).hook_seen(provider, f"token:{token}")
        if await self.conn.execute("SET", key, event_id, "NX", "PX", SEEN_TTL_MS):
            return True
        return str(await self.conn.execute("GET", key) or "") == event_id

    async def first_times(self, tenant: str, provider: str, event_ids: list[str]) -> list[bool]:
        """True once per (provider, event id), for many events in one round trip: a retried webhook finds its events
        taken (and one of two equal ids in a batch is a replay)."""
        if not event_ids:
            return []
        keys = TenantKeys(tenant)
        taken = await self.conn.pipeline([("SET", keys.hook_seen(provider, e), "1", "NX", "PX", SEEN_TTL_MS)
                                          for e in event_ids])
        return [bool(t) for t in taken]

    async def forget_events(self, tenant: str, provider: str, event_ids: list[str]) -> None:
        """Events that failed to apply are not remembered: the provider's retry applies them."""
        if event_ids:
            keys = TenantKeys(tenant)
            await self.conn.pipeline([("DEL", keys.hook_seen(provider, e)) for e in event_ids])

    async def user_by_contact(self, tenant: str, digest: str) -> str:
        raw = await self.conn.execute("GET", TenantKeys(tenant).contact(digest))
        return str(raw) if raw else ""

    async def set_contacts(self, keys: UserKeys, digests: list[str]) -> None:
        """The user's contact points become ``digests`` (each points at the user; ones no longer theirs are
        removed, unless another user has taken the address since)."""
        tenant = TenantKeys(keys.tenant)
        before = {str(d) for d in await self.conn.execute("SMEMBERS", keys.contacts) or []}
        commands: list[tuple[object, ...]] = [("SET", tenant.contact(d), keys.user_id) for d in digests]
        commands += [("DEL", tenant.contact(d)) for d in await self._owned(keys, sorted(before - set(digests)))]
        await self.conn.pipeline(commands)
        await self.conn.pipeline([("DEL", keys.contacts), *([("SADD", keys.contacts, *digests)] if digests else [])])

    async def add_contact(self, keys: UserKeys, digest: str) -> None:
        """One more contact point of the user (an address now theirs stops pointing at whoever had it before)."""
        await self.conn.execute("SET", TenantKeys(keys.tenant).contact(digest), keys.user_id)
        await self.conn.execute("SADD", keys.contacts, digest)

    async def drop_contacts(self, keys: UserKeys) -> int:
        """Erasure: the index forgets every contact point of the user."""
        digests = sorted(str(d) for d in await self.conn.execute("SMEMBERS", keys.contacts) or [])
        mine = await self._owned(keys, digests)
        if mine:
            await self.conn.pipeline([("DEL", TenantKeys(keys.tenant).contact(d)) for d in mine])
        return len(mine)

    async def _owned(self, keys: UserKeys, digests: list[str]) -> list[str]:
        """Those of ``digests`` the index still points at this user (another may have taken an address since)."""
        if not digests:
            return []
        tenant = TenantKeys(keys.tenant)
        owners = await self.conn.pipeline([("GET", tenant.contact(d)) for d in digests])
        return [d for d, owner in zip(digests, owners, strict=True) if owner is not None and str(owner) == keys.user_id]

    async def keep_unmatched(self, tenant: str, digest: str, event_id: str, message: str, keep_ms: int) -> None:
        """An inbound message from an address no user has: kept under the address's hash (as long as a reply's words
        are), so it reaches the user when the address becomes theirs."""
        key = TenantKeys(tenant).unmatched_inbound(digest)
        await self.conn.pipeline([("HSET", key, event_id, message), ("PEXPIRE", key, keep_ms)])

    async def claim_unmatched(self, tenant: str, digest: str) -> dict[str, str]:
        """The messages kept for an address, taken (each is handed out once)."""
        key = TenantKeys(tenant).unmatched_inbound(digest)
        kept = {str(k): str(v) for k, v in dict(await self.conn.execute("HGETALL", key) or {}).items()}
        if kept:
            await self.conn.execute("HDEL", key, *kept)
        return kept
