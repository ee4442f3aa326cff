"""A primary watched by Redis Sentinel, for the lean connection: ask the sentinels where it is, and follow it.

The sentinels are asked (``SENTINEL get-master-addr-by-name``) on the first command and whenever the
connection to the primary fails or the primary answers READONLY (it was demoted: a failover happened).
The address they give is believed only once that Redis says it is a master (``ROLE``), so guard never
writes to a demoted primary that came back believing it still leads. A write refused with READONLY was
not applied, so it is sent again to the new primary; a connection that failed mid-write is not
retried (the caller hears the store was unavailable, and its fail mode answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from guard import logs
from guard.store.resp import RespConnection, RespConnectionError, RespError, RespRefused
from guard.store.target import Target

log = logs.get("guard.store")


class UnknownService(RespRefused):
    """Every sentinel that answered said it watches no primary of that name: a configuration mistake."""


class SentinelConnection:
    """The same ``send`` as ``RespConnection``, to whichever Redis the sentinels name as the primary."""

    def __init__(self, target: Target, *, timeout_s: float) -> None:
        assert target.primary is not None
        self.target = target
        self.timeout_s = timeout_s
        self._sentinels = [RespConnection(node, timeout_s=timeout_s, credentials_setting="GUARD_REDIS_SENTINEL_PASSWORD")
                           for node in target.nodes]
        self._primary: RespConnection | None = None
        self._last = ""  # the primary used before, to say when it moved
        self._lock: asyncio.Lock | None = None

    @property
    def primary(self) -> str:
        """host:port of the primary in use ('' before the first command)."""
        return self._primary.node.name if self._primary is not None else ""

    async def discover(self) -> RespConnection:
        """The primary the sentinels name, once it says it is one."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._primary is not None:
                return self._primary
            errors: list[str] = []
            unknown = 0
            for sentinel in self._sentinels:
                try:
                    (where,) = await sentinel.send([("SENTINEL", "get-master-addr-by-name", self.target.service)])
                except RespRefused:
                    raise
                except RespConnectionError as exc:
                    errors.append(str(exc))
                    continue
                if isinstance(where, Exception) or not where:
                    unknown += 1
                    errors.append(f"{sentinel.node.name} knows no primary named {self.target.service!r}")
                    continue
                primary = RespConnection(self.target.primary.at(str(where[0]), int(where[1])),  # type: ignore[union-attr]
                                         timeout_s=self.timeout_s)
                try:
                    (role,) = await primary.send([("ROLE",)])
                except RespRefused:
                    raise
                except RespConnectionError as exc:
                    errors.append(f"the primary {primary.node.name} does not answer: {exc}")
                    await primary.close()
                    continue
                if isinstance(role, Exception) or not role or str(role[0]) != "master":
                    errors.append(f"{primary.node.name} is not a primary yet")
                    await primary.close()
                    continue
                self._primary = primary
                if self._last and self._last != primary.node.name:
                    log.warning("redis_primary_moved", old=self._last, new=primary.node.name)
                elif not self._last:
                    log.info("redis_primary_found", primary=primary.node.name, service=self.target.service)
                self._last = primary.node.name
                return primary
            if unknown and unknown == len(errors):
                raise UnknownService(f"no sentinel watches a primary named {self.target.service!r} "
                                     "(the service name in GUARD_REDIS_URL)")
            raise RespConnectionError("no primary found through the sentinels: " + "; ".join(errors))

    async def _forget(self, primary: RespConnection, why: str) -> None:
        if self._primary is primary:
            self._primary = None
            log.warning("redis_primary_lost", primary=primary.node.name, reason=why,
                        note="asking the sentinels where the primary is now")
            await primary.close()

    async def send(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        primary = await self.discover()
        try:
            replies = await primary.send(commands)
        except RespRefused:
            raise
        except RespConnectionError as exc:
            await self._forget(primary, str(exc))
            raise
        demoted = [i for i, r in enumerate(replies) if isinstance(r, RespError) and str(r).startswith("READONLY")]
        if not demoted:
            return replies
        await self._forget(primary, "it answered READONLY: it is a replica now")
        fresh = await self.discover()
        again = await fresh.send([commands[i] for i in demoted])  # refused, so never applied: safe to send again
        for i, reply in zip(demoted, again, strict=True):
            replies[i] = reply
        return replies

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._sentinels))
        if self._primary is not None:
            await self._primary.close()
