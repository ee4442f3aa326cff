"""Outbound webhooks: a tenant's endpoints, and the delivery of its outbox to them by the Standard Webhooks
specification, at least once.

Events are appended to the tenant's outbox by the scripts that make the changes they report (a crash between the
change and the event cannot lose it). The deliverer (one per deployment, beside the sweeper) walks each endpoint's
cursor through the outbox in order: a 2xx moves it on; a failure is tried again with exponential backoff and jitter
up to 24 hours, then kept as failed (bounded) and the next event goes; an endpoint failing for ``webhooks.disable_after``
(5 days) is disabled and says so. Requests are SSRF-safe by default: https only, redirects not followed, private,
loopback and link-local addresses refused unless ``GUARD_WEBHOOKS_ALLOW_PRIVATE`` allows them, 5 s, 64 KiB read.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import random
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from guard import logs
from guard.domain import alerts, outbound
from guard.errors import InvalidArgument, NotFound
from guard.store.connection import Connection
from guard.store.webhooks import Delivery, Endpoint, WebhookStore

log = logs.get("guard.usecases.webhooks")

ROTATION_OVERLAP_MS = 24 * 3_600_000
DISABLE_AFTER_MS = 5 * 86_400_000
MAX_ENDPOINTS = 20


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx is an answer like any other failure, never followed


class Sender:
    """One POST, SSRF-safe: (status or 0, error text)."""

    def __init__(self, allow_private: bool = False, timeout_s: float = 5.0) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(_NoRedirects)

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidArgument("url", "an https URL is expected")
        if parts.scheme == "http" and not self.allow_private:
            raise InvalidArgument("url", "https only (GUARD_WEBHOOKS_ALLOW_PRIVATE allows http, for tests)")

    def _refused_address(self, host: str, port: int) -> str:
        if self.allow_private:
            return ""
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            return f"{host} does not resolve: {exc}"
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved \
                    or address.is_multicast or address.is_unspecified:
                return f"{host} is a private address ({address}); GUARD_WEBHOOKS_ALLOW_PRIVATE allows it"
        return ""

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        parts = urlsplit(url)
        refused = self._refused_address(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        if refused:
            return 0, refused
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as answer:
                answer.read(64 * 1024)
                return int(answer.status), ""
        except urllib.error.HTTPError as exc:
            return int(exc.code), f"answered {exc.code}"
        except (OSError, ValueError) as exc:
            return 0, str(exc)[:200]

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        return await asyncio.to_thread(self._post, url, body, headers)


class Outbound:
    """Every tenant's endpoints, and the delivery loop over them (one per deployment)."""

    def __init__(self, conn: Connection, sender: Sender, *, now: Callable[[], int],
                 disable_after_ms: Callable[[str], int] = lambda tenant: DISABLE_AFTER_MS) -> None:
        self.conn = conn
        self.sender = sender
        self.now = now
        self.disable_after_ms = disable_after_ms

    def of(self, tenant: str) -> WebhookService:
        return WebhookService(self.conn, tenant, self.sender, now=self.now,
                              disable_after_ms=self.disable_after_ms(tenant))

    async def deliver(self, tenants: Sequence[str], now_ms: int | None = None) -> int:
        done = 0
        for tenant in tenants:
            done += await self.of(tenant).deliver(now_ms)
        return done


class WebhookService:
    """One tenant's endpoints and their deliveries."""

    def __init__(self, conn: Connection, tenant: str, sender: Sender, *, now: Callable[[], int],
                 disable_after_ms: int = DISABLE_AFTER_MS) -> None:
        self.store = WebhookStore(conn, tenant)
        self.tenant = tenant
        self.sender = sender
        self.now = now
        self.disable_after_ms = disable_after_ms

    async def add(self, url: str, events: Sequence[str], fmt: str = "standard", language: str = "en",
                  robot_secret: str = "") -> tuple[Endpoint, str]:
        self.sender.check_url(url)
        fmt = fmt or "standard"
        if fmt not in alerts.FORMATS:
            raise InvalidArgument("format", f"one of {', '.join(alerts.FORMATS)} is expected, got {fmt[:32]!r}")
        if language not in alerts.LANGUAGES:
            raise InvalidArgument("language", f"zh or en is expected, got {language[:16]!r}")
        offered = outbound.EVENTS if fmt == "standard" else alerts.ALERTS
        unknown = [e for e in events if e not in offered]
        if unknown or not events:
            raise InvalidArgument("events", f"name at least one of {', '.join(offered)}"
                                            + (f" (not {unknown[0][:40]!r})" if unknown else ""))
        if len(await self.store.endpoints()) >= MAX_ENDPOINTS:
            raise InvalidArgument("url", f"a tenant has at most {MAX_ENDPOINTS} endpoints")
        secret = new_secret()
        endpoint = Endpoint(f"ep_{secrets.token_hex(8)}", url, sorted(set(events)), [{"secret": secret, "until_ms": 0}],
                            self.now(), fmt, language, robot_secret.strip())
        await self.store.save(endpoint)
        await self.store.start_at_end(endpoint.endpoint_id)
        return endpoint, secret

    async def one(self, endpoint_id: str) -> tuple[Endpoint, Delivery]:
        for endpoint, state in await self.store.endpoints():
            if endpoint.endpoint_id == endpoint_id:
                return endpoint, state
        raise NotFound(f"endpoint_id: no endpoint {endpoint_id[:40]!r} in tenant {self.tenant}")

    async def rotate(self, endpoint_id: str) -> str:
        """A new secret signs from now on; the old one signs beside it for 24 hours."""
        endpoint, _ = await self.one(endpoint_id)
        now = self.now()
        secret = new_secret()
        kept = [{"secret": s["secret"], "until_ms": s["until_ms"] or now + ROTATION_OVERLAP_MS}
                for s in endpoint.secrets if not s["until_ms"] or s["until_ms"] > now]
        endpoint.secrets = [{"secret": secret, "until_ms": 0}, *kept]
        await self.store.save(endpoint)
        return secret

    async def remove(self, endpoint_id: str) -> None:
        if not await self.store.remove(endpoint_id):
            raise NotFound(f"endpoint_id: no endpoint {endpoint_id[:40]!r} in tenant {self.tenant}")

    async def test(self, endpoint_id: str) -> tuple[int, str]:
        """A signed ``ping`` now (outside the outbox): the endpoint's answer."""
        endpoint, _ = await self.one(endpoint_id)
        now = self.now()
        msg_id = f"msg_{self.tenant}_ping_{secrets.token_hex(6)}"
        body = outbound.body(msg_id, "ping", now, self.tenant, {"endpoint_id": endpoint_id})
        return await self.sender.post(endpoint.url, body, outbound.headers(endpoint.signing(now), msg_id, now // 1000,
                                                                            body))

    def _request(self, endpoint: Endpoint, msg_id: str, fields: dict[str, str],
                 now: int) -> tuple[str, bytes, dict[str, str]] | None:
        """(URL, body, headers) of one outbox event for one endpoint; None when the endpoint is not told of it."""
        data = json.loads(fields.get("data") or "{}")
        if endpoint.format == "standard":
            body = outbound.body(msg_id, fields["type"], int(fields.get("at", 0) or 0), self.tenant, data)
            return endpoint.url, body, outbound.headers(endpoint.signing(now), msg_id, int(time.time()), body)
        message = alerts.body(endpoint.format, fields["type"], data, endpoint.language)
        if message is None:
            return None
        url = alerts.dingtalk_url(endpoint.url, endpoint.robot_secret, int(time.time() * 1000)) \
            if endpoint.format == "dingtalk" else endpoint.url
        return url, json.dumps(message, ensure_ascii=False).encode(), {"content-type": "application/json"}

    async def replay(self, endpoint_id: str) -> tuple[int, int, int]:
        """The endpoint's deliveries given up on, sent again now, oldest first, with their ids: (delivered, failing
        still, gone: trimmed from the outbox meanwhile). A delivered or gone one is no longer kept."""
        endpoint, _ = await self.one(endpoint_id)
        delivered = failing = gone = 0
        for failed_id, record in await self.store.failed(endpoint_id):
            fields = await self.store.entry(record["entry"])
            if fields is None:
                gone += 1
                await self.store.drop_failed(failed_id)
                continue
            request = self._request(endpoint, record["msg_id"], fields, self.now())
            status, _ = await self.sender.post(*request) if request is not None else (200, "")
            if 200 <= status < 300:
                delivered += 1
                await self.store.drop_failed(failed_id)
            else:
                failing += 1
        return delivered, failing, gone

    async def list(self) -> list[tuple[Endpoint, Delivery]]:
        return await self.store.endpoints()

    async def deliver(self, now_ms: int | None = None) -> int:
        """One pass over every endpoint that is due; the events delivered."""
        done = 0
        for endpoint, state in await self.store.endpoints():
            if state.disabled_ms:
                continue
            done += await self._deliver(endpoint, state, now_ms if now_ms is not None else self.now())
        return done

    async def _deliver(self, endpoint: Endpoint, state: Delivery, now: int) -> int:
        if state.next_ms > now:
            return 0
        done, start = 0, (state.cursor, state.attempts)
        for entry_id, fields in await self.store.after(state.cursor):
            if fields.get("type") not in endpoint.events:
                state.cursor = entry_id
                continue
            msg_id = outbound.message_id(self.tenant, entry_id)
            request = self._request(endpoint, msg_id, fields, now)
            if request is None:  # a robot is told of P1 tasks and brakes only
                state.cursor = entry_id
                continue
            status, error = await self.sender.post(*request)
            if 200 <= status < 300:
                state.cursor, state.attempts, state.first_failed_ms, state.last_error = entry_id, 0, 0, ""
                state.next_ms = 0
                state.delivered += 1
                done += 1
                continue
            state.attempts += 1
            state.last_error = error or f"answered {status}"
            state.first_failed_ms = state.first_failed_ms or now
            if now - state.first_failed_ms >= outbound.GIVE_UP_MS:  # kept as failed; the next event goes
                await self.store.keep_failed(endpoint.endpoint_id, msg_id, entry_id, state.last_error, now)
                state.cursor, state.attempts = entry_id, 0
                state.failed += 1
            if now - state.first_failed_ms >= self.disable_after_ms:
                state.disabled_ms = now
                log.warning("webhook_endpoint_disabled", endpoint=endpoint.endpoint_id, error=state.last_error)
            state.next_ms = now + outbound.retry_after_ms(state.attempts, random.random())
            break
        if (state.cursor, state.attempts) != start or state.disabled_ms:
            await self.store.save_state(endpoint.endpoint_id, state)
        return done
