"""The store's identity on a real Redis (and a 3-master cluster): made once, checked, lost with the data.

The end-to-end story (a flush under a running ``guard serve``, the restart, ``guard store adopt``) is in
``tests/e2e/test_amnesia.py``; here are the cases around it, each with the real store.
"""

from __future__ import annotations

import pytest
import structlog

from guard.store.amnesia import StoreWatch, adopt, read_local
from tests.conftest import RedisProcess


def _watch(store, tmp_path) -> StoreWatch:
    return StoreWatch(store, tmp_path / "data", lambda: 1_800_000_000_000)


async def test_an_empty_store_is_initialised_once_and_remembered_here(store, tmp_path):
    watch = _watch(store, tmp_path)
    await watch.check()
    assert watch.known is not None and not watch.reset and read_local(tmp_path / "data") == watch.known.store_id
    first = watch.known
    await watch.check()
    assert watch.known == first  # checked, not made again


async def test_workers_starting_together_on_an_empty_store_agree_on_one_identity(store, tmp_path):
    """``--workers N`` starts its workers at once on one data directory: they race to initialise a fresh store, and
    every one of them must end up trusting the same identity (before, each wrote its own and the losers refused
    marketing as if the store had been swapped)."""
    import asyncio

    watches = [_watch(store, tmp_path) for _ in range(4)]
    with structlog.testing.capture_logs() as logged:
        await asyncio.gather(*(w.check() for w in watches))
        await asyncio.gather(*(w.check() for w in watches))  # and the next look finds nothing wrong either
    assert [w.reset for w in watches] == [""] * 4
    known = {w.known for w in watches}
    assert len(known) == 1 and None not in known and read_local(tmp_path / "data") == watches[0].known.store_id  # type: ignore[union-attr]
    assert [e["event"] for e in logged if e["event"].startswith("store_init")].count("store_initialised") == 1
    from guard.store.keys import ControlKeys

    audit = await store.client.xrange(ControlKeys().store_audit)
    assert len(audit) == 1  # initialised once


async def test_a_flush_is_a_reset_never_a_fresh_start_and_adopting_ends_it(store, tmp_path):
    watch = _watch(store, tmp_path)
    await watch.check()
    await store.client.flushall()
    with structlog.testing.capture_logs() as logged:
        await watch.check()
        await watch.check()
    assert watch.reset.startswith("the store has no identity")
    assert [e["log_level"] for e in logged if e["event"] == "store_reset"] == ["error"]  # once, at error
    again = StoreWatch(store, tmp_path / "data", lambda: 1_800_000_000_000)  # a restarted process, same data dir
    await again.check()
    assert again.reset  # the data directory remembers: never re-initialised silently
    adopted = await adopt(again, "ops", "accepted the loss")
    await again.check()
    await watch.check()
    assert not again.reset and not watch.reset and watch.known == adopted


async def test_a_store_that_is_another_one_is_a_reset(store, tmp_path):
    await _watch(store, tmp_path / "a").check()
    elsewhere = _watch(store, tmp_path / "b")
    (tmp_path / "b" / "data").mkdir(parents=True)
    (tmp_path / "b" / "data" / "store.id").write_text("0123456789abcdef\n")
    await elsewhere.check()
    assert elsewhere.reset.startswith("the store is another one")


async def test_one_shard_of_a_cluster_losing_its_data_is_a_reset(redis_cluster, tmp_path):
    from guard.store.redis_store import RedisStore

    redis_cluster.flush()
    store = RedisStore.from_url(redis_cluster.url)
    try:
        watch = _watch(store, tmp_path)
        await watch.check()
        assert not watch.reset
        victim = redis_cluster.nodes[1]
        victim.client().flushall()  # one master forgets; the control record lives on another
        await watch.check()
        assert f"127.0.0.1:{victim.port}" in watch.reset
    finally:
        redis_cluster.flush()
        await store.close()


@pytest.mark.parametrize(("extra", "said"), [(["--maxmemory-policy", "allkeys-lru"], "maxmemory-policy is allkeys-lru"),
                                             ([], "no persistence")])
async def test_redis_settings_that_could_lose_consent_data_are_told_at_error(tmp_path, extra, said):
    from guard.store.redis_store import RedisStore

    server = RedisProcess(tmp_path / "r", extra=extra)
    server.start()
    store = RedisStore.from_url(server.url)
    try:
        with structlog.testing.capture_logs() as logged:
            await _watch(store, tmp_path).check()
        risks = [e for e in logged if e["event"] == "store_settings_risk"]
        assert risks and all(e["log_level"] == "error" for e in risks) and any(said in e["risk"] for e in risks)
    finally:
        await store.close()
        server.stop()
