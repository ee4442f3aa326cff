"""Failover as it happens in production, under a loop of checks: a primary SIGKILLed.

guard is wired as ``guard serve`` wires it (in this process, real ports), pointed at three real sentinels
watching a real primary and replica, or at a real 3+3 Redis Cluster. What must hold: guard finds the new
primary on its own; the old primary, restarted (empty, and believing for a moment that it still leads),
is never written to; and with ``GUARD_REDIS_DURABILITY=replica`` every touch answered ``recorded`` is on
the surviving primary.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import redis as redis_lib

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.conftest import RedisCluster3, RedisProcess, SentinelGroup
from tests.helpers import admin_key, aio_channel


class Checks:
    """Marketing checks, one fresh user each, one at a time: what each answered and when, and who was recorded."""

    def __init__(self, stub: Any) -> None:
        self.stub = stub
        self.answers: list[tuple[float, int, bool]] = []  # (when, decision, recorded)
        self.recorded: list[int] = []
        self.count = 0

    async def one(self) -> None:
        i = self.count
        self.count += 1
        answer = await self.stub.CheckTouch(pb.CheckTouchRequest(
            user_id=f"u{i}", channel="push", category="promotion", touch_id=f"t{i}", campaign_id=f"c{i}"), timeout=10)
        self.answers.append((time.monotonic(), answer.decision, answer.recorded))
        if answer.recorded:
            self.recorded.append(i)

    def recorded_since(self, at: float) -> int:
        return sum(1 for when, _, recorded in self.answers if when > at and recorded)

    def missing_on(self, client: Any) -> list[int]:
        """The touches answered recorded that ``client``'s Redis does not hold."""
        return [i for i in self.recorded if not client.exists(f"guard:{{default:u{i}}}:touch:t{i}")]


def _kill(node: RedisProcess) -> None:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()


async def test_guard_follows_the_primary_never_writes_to_the_demoted_one_and_loses_no_recorded_touch(
        app_factory, tmp_path):
    group = SentinelGroup(tmp_path / "sentinels")
    group.start()
    old = group.primary
    try:
        app = await app_factory(redis_url=group.url, redis_durability="replica", redis_timeout=1.0)
        async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
            checks = Checks(pb_grpc.EngagementGuardStub(channel))
            for _ in range(30):
                await checks.one()
            assert len(checks.recorded) == 30  # a healthy pair: every touch recorded, each on the replica too
            _kill(old)
            killed = time.monotonic()
            while group.primary_port() != group.replica.port:  # the sentinels fail over (a few seconds)
                assert time.monotonic() < killed + 30, "the sentinels never failed over"
                await checks.one()
                await asyncio.sleep(0.05)
            # The old primary comes back empty, and a primary in its own eyes until the sentinels demote it; it
            # is also the only Redis that can become the new primary's replica, so durable touches wait for it.
            restarted = RedisProcess(old.dir, port=old.port)
            restarted.start()
            back = time.monotonic()
            while checks.recorded_since(back) < 30:
                assert time.monotonic() < back + 40, "no touch was recorded durably on the new primary"
                await checks.one()
                await asyncio.sleep(0.02)
            refused = [d for at, d, recorded in checks.answers if at > killed and not recorded]
            assert refused and set(refused) == {pb.DEFER}  # meanwhile: the fail mode, never a lie
            for _ in range(40):
                await checks.one()
        stats = redis_lib.Redis(port=restarted.port, decode_responses=True).info("commandstats")
        assert "cmdstat_evalsha" not in stats and "cmdstat_eval" not in stats  # guard never wrote to it
        missing = checks.missing_on(redis_lib.Redis(port=group.replica.port, decode_responses=True))
        assert missing == [], f"{len(missing)} touches answered recorded are gone"
        restarted.stop()
    finally:
        group.stop()


async def test_a_cluster_primary_killed_under_checks_fails_over_and_keeps_every_recorded_touch(app_factory, tmp_path):
    """3 primaries with a replica each: one primary SIGKILLed under a loop of checks. guard follows the slot map
    to the promoted replica, every touch answered ``recorded`` (GUARD_REDIS_DURABILITY=replica) is there after,
    and the old primary, restarted, is never written to by guard (what it is sent it refuses: MOVED)."""
    cluster = RedisCluster3(tmp_path / "cluster", replicas=1)
    cluster.start()
    try:
        app = await app_factory(redis_url=cluster.url, redis_durability="replica", redis_timeout=1.0)
        async with aio_channel(f"127.0.0.1:{app.port}", admin_key(app)) as channel:
            checks = Checks(pb_grpc.EngagementGuardStub(channel))
            for _ in range(30):
                await checks.one()
            assert len(checks.recorded) == 30
            victim = cluster.masters()[0]
            _kill(victim)
            killed = time.monotonic()
            while checks.recorded_since(killed) < 30 or len(cluster.masters()) < 3:
                assert time.monotonic() < killed + 40, "the cluster never failed over, or guard never followed"
                await checks.one()
                await asyncio.sleep(0.02)
            restarted = RedisProcess(victim.dir, port=victim.port, extra=victim.extra)  # rejoins from its nodes.conf
            restarted.start()
            for _ in range(40):
                await checks.one()
        stats = redis_lib.Redis(port=restarted.port, decode_responses=True).info("commandstats")
        assert stats.get("cmdstat_evalsha", {}).get("calls", 0) == 0, stats.get("cmdstat_evalsha")  # never written to
        reader = redis_lib.RedisCluster(host="127.0.0.1", port=cluster.masters()[0].port, decode_responses=True)
        missing = checks.missing_on(reader)
        reader.close()
        assert missing == [], f"{len(missing)} touches answered recorded are gone"
        restarted.stop()
    finally:
        cluster.stop()
