"""Every call's API key, checked without a Redis round trip on the call path.

A key presented once is looked up (its hash, by its public id) and the grant it carries is
cached in memory for ``cache_s``; the cache is dropped whenever the control revision moves
(``forget``, called by the poller), so a revoked key stops working everywhere within a
poll interval. While Redis cannot be reached, a grant already known keeps working.

Failures are counted by reason and limited per peer address, one bucket per door (the gRPC
calls, the desk's sign-in): a valid key is never refused by the limiter, since the key is
checked first and only failures count; an address out of tokens gets RESOURCE_EXHAUSTED
instead of UNAUTHENTICATED for a bad key, so guessing stays slow. A key found bad is
remembered for a minute, so repeating it costs Redis nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from guard import logs, metrics
from guard.access.keys import ROLE_NAMES, FailureLimiter, Grant, Role, bearer, digest_of, key_id_of, peer_host, same_digest
from guard.errors import PermissionDenied, StoreUnavailable, TooManyFailures, Unauthenticated
from guard.store.control import ControlStore

log = logs.get("guard.auth")

MAX_CACHED = 10_000
BAD_KEY_MEMORY_S = 60.0
DOORS = ("grpc", "desk")
MISSING = "missing API key: send the metadata 'authorization: Bearer <key>'"
INVALID = "the API key is unknown or revoked"


class Authenticator:
    def __init__(self, control: ControlStore, *, cache_s: float = 30.0, failures_per_minute: int = 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.control = control
        self.cache_s = cache_s
        self.clock = clock
        self.limiters = {door: FailureLimiter(failures_per_minute) for door in DOORS}
        self._grants: dict[str, tuple[Grant, float]] = {}
        self._bad: dict[str, tuple[str, float]] = {}  # key -> (why it failed, until when that is remembered)
        # Why the store is not trusted ('' when it is): wired by the app to the store's identity check.
        self.store_reset: Callable[[], str] = lambda: ""
        self._used: set[str] = set()

    async def authorize(self, metadata: Iterable[tuple[str, Any]] | None, peer: Callable[[], str], method: str,
                        door: str = "grpc") -> Grant:
        """The caller's grant for ``method``; raises Unauthenticated, PermissionDenied or TooManyFailures.

        ``peer`` gives the caller's address (gRPC's ``context.peer``), asked for only when a key is looked up;
        ``door`` names the bucket its failures count in.
        """
        token = ""
        for name, value in metadata or ():
            if name == "authorization":
                token = bearer(value if isinstance(value, str) else value.decode("latin-1"))
                break
        now = self.clock()
        cached = self._grants.get(token) if token else None
        grant = cached[0] if cached is not None and cached[1] > now else await self._lookup(token, peer, now, cached, door)
        if not grant.allows(method):
            metrics.AUTH_FAILURES.labels("role").inc()
            roles = ", ".join(sorted(r.value for r in grant.roles))
            raise PermissionDenied(f"this key ({roles}) may not call {method}")
        self._used.add(grant.key_id)
        return grant

    async def _lookup(self, token: str, peer: Callable[[], str], now: float, stale: tuple[Grant, float] | None,
                      door: str) -> Grant:
        host = peer_host(peer())  # asked only here: a call with a key known good pays nothing for it
        limiter = self.limiters[door]
        if not token:
            self._refuse(limiter, host, now, "missing", MISSING)
        known_bad = self._bad.get(token)
        if known_bad is not None and known_bad[1] > now:
            self._refuse(limiter, host, now, known_bad[0], INVALID)
        digest = digest_of(token)
        try:
            record = await self.control.key(key_id_of(digest))
        except StoreUnavailable:
            if stale is not None:  # Redis is away: a key known good a moment ago still is
                return stale[0]
            raise
        if record is None and stale is not None and self.store_reset():
            return stale[0]  # the store forgot every key: a key known good a moment ago still is (like an outage)
        if record is None or not same_digest(record.digest, digest) or record.revoked_ms:
            reason = "revoked" if record is not None and record.revoked_ms else "unknown"
            if len(self._bad) >= MAX_CACHED:
                self._bad.clear()
            self._bad[token] = (reason, now + BAD_KEY_MEMORY_S)
            self._refuse(limiter, host, now, reason, INVALID)
        assert record is not None
        grant = Grant(record.key_id, record.tenant, frozenset(Role(r) for r in record.roles if r in ROLE_NAMES),
                      record.name)
        if len(self._grants) >= MAX_CACHED:
            self._grants.clear()
        self._grants[token] = (grant, now + self.cache_s)
        return grant

    def _refuse(self, limiter: FailureLimiter, host: str, now: float, reason: str, message: str) -> NoReturn:
        """A failed authentication: counted, and answered RESOURCE_EXHAUSTED once the address is out of tokens."""
        wait = limiter.blocked(host, now)
        if wait:
            metrics.AUTH_FAILURES.labels("limited").inc()
            raise TooManyFailures(wait)
        metrics.AUTH_FAILURES.labels(reason).inc()
        limiter.failed(host, now)
        log.info("auth_failed", reason=reason, peer=host)
        raise Unauthenticated(message)

    def forget(self) -> None:
        """Drop every cached grant: a key or policy changed somewhere."""
        self._grants.clear()
        self._bad.clear()

    async def flush_used(self, now_ms: int) -> None:
        """Write when keys were last used (batched: the call path only notes the id)."""
        used, self._used = self._used, set()
        try:
            await self.control.keys_used(sorted(used), now_ms)
        except StoreUnavailable:
            self._used |= used
