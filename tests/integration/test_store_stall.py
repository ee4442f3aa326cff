"""A Redis that stalls (SIGSTOP) past the caller's timeout: the DEFER the sender got stays the truth."""

from __future__ import annotations

import asyncio
import os
import signal

from guard import policy
from guard.domain.types import Reason, Verdict
from guard.store.redis_store import RedisStore
from guard.usecases.tenants import wire
from tests.conftest import RedisProcess
from tests.helpers import FakeClock, ms, touch

NOON = ms(2026, 11, 23, 12, 0, "Asia/Shanghai")


async def test_checks_redis_runs_after_the_caller_gave_up_record_nothing(tmp_path):
    """Ten checks time out against a stopped Redis (DEFER, not recorded); once it resumes, none was counted."""
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    store = RedisStore.from_url(redis.url, timeout_s=0.3)
    observer = RedisStore.from_url(redis.url, timeout_s=5)
    svc = wire(policy.load(None), store, None, now=FakeClock(NOON)).service
    try:
        assert (await svc.check(touch(touch_id="", dry_run=True))).verdict is Verdict.ALLOW  # script loaded
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            answers = [await svc.check(touch(user=f"u{i}", touch_id=f"t{i}")) for i in range(10)]
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert all(a.verdict is Verdict.DEFER and a.reasons == (Reason.STORE_UNAVAILABLE,) and not a.recorded
                   for a in answers)
        # Every connection that timed out is closed; Redis reads a closed connection's queued commands (and
        # runs them) before it notices the close. Once only the observer is left, whatever was queued has run.
        while len(await observer.client.client_list()) > 1:  # noqa: ASYNC110 - polling Redis, not waiting on us
            await asyncio.sleep(0.01)
        assert await observer.client.dbsize() == 0
        for i in range(10):
            again = await svc.check(touch(user=f"u{i}", touch_id=f"t{i}"))
            assert again.verdict is Verdict.ALLOW and again.recorded and not again.replayed
    finally:
        await store.close()
        await observer.close()
        redis.stop()
