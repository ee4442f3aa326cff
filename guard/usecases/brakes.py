"""The brake: a campaign or strategy wearing its users out is stopped before GMV shows it.

``evaluate`` (run every few seconds by one process per deployment) reads each active campaign's
(or strategy's) figures over a rule's window and trips the brake when the rule's thresholds are
passed with enough touches to mean something; a trip opens a P1 campaign task on the recovery
desk so a person looks at it. A brake ends when an operator resumes it (``ResumeCampaign``,
audited with actor and reason) or its ``release_after`` passes; after a resume a rule looks only at
figures from the resume on, so the same evidence does not brake it again.

How the brake reaches CheckTouch without a second round trip: the table of braked campaigns lives
in the tenant's slot; every serving process reads it once per control poll (one HGETALL per tenant
per second) and passes "braked" into the check script with the touch. So a trip reaches every
process within a poll, and a check stays one round trip in the user's slot.
"""

from __future__ import annotations

from collections.abc import Mapping

from guard import logs
from guard.domain import clock
from guard.domain.clock import Clock
from guard.errors import InvalidArgument
from guard.policy import BrakeRule, Policy
from guard.store.brakes import Brake, BrakeStore, field_of
from guard.store.counters import CampaignCounters
from guard.usecases.desk import DeskService
from guard.usecases.figures import HealthService
from guard.validate import check_id, check_name, check_text

log = logs.get("guard.usecases.brakes")

FULL_LOOK_MS = 60_000


def tripped(rule: BrakeRule, figures_touches: int, signals: Mapping[str, float]) -> tuple[str, float] | None:
    """The first signal at or over its threshold, when there are touches enough to judge. Pure."""
    if figures_touches < rule.min_touches:
        return None
    for name, threshold in rule.thresholds.items():
        if signals.get(name, 0.0) >= threshold:
            return name, signals[name]
    return None


class BrakeService:
    def __init__(self, policy: Policy, store: BrakeStore, health: HealthService, counters: CampaignCounters,
                 desk: DeskService, *, now: Clock = clock.system_clock) -> None:
        self.policy = policy
        self.store = store
        self.health = health
        self.counters = counters
        self.desk = desk
        self.now = now
        self._last_full = 0

    async def evaluate(self) -> int:
        """Trip what the rules say, release what has expired; how many brakes tripped."""
        now = self.now()
        table = await self.store.table()
        for field, brake in table.items():
            if brake.until_ms and brake.until_ms <= now:
                await self.store.release(field, now, "guard", f"release_after of {brake.rule} passed", "release",
                                         await self._base(field))
        if not self.policy.fatigue.brakes:
            return 0
        resumed = await self.store.resumed()
        scopes = {"campaign": "c", "strategy": "s"}
        # Only what a harm (a complaint, an opt-out, a negative reply) befell since the last look can have crossed a
        # threshold; once a minute, everything active (a rate also rises as touches age into the ignored or leave
        # the window).
        full = now - self._last_full >= FULL_LOOK_MS
        if full:
            self._last_full = now
        moved = {scope: set(await self.counters.moved(self.health.tenant, code)) for scope, code in scopes.items()}
        trips = 0
        for rule in self.policy.fatigue.brakes:
            hours = HealthService.window_hours(rule.window)[1]
            names = (await self.counters.active(self.health.tenant, scopes[rule.scope], now - hours * 3_600_000)
                     if full else sorted(moved[rule.scope]))
            # Fewer touches ever than the rule needs in its window: nothing to read (one HGET each, batched).
            totals = await self.counters.totals(self.health.tenant, scopes[rule.scope], names, "touches")
            for name in (n for n, total in zip(names, totals, strict=True) if total >= rule.min_touches):
                field = field_of(rule.scope, name)
                if field in table:
                    continue
                since, base = resumed.get(field, (0, {}))
                h = await self.health.health(rule.scope, name, rule.window, since_ms=since, base=base)
                hit = tripped(rule, h.figures.touches, {**h.rates, "fatigue_index": h.fatigue_index})
                if hit is None:
                    continue
                brake = Brake(rule.rule_id, now, now + rule.release_after_ms if rule.release_after_ms else 0,
                              rule.shadow, hit[0], round(hit[1], 6))
                if not await self.store.trip(field, brake, now):
                    continue
                table[field] = brake
                trips += 1
                log.warning("brake_tripped", target=field, rule=rule.rule_id, signal=hit[0], value=hit[1],
                            touches=h.figures.touches, shadow=rule.shadow)
                if not rule.shadow:
                    summary = (f"{rule.scope} {name} braked by {rule.rule_id}: {hit[0]} {hit[1]:.4g} over "
                               f"{rule.window} on {h.figures.touches} touches; resume with ResumeCampaign")
                    await self.desk.open_campaign_task(name if rule.scope == "campaign" else "", summary, now)
        return trips

    async def _base(self, field: str) -> dict[str, int]:
        scope = "campaign" if field.startswith("c:") else "strategy"
        return await self.health.hour_now(scope, field[2:])

    async def resume(self, campaign_id: str, strategy_id: str, actor: str, reason: str) -> bool:
        if bool(campaign_id) == bool(strategy_id):
            raise InvalidArgument("campaign_id", "name exactly one of campaign_id and strategy_id")
        scope, name = ("campaign", campaign_id) if campaign_id else ("strategy", strategy_id)
        check_id(name, f"{scope}_id")
        actor = actor.strip()
        if not actor:
            raise InvalidArgument("actor", "is required: who resumes it")
        check_name(actor, "actor")
        check_text(reason, "reason", required=True)
        field = field_of(scope, name)
        done = await self.store.release(field, self.now(), actor, reason, "resume", await self._base(field))
        log.info("brake_resumed", target=field, actor=actor, resumed=done)
        return done
