"""Figures, the fatigue index and experience health over rolling windows of whole hours.

Read from the hourly figures the counters keep (``store/counters.py``). A touch's ignore verdict is
known ``engagement.ignore_after`` after it went out, so a window's ignore rate is over the touches
whose verdict came due in the window: those sent ``ignore_after`` earlier.
"""

from __future__ import annotations

from dataclasses import dataclass

from guard.domain import clock
from guard.domain.clock import Clock
from guard.domain.fatigue import Figures, cautious_index, index, rates
from guard.errors import InvalidArgument
from guard.policy import Policy
from guard.store.counters import HOUR_MS, CampaignCounters
from guard.validate import check_id, check_page_size, shown

WINDOWS = {"24h": 24, "7d": 7 * 24}  # hours
SCOPES = {"campaign": "c", "strategy": "s", "tenant": "t"}


@dataclass(frozen=True)
class Health:
    scope: str  # campaign, strategy or tenant
    name: str
    window: str
    figures: Figures
    rates: dict[str, float]
    fatigue_index: float
    previous_index: float
    enough: bool = True  # touches in the window reach the policy's fatigue.min_touches: the index means something
    ranking_index: float = 0.0  # the index over each rate's lower confidence bound: what the ranking orders by

    @property
    def trend(self) -> float:
        return round(self.fatigue_index - self.previous_index, 1)


def _sum(rows: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        for k, v in row.items():
            out[k] = out.get(k, 0) + v
    return out


def _figures(rows: list[dict[str, int]], end: int, hours: int, shift: int) -> Figures:
    """The window of ``hours`` ending at hour ``end`` (an index into ``rows``); its ignore rate over the cohort
    sent ``shift`` hours earlier."""
    span = rows[end - hours + 1:end + 1]
    cohort = rows[end - hours + 1 - shift:end + 1 - shift]
    counts = _sum(span)
    counts["judged"] = sum(r.get("touches", 0) for r in cohort)
    counts["interacted"] = sum(r.get("interacted", 0) for r in cohort)
    return Figures.of(counts)


class HealthService:
    def __init__(self, policy: Policy, counters: CampaignCounters, tenant: str, *,
                 now: Clock = clock.system_clock) -> None:
        self.policy = policy
        self.counters = counters
        self.tenant = tenant
        self.now = now

    def _shift(self) -> int:
        """Hours from a touch to its ignore verdict (``engagement.ignore_after``, rounded up)."""
        return -(-self.policy.engagement.ignore_after_ms // HOUR_MS)

    @staticmethod
    def window_hours(window: str) -> tuple[str, int]:
        name = window or "7d"
        if name not in WINDOWS:
            raise InvalidArgument("window", f"{shown(name)} is not a window (24h or 7d)")
        return name, WINDOWS[name]

    async def health(self, scope: str, name: str, window: str, since_ms: int = 0,
                     base: dict[str, int] | None = None) -> Health:
        """``since_ms``: only what came after it counts (a brake rule after a resume): hours before it are left
        out, and ``base``, what its own hour held at that moment, is taken off that hour."""
        window, hours = self.window_hours(window)
        last, shift = self.now() // HOUR_MS, self._shift()
        first = last - 2 * hours + 1 - shift  # the window before too, and the cohort its ignore rate is over
        rows = await self.counters.hours(self.tenant, SCOPES[scope], name, first, last)
        since_hour = since_ms // HOUR_MS
        rows = [{} if first + i < since_hour else
                {k: v - (base or {}).get(k, 0) for k, v in row.items()} if first + i == since_hour else row
                for i, row in enumerate(rows)]

        current, previous = _figures(rows, len(rows) - 1, hours, shift), _figures(rows, len(rows) - 1 - hours, hours, shift)
        levels = self.policy.fatigue.components
        return Health(scope, name, window, current, rates(current), index(current, levels), index(previous, levels),
                      current.touches >= self.policy.fatigue.min_touches, cautious_index(current, levels))

    async def campaign(self, campaign_id: str, strategy_id: str, window: str) -> Health:
        if bool(campaign_id) == bool(strategy_id):
            raise InvalidArgument("campaign_id", "name exactly one of campaign_id and strategy_id")
        if campaign_id:
            check_id(campaign_id, "campaign_id")
            return await self.health("campaign", campaign_id, window)
        check_id(strategy_id, "strategy_id")
        return await self.health("strategy", strategy_id, window)

    async def ranked(self, strategies: bool, window: str, page_size: int, page_token: str) -> tuple[list[Health], str]:
        """Everything with figures in the window, the surely most fatigued first: those with enough touches
        (fatigue.min_touches) before those without, each by the index over its rates' lower confidence bounds
        (so one unlucky touch never tops the list, and more evidence ranks above less), then by name; paged."""
        window, hours = self.window_hours(window)
        check_page_size(page_size)
        if page_token and not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 9):
            raise InvalidArgument("page_token", "is not a token this service gave out")
        offset, size = int(page_token or 0), page_size or 50
        scope = "strategy" if strategies else "campaign"
        names = await self.counters.active(self.tenant, SCOPES[scope], self.now() - hours * HOUR_MS)
        every = [await self.health(scope, n, window) for n in names]
        every.sort(key=lambda h: (not h.enough, -h.ranking_index, h.name))
        page = every[offset:offset + size]
        return page, str(offset + size) if offset + size < len(every) else ""

    async def trail(self, scope: str, name: str, days: int = 7) -> list[float]:
        """The fatigue index of each of the last ``days`` 24-hour windows, oldest first (the desk's small chart)."""
        last, shift = self.now() // HOUR_MS, self._shift()
        rows = await self.counters.hours(self.tenant, SCOPES[scope], name, last - days * 24 + 1 - 24 - shift, last)
        levels = self.policy.fatigue.components
        return [index(_figures(rows, end, 24, shift), levels) for end in range(len(rows) - 1 - (days - 1) * 24, len(rows), 24)]

    async def hour_now(self, scope: str, name: str) -> dict[str, int]:
        """The figures of the current hour so far."""
        hour = self.now() // HOUR_MS
        return (await self.counters.hours(self.tenant, SCOPES[scope], name, hour, hour))[0]

    async def experience(self, window: str) -> Health:
        return await self.health("tenant", "", window)

