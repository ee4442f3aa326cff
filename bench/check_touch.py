"""CheckTouch against a real redis-server: Redis commands per check, latency, batch against singles.

Starts its own redis-server on a free port, runs the service in-process (no gRPC),
and prints, side by side in one run:

- Redis round trips per CheckTouch (commands the client sends; the target is one EVALSHA);
- median latency of a single recorded check and of a dry run;
- throughput of 1,000 checks sent one by one against one CheckTouches batch of 1,000.

    python bench/check_touch.py [--users 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class RoundTrips:
    """Counts the commands the client sends (each one a round trip; Lua's inner calls are not)."""

    def __init__(self, client: object) -> None:
        self.count = 0
        original = client.execute_command  # type: ignore[attr-defined]

        async def counted(*args: object, **kwargs: object) -> object:
            self.count += 1
            return await original(*args, **kwargs)

        client.execute_command = counted  # type: ignore[attr-defined]


async def run(users: int) -> None:
    from guard import logs, policy
    from guard.domain.types import Touch, TouchClass
    from guard.service import GuardService
    from guard.store.redis_store import RedisStore
    from tests.conftest import RedisProcess

    logs.configure("warning", json=True)
    redis = RedisProcess(Path(tempfile.mkdtemp()) / "redis")
    redis.start()
    try:
        store = RedisStore.from_url(redis.url)
        # Quiet hours off, so the clock of the run does not decide.
        pol = policy.parse((REPO / "guard/default_policy.yaml").read_text().replace(
            'start: "21:00", end: "08:00"', 'start: "00:00", end: "00:00"'))
        svc = GuardService(pol, store)

        def touch(i: int, dry: bool = False) -> Touch:
            return Touch(f"user{i % users}", "push", "promotion", f"c{i}", f"t{i}", TouchClass.MARKETING, dry, 0)

        await svc.check(touch(-1))  # loads the scripts
        trips = RoundTrips(store.client)
        singles = []
        for i in range(1000):
            t0 = time.perf_counter()
            await svc.check(touch(i))
            singles.append(time.perf_counter() - t0)
        per_check = trips.count / 1000
        dry = []
        for i in range(1000):
            t0 = time.perf_counter()
            await svc.check(touch(i, dry=True))
            dry.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await svc.check_many([touch(10_000 + i) for i in range(1000)])
        batch_s = time.perf_counter() - t0
        single_s = sum(singles)
        print(f"{'measure':<44}{'value':>12}")
        print(f"{'Redis round trips per recorded CheckTouch':<44}{per_check:>12.2f}")
        print(f"{'single CheckTouch, median (ms)':<44}{statistics.median(singles) * 1000:>12.3f}")
        print(f"{'dry-run CheckTouch, median (ms)':<44}{statistics.median(dry) * 1000:>12.3f}")
        print(f"{'1,000 singles, one by one (checks/s)':<44}{1000 / single_s:>12.0f}")
        print(f"{'one CheckTouches of 1,000 (checks/s)':<44}{1000 / batch_s:>12.0f}")
        print(f"{'batch / singles throughput ratio':<44}{single_s / batch_s:>12.2f}")
        await store.close()
    finally:
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    asyncio.run(run(parser.parse_args().users))


if __name__ == "__main__":
    main()
