"""Every call's API key, checked without a Redis round trip on the call path.

A key presented once is looked up (its hash, by its public id) and the grant it carries is
cached in memory for ``cache_s``; the cache is dropped whenever the control revision moves
(``forget``, called by the poller), so a revoked key stops working everywhere within a
poll interval. While Redis cannot be reached, a grant already known keeps working.
Failures are counted by reason and limited per peer address before any lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from guard import logs, metrics
from guard.access import ROLE_NAMES, FailureLimiter, Grant, Role, bearer, digest_of, key_id_of, peer_host, same_digest
from guard.errors import PermissionDenied, StoreUnavailable, TooManyFailures, Unauthenticated
from guard.store.control import ControlStore

log = logs.get("guard.auth")

MAX_CACHED = 10_000
MISSING = "missing API key: send the metadata 'authorization: Bearer <key>'"
INVALID = "the API key is unknown or revoked"


class Authenticator:
    def __init__(self, control: ControlStore, *, cache_s: float = 30.0, failures_per_minute: int = 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.control = control
        self.cache_s = cache_s
        self.clock = clock
        self.limiter = FailureLimiter(failures_per_minute)
        self._grants: dict[str, tuple[Grant, float]] = {}
        self._used: set[str] = set()

    async def authorize(self, metadata: Iterable[tuple[str, Any]] | None, peer: Callable[[], str], method: str) -> Grant:
        """The caller's grant for ``method``; raises Unauthenticated, PermissionDenied or TooManyFailures.

        ``peer`` gives the caller's address (gRPC's ``context.peer``), asked for only when a key is looked up.
        """
        token = ""
        for name, value in metadata or ():
            if name == "authorization":
                token = bearer(value if isinstance(value, str) else value.decode("latin-1"))
                break
        now = self.clock()
        cached = self._grants.get(token) if token else None
        grant = cached[0] if cached is not None and cached[1] > now else await self._lookup(token, peer, now, cached)
        if not grant.allows(method):
            metrics.AUTH_FAILURES.labels("role").inc()
            roles = ", ".join(sorted(r.value for r in grant.roles))
            raise PermissionDenied(f"this key ({roles}) may not call {method}")
        self._used.add(grant.key_id)
        return grant

    async def _lookup(self, token: str, peer: Callable[[], str], now: float, stale: tuple[Grant, float] | None) -> Grant:
        host = peer_host(peer())  # asked only here: a call with a key known good pays nothing for it
        wait = self.limiter.blocked(host, now)
        if wait:
            metrics.AUTH_FAILURES.labels("limited").inc()
            raise TooManyFailures(wait)
        if not token:
            self._failed(host, now, "missing")
            raise Unauthenticated(MISSING)
        digest = digest_of(token)
        try:
            record = await self.control.key(key_id_of(digest))
        except StoreUnavailable:
            if stale is not None:  # Redis is away: a key known good a moment ago still is
                return stale[0]
            raise
        if record is None or not same_digest(record.digest, digest):
            self._failed(host, now, "unknown")
            raise Unauthenticated(INVALID)
        if record.revoked_ms:
            self._failed(host, now, "revoked")
            raise Unauthenticated(INVALID)
        grant = Grant(record.key_id, record.tenant, frozenset(Role(r) for r in record.roles if r in ROLE_NAMES),
                      record.name)
        if len(self._grants) >= MAX_CACHED:
            self._grants.clear()
        self._grants[token] = (grant, now + self.cache_s)
        return grant

    def _failed(self, host: str, now: float, reason: str) -> None:
        metrics.AUTH_FAILURES.labels(reason).inc()
        self.limiter.failed(host, now)
        log.info("auth_failed", reason=reason, peer=host)

    def forget(self) -> None:
        """Drop every cached grant: a key or policy changed somewhere."""
        self._grants.clear()

    async def flush_used(self, now_ms: int) -> None:
        """Write when keys were last used (batched: the call path only notes the id)."""
        used, self._used = self._used, set()
        try:
            await self.control.keys_used(sorted(used), now_ms)
        except StoreUnavailable:
            self._used |= used
