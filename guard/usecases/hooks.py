"""Webhook receivers' use case: a provider's verified request, applied once, through the same use cases as the API.

A delivery, open, click, bounce, complaint or unsubscribe is ``EngagementService.record`` (as ``RecordEngagements``
is); an inbound SMS is ``ReplyService.record`` (as ``RecordReply``); a carrier's STOP closes SMS for everything, as
the carrier itself enforces. Each event is applied once per provider event id (providers retry); one that fails to
apply is forgotten again, so the provider's retry applies it. The user is the one the sender named in the message's
metadata, else the one whose contact point the address is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import urlsplit

from guard import logs, metrics
from guard.errors import InvalidArgument
from guard.providers import (
    CarrierStop,
    ContactChange,
    Engagement,
    Inbound,
    Item,
    Refused,
    Request,
    aliyun,
    contacts,
    mailgun,
    postmark,
    sendgrid,
    ses,
    twilio,
    wecom,
)
from guard.store.hooks import HookStore
from guard.store.keys import UserKeys
from guard.usecases.engagement import Event
from guard.usecases.preferences import PreferencesPatch
from guard.usecases.tenants import Services
from guard.validate import check_id

log = logs.get("guard.usecases.hooks")

PROVIDERS: dict[str, ModuleType] = {m.NAME: m for m in (sendgrid, ses, mailgun, postmark, twilio, aliyun, wecom)}
# How long a replaced secret keeps being accepted, so a provider's console can be updated without losing events.
SECRET_GRACE_MS = 24 * 3_600_000
REMEMBERED = 100_000  # recipients this process remembers having stored (so a repeat costs no round trip)


def _person(item: Item) -> str:
    """Who an event is about, as far as the payload says (events of one person are applied in order)."""
    if isinstance(item, ContactChange):
        return f"wecom:{item.external_id}"
    return item.user_id or item.address or item.event_id


class Fetcher:
    """What SNS makes a receiver fetch: its signing certificates (cached) and, to confirm a subscription, its
    SubscribeURL. HTTPS only, on SNS's own hosts or those an operator allowed (``GUARD_SNS_HOSTS``), 5 s, 64 KiB."""

    def __init__(self, allowed_hosts: Sequence[str] = (), cafile: str = "") -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.context = ssl.create_default_context(cafile=cafile or None)
        self._certificates: dict[str, bytes] = {}

    async def get(self, url: str) -> bytes:
        if not ses.allowed_url(url, self.allowed_hosts):
            raise Refused("forged", 403, "the signing certificate is not on an SNS host (nor one GUARD_SNS_HOSTS allows)")
        return await asyncio.to_thread(self._get, url)

    def _get(self, url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=5, context=self.context) as answer:
                data: bytes = answer.read(64 * 1024 + 1)
        except (OSError, ValueError) as exc:
            raise Refused("unreachable", 503, f"{urlsplit(url).netloc} did not answer: {exc}") from None
        if len(data) > 64 * 1024:
            raise Refused("forged", 403, "the answer is larger than a certificate")
        return data

    async def certificate(self, url: str) -> bytes:
        known = self._certificates.get(url)
        if known is None:
            known = await self.get(url)
            if len(self._certificates) < 64:
                self._certificates[url] = known
        return known


@dataclass(frozen=True)
class Outcome:
    applied: int
    replayed: int
    unmatched: int
    ignored: int


class HookService:
    """``services`` gives a tenant's use cases (``Tenants.get``); ``secret`` the deployment's secret, which keys the
    contact index (read once)."""

    def __init__(self, services: Callable[[str], Services], store: HookStore, secret: Callable[[], Awaitable[bytes]],
                 *, now: Callable[[], int], fetcher: Fetcher | None = None) -> None:
        self.fetcher = fetcher or Fetcher()
        self.services = services
        self.store = store
        self._read_secret = secret
        self._secret = b""
        self._remembered: dict[tuple[str, str, str], None] = {}  # contact points this process stored (oldest first)
        self.now = now

    async def set_secret(self, tenant: str, provider: str, name: str, value: str) -> None:
        module = PROVIDERS.get(provider)
        if module is None:
            raise InvalidArgument("provider", f"one of {', '.join(sorted(PROVIDERS))} is expected, got {provider[:32]!r}")
        if name not in module.SECRETS:
            raise InvalidArgument("name", f"{provider} takes {', '.join(module.SECRETS)}, not {name[:32]!r}")
        if not value.strip() or len(value) > 4096:
            raise InvalidArgument("value", "is required (at most 4 KiB)")
        if provider == "sendgrid":
            try:
                sendgrid.public_key(value)
            except ValueError as exc:
                raise InvalidArgument("value", str(exc)) from None
        await self.store.set_secret(tenant, provider, name, value.strip(), SECRET_GRACE_MS, self.now())

    async def digest(self, tenant: str, address: str) -> str:
        if not self._secret:
            self._secret = await self._read_secret()
        return contacts.digest(self._secret, tenant, address)

    async def set_contacts(self, tenant: str, user_id: str, addresses: list[str]) -> int:
        check_id(user_id, "user_id")
        for i, address in enumerate(addresses):  # every address read before anything is stored (the secret included)
            try:
                contacts.normalise(address)
            except ValueError as exc:
                raise InvalidArgument(f"addresses[{i}]", str(exc)) from None
        digests = [await self.digest(tenant, address) for address in addresses]
        await self.store.set_contacts(UserKeys(tenant, user_id), sorted(set(digests)))
        await self._deliver_kept(tenant, user_id, sorted(set(digests)))
        return len(set(digests))

    async def remember_contact(self, tenant: str, user_id: str, address: str) -> None:
        """CheckTouch's ``recipient``: one more contact point of the user (the same one again costs nothing)."""
        digest = await self.digest(tenant, address)
        seen = (tenant, user_id, digest)
        if seen in self._remembered:
            return
        await self.store.add_contact(UserKeys(tenant, user_id), digest)
        await self._deliver_kept(tenant, user_id, [digest])
        self._remembered[seen] = None
        while len(self._remembered) > REMEMBERED:
            self._remembered.pop(next(iter(self._remembered)))

    async def _deliver_kept(self, tenant: str, user_id: str, digests: list[str]) -> None:
        """Messages that came from these addresses before they were the user's: recorded as the user's replies now
        (in the order they came, each once)."""
        services = self.services(tenant)
        for digest in digests:
            kept = await self.store.claim_unmatched(tenant, digest)
            messages = sorted(((event_id, json.loads(raw)) for event_id, raw in kept.items()),
                              key=lambda em: int(em[1].get("at", 0)))
            for event_id, message in messages:
                await services.replies.record(user_id, message["channel"], message["text"],
                                              f"{message['provider']}-{event_id}", received_ms=int(message["at"]))

    async def handshake(self, tenant: str, provider: str, request: Request) -> str:
        """A provider's check that the URL is its receiver (WeCom's GET when the URL is saved)."""
        try:
            if provider != wecom.NAME:
                raise Refused("unknown_provider", 404, f"{provider[:32]!r} has no handshake")
            secrets = await self.store.secrets(tenant, provider, request.now_ms)
            if any(name not in secrets for name in wecom.SECRETS):
                raise Refused("not_configured", 404, f"no {provider} receiver is set up for this tenant")
            return wecom.handshake(request, secrets)
        except Refused as refused:
            metrics.WEBHOOK_EVENTS.labels(provider if provider in PROVIDERS else "unknown", refused.outcome).inc()
            raise

    async def receive(self, tenant: str, provider: str, request: Request) -> Outcome:
        """Verify, parse, apply; ``Refused`` (counted) when the request is not the provider's or not readable."""
        try:
            return await self._receive(tenant, provider, request)
        except Refused as refused:
            metrics.WEBHOOK_EVENTS.labels(provider if provider in PROVIDERS else "unknown", refused.outcome).inc()
            raise

    async def _receive(self, tenant: str, provider: str, request: Request) -> Outcome:
        module = PROVIDERS.get(provider)
        if module is None:
            raise Refused("unknown_provider", 404, f"no receiver for {provider[:32]!r}")
        secrets = await self.store.secrets(tenant, provider, request.now_ms)
        if not secrets or any(name not in secrets for name in module.SECRETS):
            raise Refused("not_configured", 404, f"no {provider} receiver is set up for this tenant")
        if provider == ses.NAME:
            body = ses.envelope(request)
            if body["TopicArn"] not in ses.topics(secrets):
                raise Refused("forged", 403, "the topic is not one this tenant takes messages from (topic_arns)")
            ses.verify_with(request, body, await self.fetcher.certificate(body["SigningCertURL"]))
            if body["Type"] == "SubscriptionConfirmation":  # a topic of the tenant's own: subscribe
                await self.fetcher.get(str(body.get("SubscribeURL", "")))
                log.info("sns_subscription_confirmed", topic=body["TopicArn"])
        else:
            request = module.verify(request, secrets)  # WeCom's comes back decrypted
        parsed = module.parse(request)
        if provider == mailgun.NAME and not await self.store.token_for(
                tenant, provider, mailgun.token_of(request), ",".join(i.event_id for i in parsed.items) or "-"):
            raise Refused("replayed", 403, "this signature token came before with another event: a replayed request")
        fresh = await self.store.first_times(tenant, provider, [item.event_id for item in parsed.items])
        todo = [item for item, first in zip(parsed.items, fresh, strict=True) if first]
        replayed = len(parsed.items) - len(todo)
        # One person's events in the order the provider sent them, different people at once (as RecordEngagements).
        people: dict[str, list[Item]] = {}
        for item in todo:
            people.setdefault(_person(item), []).append(item)
        done: list[int] = []
        unapplied: list[str] = []

        async def one_person(items: list[Item]) -> None:
            for i, item in enumerate(items):
                try:
                    done.append(await self._apply(tenant, provider, item))
                except BaseException:
                    unapplied.extend(x.event_id for x in items[i:])
                    raise

        failures = [r for r in await asyncio.gather(*(one_person(v) for v in people.values()), return_exceptions=True)
                    if isinstance(r, BaseException)]
        if failures:
            await self.store.forget_events(tenant, provider, unapplied)  # the provider's retry applies them
            raise failures[0]
        applied, unmatched = sum(done), len(done) - sum(done)
        for outcome, n in (("applied", applied), ("replayed", replayed), ("unmatched", unmatched),
                           ("ignored", parsed.ignored)):
            if n:
                metrics.WEBHOOK_EVENTS.labels(provider, outcome).inc(n)
        return Outcome(applied, replayed, unmatched, parsed.ignored)

    async def _user(self, tenant: str, user_id: str, address: str) -> str:
        if user_id:
            return user_id
        if not address:
            return ""
        try:
            return await self.store.user_by_contact(tenant, await self.digest(tenant, address))
        except ValueError:
            return ""

    async def _apply(self, tenant: str, provider: str, item: Item) -> int:
        """1 when applied to a user, 0 when no user could be found (kept and counted as unmatched)."""
        services = self.services(tenant)
        if isinstance(item, ContactChange):
            return await self._contact_change(tenant, services, item)
        user = await self._user(tenant, item.user_id, item.address)
        if not user:
            if isinstance(item, Inbound):
                with contextlib.suppress(ValueError):  # an address that is no phone number: counted, nothing to key
                    message = json.dumps({"provider": provider, "text": item.text, "channel": item.channel,
                                          "at": item.received_ms}, ensure_ascii=False)
                    await self.store.keep_unmatched(tenant, await self.digest(tenant, item.address), item.event_id,
                                                    message, services.policy.replies.text_retention_ms)
            return 0
        if isinstance(item, Engagement):
            touch_id = item.touch_id or await self._last_touch(services, user, item) or f"{provider}:{item.event_id}"
            await services.engagement.record(Event(touch_id, user, item.event, item.occurred_ms, item.detail, provider,
                                                   item.channel))
        elif isinstance(item, Inbound):
            await services.replies.record(user, item.channel, item.text, f"{provider}-{item.event_id}",
                                          received_ms=item.received_ms)
        elif isinstance(item, CarrierStop):
            closed = not item.stop
            await services.preferences.update_preferences(
                user, PreferencesPatch(paths=[f"channels.{item.channel}"], channels={item.channel: closed},
                                       channel_scopes={item.channel: "all"} if item.stop else {}),
                source="carrier", actor=f"{provider}:{item.event_id}", expected_version=None,
                evidence={"provider": provider, "provider_event": item.event_id})
        return 1

    async def _last_touch(self, services: Services, user: str, item: Engagement) -> str:
        """The touch an event without guard's id is about: the user's newest touch on its channel within the
        attribution window before it ('' when there is none)."""
        window = services.policy.replies.attribution_window_ms
        for t in await services.service.store.recent_touches(services.service.keys(user)):
            if t.channel == item.channel and item.occurred_ms - window <= t.at_ms <= item.occurred_ms:
                return t.touch_id
        return ""

    async def _contact_change(self, tenant: str, services: Services, item: ContactChange) -> int:
        """The customer deleted the staff member (or added them again): WeCom closes (or reopens) for them, ledgered;
        a deletion counts as an opt-out of the campaign that last touched them, and a high-value customer gets a
        P1 task (someone should reach them another way)."""
        user = await self._user(tenant, "", f"wecom:{item.external_id}")
        if not user:
            return 0
        await services.preferences.update_preferences(
            user, PreferencesPatch(paths=["channels.wecom"], channels={"wecom": not item.deleted}),
            source="contact_deleted" if item.deleted else "contact_added", actor=f"wecom:{item.staff}",
            expected_version=None, evidence={"provider": "wecom", "provider_event": item.event_id})
        if not item.deleted:
            return 1
        keys = UserKeys(tenant, user)
        last = await services.replies.store.last_touch(keys)
        window = services.policy.replies.attribution_window_ms
        campaign, high_value, strategy = "", False, ""
        if last is not None and item.at_ms - window <= last[1] <= item.at_ms + window:
            campaign, _, high_value, strategy = last
        services.counters.add(tenant, campaign, "opt_outs", strategy_id=strategy, at_ms=item.at_ms)
        if high_value:
            digest = hashlib.sha256(f"{tenant}\0{item.event_id}".encode()).hexdigest()[:22]
            await services.desk.open_contact_task(user, "wecom", campaign, f"deleted {item.staff} on WeCom",
                                                  self.now(), f"task-{digest}")
        return 1
