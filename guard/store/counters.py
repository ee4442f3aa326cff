"""Per-campaign counters, counted off the response path.

A recorded touch, a negative reply or an opt-out adds one to its campaign's figures. The
campaign's hash lives in the tenant's slot, not the user's, so counting inside the check
script would break the one-slot rule and counting beside it would cost every recorded
touch a second round trip. Instead ``add`` only notes the increment in memory, and a
flusher writes the sums every ``every_s`` seconds as one pipeline of HINCRBYs. What a
crash can lose is the last interval's increments (figures for people, never a cap); a
failed write keeps them for the next flush; ``close`` flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from guard import logs
from guard.errors import StoreUnavailable
from guard.store.connection import Connection
from guard.store.keys import TenantKeys

log = logs.get("guard.store.counters")


class CampaignCounters:
    def __init__(self, conn: Connection, *, every_s: float = 0.1) -> None:
        self.conn = conn
        self.every_s = every_s
        self._pending: Counter[tuple[str, str, str]] = Counter()
        self._task: asyncio.Task[None] | None = None

    def add(self, tenant: str, campaign_id: str, field: str, n: int = 1) -> None:
        """Count without waiting: the sum reaches Redis with the next flush."""
        if campaign_id:
            self._pending[(tenant, campaign_id, field)] += n
            if self._task is None:
                with contextlib.suppress(RuntimeError):  # no running loop: counted at the next flush
                    self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, Counter()
        try:
            await self.conn.pipeline([("HINCRBY", TenantKeys(t).campaign(c), f, n) for (t, c, f), n in batch.items()])
        except StoreUnavailable as exc:
            self._pending.update(batch)  # kept for the next flush
            log.warning("campaign_counters_unwritten", error=str(exc), pending=len(self._pending))

    async def read(self, tenant: str, campaign_id: str) -> dict[str, int]:
        await self.flush()
        raw = await self.conn.execute("HGETALL", TenantKeys(tenant).campaign(campaign_id))
        return {str(k): int(v) for k, v in dict(raw or {}).items()}

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
