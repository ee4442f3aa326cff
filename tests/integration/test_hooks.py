"""The hooks use case on real Redis (alone and on a cluster): an event without guard's touch id finds the user's
last touch on its channel, and an event that failed to apply is released, so the provider's retry applies it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from guard import policy
from guard.domain.types import TouchClass
from guard.errors import StoreUnavailable
from guard.providers import Request
from guard.store.hooks import HookStore
from guard.usecases.hooks import HookService
from guard.usecases.tenants import wire
from tests.helpers import touch

TOKEN = "hook-test-token"


async def _secret() -> bytes:
    return b"k" * 32


def _hooks(store: Any) -> tuple[HookService, Any]:
    parts = wire(policy.load(None), store, None)
    return HookService(lambda tenant: parts, HookStore(store.conn), _secret, now=lambda: int(time.time() * 1000)), parts


def _postmark(event: dict[str, Any]) -> Request:
    return Request("https://g.example/hooks/default/postmark", {"authorization": "Basic Z3VhcmQ6cHc="},
                   json.dumps(event).encode(), int(time.time() * 1000))


OPEN = {"RecordType": "Open", "MessageID": "pm-1", "ReceivedAt": "", "Recipient": "pia@example.com",
        "Metadata": {"user_id": "pia"}}


async def test_an_event_without_the_touch_id_finds_the_users_last_touch_on_its_channel(store):
    hooks, parts = _hooks(store)
    await hooks.set_secret("default", "postmark", "basic_auth", "guard:pw")
    for channel, touch_id in (("email", "e1"), ("push", "p1")):  # the push is newer, and on another channel
        sent = await parts.service.check(touch(user="pia", channel=channel, category="service", touch_id=touch_id,
                                               touch_class=TouchClass.TRANSACTIONAL))
        assert sent.recorded
    opened = {**OPEN, "ReceivedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))}
    outcome = await hooks.receive("default", "postmark", _postmark(opened))
    assert outcome.applied == 1
    keys = parts.service.keys("pia")
    assert await store.client.hexists(keys.touch("e1"), "ev:OPENED")
    assert not await store.client.hexists(keys.touch("p1"), "ev:OPENED")


async def test_an_event_that_failed_to_apply_is_applied_by_the_providers_retry(store, monkeypatch):
    hooks, parts = _hooks(store)
    await hooks.set_secret("default", "postmark", "basic_auth", "guard:pw")
    opened = {**OPEN, "ReceivedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    real = parts.engagement.record
    calls = []

    async def failing_once(event: Any) -> Any:
        calls.append(event)
        if len(calls) == 1:
            raise StoreUnavailable("Redis stalled")
        return await real(event)

    monkeypatch.setattr(parts.engagement, "record", failing_once)
    with pytest.raises(StoreUnavailable):
        await hooks.receive("default", "postmark", _postmark(opened))
    retried = await hooks.receive("default", "postmark", _postmark(opened))
    assert (retried.applied, retried.replayed) == (1, 0)
    again = await hooks.receive("default", "postmark", _postmark(opened))
    assert (again.applied, again.replayed) == (0, 1)
