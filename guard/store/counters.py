"""Campaign, strategy and tenant figures, counted off the response path.

A recorded touch, a reply, an engagement event or a task adds one to its figures. Those
live in the tenant's slot, not the user's, so counting inside the check script would break
the one-slot rule and counting beside it would cost every recorded touch a second round
trip. Instead ``add`` only notes the increment in memory, and a flusher writes the sums
every ``every_s`` seconds, one script call per tenant (``figures_add.lua``). What a crash can
lose is the last interval's increments (figures for people, never a cap); a failed write keeps
them for the next flush; ``close`` flushes what is left.

Figures are kept per hour (a hash per campaign, strategy or tenant and hour, kept 16 days),
so any rolling window of whole hours, and the one before it, can be summed; a campaign's
all-time totals are kept too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from guard import logs, metrics
from guard.errors import StoreUnavailable
from guard.store.connection import Connection
from guard.store.keys import TenantKeys

log = logs.get("guard.store.counters")

HOUR_MS = 3_600_000
KEEP_S = 16 * 86_400  # two 7-day windows and the ignore look-back


class CampaignCounters:
    def __init__(self, conn: Connection, *, every_s: float = 0.1) -> None:
        self.conn = conn
        self.every_s = every_s
        self._pending: Counter[tuple[str, str, str, int, str]] = Counter()  # tenant, scope, name, hour, figure
        self._task: asyncio.Task[None] | None = None
        self._metric: dict[tuple[str, str], Any] = {}  # the tenant figure's metric child, looked up once
        self._outage = logs.Condition(log, "campaign_counters_unwritten", "warning")  # once, not every flush

    def add(self, tenant: str, campaign_id: str, field: str, n: int = 1, *, strategy_id: str = "",
            at_ms: int | None = None) -> None:
        """Count without waiting: the sum reaches Redis with the next flush. ``at_ms`` picks the hour."""
        hour = (at_ms if at_ms is not None else time.time_ns() // 1_000_000) // HOUR_MS
        self._pending[(tenant, "t", "", hour, field)] += n
        counter = self._metric.get((tenant, field))
        if counter is None:
            counter = self._metric[(tenant, field)] = metrics.FIGURES.labels(tenant, field)
        counter.inc(n)
        if campaign_id:
            self._pending[(tenant, "c", campaign_id, hour, field)] += n
        if strategy_id:
            self._pending[(tenant, "s", strategy_id, hour, field)] += n
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no running loop: counted at the next flush
                self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, Counter()
        by_tenant: dict[str, list[tuple[str, str, int, str, int]]] = {}
        for (tenant, scope, name, hour, field), n in batch.items():
            by_tenant.setdefault(tenant, []).append((scope, name, hour, field, n))
        written: set[str] = set()
        try:
            for tenant, items in by_tenant.items():  # one script per tenant: its keys share one slot
                await self.conn.run("figures_add", *_script_call(tenant, items))
                written.add(tenant)
        except StoreUnavailable as exc:
            self._pending.update(Counter({k: n for k, n in batch.items() if k[0] not in written}))  # the next flush
            self._outage.met(error=str(exc), pending=len(self._pending))
            return
        self._outage.ended()

    async def read(self, tenant: str, campaign_id: str) -> dict[str, int]:
        """A campaign's all-time totals."""
        await self.flush()
        raw = await self.conn.execute("HGETALL", TenantKeys(tenant).campaign(campaign_id))
        return {str(k): int(v) for k, v in dict(raw or {}).items()}

    async def totals(self, tenant: str, scope: str, names: Sequence[str], field: str) -> list[int]:
        """One all-time figure of many campaigns (or strategies), in one round trip."""
        keys = TenantKeys(tenant)
        rows = await self.conn.pipeline([("HGET", keys.totals(scope, n), field) for n in names]) if names else []
        return [int(r or 0) for r in rows]

    async def hours(self, tenant: str, scope: str, name: str, first_hour: int, last_hour: int) -> list[dict[str, int]]:
        """The figures of each hour from ``first_hour`` to ``last_hour``, both included."""
        await self.flush()
        keys = TenantKeys(tenant)
        rows = await self.conn.pipeline([("HGETALL", keys.figures(scope, name, h))
                                         for h in range(first_hour, last_hour + 1)])
        return [{str(k): int(v) for k, v in dict(r or {}).items()} for r in rows]

    async def active(self, tenant: str, scope: str, since_ms: int) -> Sequence[str]:
        """Campaigns (or strategies) with figures in an hour from ``since_ms`` on."""
        await self.flush()
        rows = await self.conn.execute("ZRANGEBYSCORE", TenantKeys(tenant).figure_index(scope),
                                       since_ms - since_ms % HOUR_MS, "+inf")
        return [str(r) for r in rows]

    async def moved(self, tenant: str, scope: str, limit: int = 1000) -> list[str]:
        """Take (and forget) the campaigns or strategies whose figures moved since this was last asked."""
        await self.flush()
        rows = await self.conn.execute("SPOP", TenantKeys(tenant).figures_dirty(scope), limit)
        return [str(r) for r in rows or []]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(StoreUnavailable):
            await self.flush()


def _script_call(tenant: str, items: Sequence[tuple[str, str, int, str, int]]) -> tuple[list[str], list[object]]:
    """``figures_add.lua``'s keys and arguments for one tenant's increments (scope, name, hour, figure, n)."""
    keys = TenantKeys(tenant)
    names = [keys.figure_index("c"), keys.figure_index("s"), keys.figures_dirty("c"), keys.figures_dirty("s")]
    position: dict[str, int] = {}

    def at(key: str) -> int:
        if key not in position:
            names.append(key)
            position[key] = len(names)
        return position[key]

    args: list[object] = [KEEP_S]
    for scope, name, hour, field, n in items:
        args += [at(keys.figures(scope, name, hour)), at(keys.totals(scope, name)) if scope != "t" else 0,
                 scope, name, field, n, hour * HOUR_MS]
    return names, args
