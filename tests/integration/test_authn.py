"""The authenticator against a real Redis: cached grants, revocation, last use, and Redis away."""

from __future__ import annotations

import pytest

from guard.access.authn import Authenticator
from guard.access.keys import Role, new_key
from guard.errors import PermissionDenied, StoreUnavailable, Unauthenticated
from guard.store.control import ControlStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _md(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {secret}"),)


def _peer() -> str:
    return "ipv4:10.0.0.9:4000"


async def _record(control, key_id):
    """The key's record (it exists: the test made it)."""
    record = await control.key(key_id)
    assert record is not None
    return record


async def _issue(control: ControlStore, tenant: str, *roles: Role) -> tuple[str, str]:
    key = new_key()
    assert await control.create_key(key.key_id, key.digest, tenant, [r.value for r in roles], "test", 1_000)
    return key.secret, key.key_id


async def test_a_grant_is_cached_until_the_control_revision_moves(store):
    control = ControlStore(store.conn)
    clock = Clock()
    auth = Authenticator(control, cache_s=30, clock=clock)
    secret, key_id = await _issue(control, "acme", Role.SENDER)
    grant = await auth.authorize(_md(secret), _peer, "CheckTouch")
    assert (grant.tenant, grant.key_id, grant.roles) == ("acme", key_id, frozenset({Role.SENDER}))
    with pytest.raises(PermissionDenied):
        await auth.authorize(_md(secret), _peer, "GetPreferences")
    assert await control.revoke_key("acme", key_id, 2_000) == "ok"
    assert await control.revoke_key("acme", key_id, 3_000) == "again"
    assert await control.revoke_key("globex", key_id, 3_000) == "missing"  # another tenant cannot name it
    assert (await auth.authorize(_md(secret), _peer, "CheckTouch")).key_id == key_id  # cached: no round trip
    auth.forget()  # what the poller does when the revision moves
    with pytest.raises(Unauthenticated):
        await auth.authorize(_md(secret), _peer, "CheckTouch")


async def test_last_use_is_written_in_batches(store):
    control = ControlStore(store.conn)
    auth = Authenticator(control)
    secret, key_id = await _issue(control, "acme", Role.ADMIN)
    await auth.authorize(_md(secret), _peer, "ExportUserData")
    assert (await _record(control, key_id)).last_used_ms == 0
    await auth.flush_used(5_000)
    assert (await _record(control, key_id)).last_used_ms == 5_000
    await auth.flush_used(6_000)  # not used since: unchanged
    assert (await _record(control, key_id)).last_used_ms == 5_000


async def test_only_the_first_start_makes_a_key(store):
    control = ControlStore(store.conn)
    first, second = new_key(), new_key()
    assert await control.create_key(first.key_id, first.digest, "default", ["admin"], "boot", 1, first=True)
    assert not await control.create_key(second.key_id, second.digest, "default", ["admin"], "boot", 2, first=True)
    assert [k.key_id for k in await control.keys("default")] == [first.key_id]
    assert await control.tenants() == ["default"]


async def test_a_known_key_keeps_working_while_redis_is_away(tmp_path):
    from guard.store.redis_store import RedisStore
    from tests.conftest import RedisProcess

    own = RedisProcess(tmp_path / "r")
    own.start()
    store = RedisStore.from_url(own.url, timeout_s=0.3)
    try:
        control = ControlStore(store.conn)
        clock = Clock()
        auth = Authenticator(control, cache_s=5, clock=clock)
        known, _ = await _issue(control, "acme", Role.SENDER)
        unknown, _ = await _issue(control, "acme", Role.SENDER)
        await auth.authorize(_md(known), _peer, "CheckTouch")
        own.stop()
        clock.now += 60  # the grant is stale, but Redis cannot be asked
        assert (await auth.authorize(_md(known), _peer, "CheckTouch")).tenant == "acme"
        with pytest.raises(StoreUnavailable):
            await auth.authorize(_md(unknown), _peer, "CheckTouch")
    finally:
        await store.close()
        own.stop()
