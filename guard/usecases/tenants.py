"""Each tenant's use cases, wired with that tenant's own policy, and kept fresh without a restart.

A tenant's services are wired on its first call, with the policy applied for it (``guard policy
apply``) or else the serving process's default. ``refresh`` polls the control revision (one GET)
and rewires a tenant whose policy version moved; calls in flight finish on the services they
started with. The same poll tells the authenticator to forget cached grants, so a revoked key
stops everywhere within ``GUARD_CONTROL_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from guard import logs, policy
from guard.domain import clock
from guard.domain.clock import Clock
from guard.errors import StoreUnavailable
from guard.store.brakes import Brake, BrakeStore
from guard.store.control import ControlStore
from guard.store.counters import CampaignCounters
from guard.store.desk import DeskStore
from guard.store.redis_store import RedisStore
from guard.store.replies import ReplyStore
from guard.usecases.brakes import BrakeService
from guard.usecases.checks import GuardService
from guard.usecases.desk import DeskService
from guard.usecases.engagement import EngagementService
from guard.usecases.figures import HealthService
from guard.usecases.links import PreferenceLinks
from guard.usecases.preferences import PreferenceService
from guard.usecases.privacy import PrivacyService
from guard.usecases.replies import ReplyService, Scorer

log = logs.get("guard.usecases.tenants")



@dataclass
class Services:
    """The use cases of one tenant, wired to one store: what the gRPC server (and the tests) call."""

    tenant: str
    policy: policy.Policy
    preferences: PreferenceService
    service: GuardService
    replies: ReplyService
    desk: DeskService
    counters: CampaignCounters
    privacy: PrivacyService
    engagement: EngagementService
    health: HealthService
    brakes: BrakeService


def wire(pol: policy.Policy, store: RedisStore, scorer: Scorer | None, *, tenant: str = "default",
         now: Clock = clock.system_clock, counters: CampaignCounters | None = None) -> Services:
    """The one place the use cases meet: each gets what it needs in its constructor, except the
    loop between checking and scoring (a check scores a user's pending replies through the reply loop)."""
    counters = counters or CampaignCounters(store.conn)
    preferences = PreferenceService(pol, store, now=now, tenant=tenant)
    service = GuardService(pol, store, preferences, counters, now=now, tenant=tenant)
    desk = DeskService(service, DeskStore(store, tenant), counters)
    replies = ReplyService(service, preferences, ReplyStore(store, tenant), desk, scorer, counters)
    service.score_pending = replies.score_pending
    engagement = EngagementService(pol, store, preferences, replies, counters, now=now, tenant=tenant)
    health = HealthService(pol, counters, tenant, now=now)
    brakes = BrakeService(pol, BrakeStore(store.conn, tenant), health, counters, desk, now=now)
    return Services(tenant, pol, preferences, service, replies, desk, counters, PrivacyService(store, tenant, now=now),
                    engagement, health, brakes)


class Tenants:
    def __init__(self, control: ControlStore, store: RedisStore, scorer: Scorer | None, default_policy: policy.Policy,
                 *, counters: CampaignCounters | None = None, now: Clock = clock.system_clock,
                 links: PreferenceLinks | None = None) -> None:
        self.control = control
        self.links = links or PreferenceLinks(control, "", now=now)
        # What forgets cached control records (grants, link secrets) when the revision moves.
        self.on_change: list[Callable[[], None]] = [self.links.forget]
        self.store = store
        self.scorer = scorer
        self.default_policy = default_policy
        self.counters = counters or CampaignCounters(store.conn)
        self.now = now
        self._services: dict[str, Services] = {}
        self._own: dict[str, tuple[int, policy.Policy, str]] = {}  # tenant -> (version, policy, its YAML)
        self._revision: int | None = None
        self._brakes: dict[str, dict[str, Brake]] = {}  # tenant -> the brake table the last poll read

    def get(self, tenant: str) -> Services:
        services = self._services.get(tenant)
        if services is None:
            own = self._own.get(tenant)
            services = wire(own[1] if own else self.default_policy, self.store, self.scorer, tenant=tenant, now=self.now,
                            counters=self.counters)
            services.service.brakes = self._brakes.get(tenant, {})
            self._services[tenant] = services
        return services

    def own_policy(self, tenant: str) -> tuple[int, str] | None:
        """(version, YAML) of the policy applied for ``tenant``, as this process has it; None: the default."""
        own = self._own.get(tenant)
        return (own[0], own[2]) if own else None

    async def refresh(self) -> bool:
        """Catch up with the control records; True when anything changed since the last call."""
        revision = await self.control.revision()  # read first: a change landing meanwhile is seen next time
        if revision == self._revision:
            return False
        if revision == 0 and self._revision:  # the store forgot its control records (a wipe): the identity check
            return False  # says so; what this process knows (grants, policies) is all that is left, so it is kept
        for forget in self.on_change:
            forget()
        for tenant, version in (await self.control.policy_versions()).items():
            if tenant in self._own and self._own[tenant][0] == version:
                continue
            record = await self.control.policy(tenant)
            if record is None:
                continue
            try:
                loaded = policy.parse(record.yaml, source=f"tenant {tenant} policy v{record.version}")
            except policy.PolicyError as exc:  # validated when applied; only another guard version could differ
                log.error("tenant_policy_invalid", tenant=tenant, version=record.version, error=str(exc))
                continue
            self._own[tenant] = (record.version, loaded, record.yaml)
            self._services.pop(tenant, None)  # rewired on its next call
            log.info("tenant_policy_loaded", tenant=tenant, version=record.version)
        self._revision = revision
        return True

    async def refresh_brakes(self) -> None:
        """Read the brake table of every tenant this process serves (one HGETALL each)."""
        for tenant, services in list(self._services.items()):
            table = await BrakeStore(self.store.conn, tenant).table()
            self._brakes[tenant] = table
            services.service.brakes = table

    async def run(self, every_s: float) -> None:
        """Poll for ever (a refresh that sees a change runs ``on_change``)."""
        failing = False
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.refresh()
                await self.refresh_brakes()
                if failing:
                    log.info("control_poll_recovered")
                failing = False
            except StoreUnavailable as exc:
                if not failing:  # once per outage, not once a second
                    log.warning("control_poll_failed", error=str(exc), note="keys and brakes as last read")
                failing = True

    async def evaluate_brakes(self) -> int:
        """Every tenant's brake rules, once."""
        trips = 0
        for tenant in sorted({"default", *await self.control.tenants()}):
            trips += await self.get(tenant).brakes.evaluate()
        return trips

    async def sweep(self) -> int:
        """The reply sweep of every tenant guard knows of, and each one's retention (replies' words, old tasks)."""
        done = 0
        for tenant in sorted({"default", *await self.control.tenants()}):
            services = self.get(tenant)
            done += await services.replies.sweep()
            await services.replies.retain()
            await services.desk.retain()
        return done
