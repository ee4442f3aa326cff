"""A "no" is never forgotten silently: guard checks that its store still is the store it wrote to.

Opt-outs, holds, caps and the consent ledger live in Redis. A Redis that lost them (a flush, a restart
without persistence, a failover that dropped writes, a restore from an old backup) looks like a store
full of new users who never said no. So guard gives its store an identity when it first initialises
it (``guard.store.identity``), remembers it (in memory, and in ``store.id`` in the data directory, so
a restart remembers too) and checks it at start and on every control poll. A store that lost it is
*reset*: marketing answers DEFER with ``STORE_RESET``, transactional follows its fail mode, health
says NOT_SERVING with the reason, the log says it once at ``error`` (and again when it ends), and
nothing is re-initialised until an operator runs ``guard store adopt`` (this store is the intended one)
or restores a backup.

A store with no identity is initialised only when nobody knew one: no ``store.id`` in the data
directory and none in this process (a fresh deployment, or an upgrade from a release before
identities). Keep the data directory: it is what tells a restarted guard that its store forgot.
"""

from __future__ import annotations

import os
from pathlib import Path

from guard import logs, metrics
from guard.domain.clock import Clock
from guard.store.identity import Identity, IdentityStore, Seen
from guard.store.redis_store import RedisStore

log = logs.get("guard.store_identity")

LOCAL_FILE = "store.id"


def read_local(data_dir: Path) -> str:
    try:
        return (data_dir / LOCAL_FILE).read_text(encoding="ascii").strip()
    except OSError:
        return ""


def write_local(data_dir: Path, store_id: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f".{LOCAL_FILE}.{os.getpid()}"
    temporary.write_text(store_id + "\n", encoding="ascii")
    temporary.replace(data_dir / LOCAL_FILE)


class StoreWatch:
    def __init__(self, store: RedisStore, data_dir: Path, now: Clock) -> None:
        self.store = store
        self.identities = IdentityStore(store.conn)
        self.data_dir = data_dir
        self.now = now
        self.known: Identity | None = None
        self._risks_told = False  # the servers' settings are read at start and after every outage

    @property
    def reset(self) -> str:
        """Why the store is not trusted now ('' when it is)."""
        return self.store.reset_reason

    @property
    def initialised(self) -> bool:
        return self.known is not None

    async def check(self) -> None:
        """Compare the store with what guard knew of it (raises StoreUnavailable when Redis does not answer)."""
        seen = await self.identities.seen()
        if not self._risks_told:
            for risk in await self.identities.risks():
                log.error("store_settings_risk", risk=risk)
            self._risks_told = True
        remembered = self.known.store_id if self.known else read_local(self.data_dir)
        problem = self._problem(seen, remembered)
        if problem:
            self._lost(problem)
            return
        if seen.identity is None:  # nobody knew one: a fresh store, or one from before identities
            mine = Identity.new(self.now(), "initialised")
            identity = await self.identities.initialise(mine, "guard", "a store with no identity, and none known here")
            if identity == mine:
                log.info("store_initialised", store_id=identity.store_id)
            else:  # another process (a worker beside this one) initialised it a moment before: the same store
                log.info("store_initialised_by_another", store_id=identity.store_id)
            seen = Seen(identity)
        assert seen.identity is not None
        if self.known is not None and seen.identity.store_id != self.known.store_id:
            log.warning("store_adopted", store_id=seen.identity.store_id, previous=self.known.store_id)
        self.known = seen.identity
        if read_local(self.data_dir) != seen.identity.store_id:
            write_local(self.data_dir, seen.identity.store_id)
        metrics.STORE_RESET.set(0)
        if self.store.reset_reason:
            log.error("store_reset_ended", store_id=seen.identity.store_id,
                      note="the store was adopted: marketing flows again")
            self.store.reset_reason = ""

    def lost_contact(self) -> None:
        """Redis did not answer: when it does again, its settings are read again (it may be another server)."""
        self._risks_told = False

    def _problem(self, seen: Seen, remembered: str) -> str:
        """What is wrong with the store as seen, given the identity guard remembers ('' when nothing is)."""
        if seen.identity is None:
            if not remembered:
                return ""
            return ("the store has no identity: it was flushed, restarted without persistence, or restored from "
                    "before guard marked it; opt-outs, holds and caps may be gone")
        if seen.lost:
            return (f"shard(s) {', '.join(seen.lost)} lost the store's marker: they lost their data (opt-outs, holds "
                    "and caps of the users they hold)")
        if remembered and seen.identity.store_id != remembered and seen.identity.how != "adopted":
            return (f"the store is another one (identity {seen.identity.store_id}, guard knew {remembered}): "
                    "pointed at another Redis, or restored from another deployment")
        return ""

    def _lost(self, problem: str) -> None:
        if self.store.reset_reason != problem:
            log.error("store_reset", reason=problem,
                      note="marketing answers DEFER (STORE_RESET) until an operator runs `guard store adopt` (this "
                           "store is the intended one) or restores a backup")
        self.store.reset_reason = problem
        metrics.STORE_RESET.set(1)


async def adopt(watch: StoreWatch, actor: str, reason: str) -> Identity:
    """``guard store adopt``: this store is the intended one. A new identity (naming the one it replaces) on
    the store and every shard, with who and why in the store's audit; every serving process takes it at its
    next poll, and marketing flows again."""
    seen = await watch.identities.seen()
    previous = read_local(watch.data_dir) or (seen.identity.store_id if seen.identity else "")
    identity = Identity.new(watch.now(), "adopted", previous)
    await watch.identities.write(identity, actor, reason)
    write_local(watch.data_dir, identity.store_id)
    log.warning("store_adopted", store_id=identity.store_id, previous=previous, actor=actor)
    return identity


async def status(watch: StoreWatch) -> dict[str, object]:
    """``guard store status``: the identity, the shards that lost it, what this host remembers, the history."""
    seen = await watch.identities.seen()
    remembered = read_local(watch.data_dir)
    problem = watch._problem(seen, remembered)
    return {"state": "reset" if problem else "ok" if seen.identity else "not initialised", "reason": problem,
            "identity": seen.identity.__dict__ if seen.identity else None, "lost_shards": list(seen.lost),
            "remembered_here": remembered, "history": await watch.identities.history()}
