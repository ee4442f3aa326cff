"""How much Redis memory guard needs per user, measured with MEMORY USAGE on users made as guard makes them.

Builds the service the way ``guard serve`` does (``guard.app.build``) on a redis-server of its own, gives
each of N users a typical week (three marketing touches recorded, a fourth refused, a preference change
in the ledger, a reply scored by the bundled model; every tenth a negative reply with its hold and task),
then sums ``MEMORY USAGE`` over every key of those users and over the tenant's shared keys. Prints bytes
per user and what a million such users take.

    python bench/sizing.py --users 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))


async def measure(users: int, work: Path, port: int) -> dict[str, float]:
    import redis.asyncio as aioredis

    from guard.app import build
    from guard.domain.types import Touch, TouchClass
    from guard.settings import Settings
    from guard.usecases.preferences import PreferencesPatch

    settings = Settings(listen="127.0.0.1:0", http_listen="off", redis_url=f"redis://127.0.0.1:{port}/0",
                        data_dir=work / "data", sweep_seconds=3600, brake_seconds=3600)
    app = build(settings)
    await app.start()
    try:
        for i in range(users):
            user = f"user-{i:07d}"
            for k in range(4):
                await app.service.check(Touch(user, "push", "promotion", f"spring-{k}", f"{user}-t{k}",
                                              TouchClass.MARKETING, False, 0))
            await app.preferences.update_preferences(user, PreferencesPatch(paths=["channels.sms"],
                                                                             channels={"sms": False}),
                                                     source="preference_center", actor="self", expected_version=None)
            text = "别再发了，烦死了" if i % 10 == 0 else "好的，谢谢"
            await app.replies.record(user, "push", text, f"{user}-r1", f"{user}-t0")
        await app.counters.flush()
    finally:
        await app.stop(0)
    client = aioredis.Redis(port=port, decode_responses=True)
    user_bytes = tenant_bytes = 0
    async for key in client.scan_iter(count=1000):
        size = await client.memory_usage(key, samples=0) or 0
        if key.startswith("guard:{default:"):
            user_bytes += size
        else:
            tenant_bytes += size
    used = (await client.info("memory"))["used_memory"]
    await client.aclose()
    return {"users": users, "bytes_per_user_keys": round(user_bytes / users), "tenant_keys_bytes": tenant_bytes,
            "used_memory_bytes": used, "used_memory_per_user": round(used / users),
            "gib_per_million_users": round(used / users * 1_000_000 / 2**30, 2)}


def main() -> None:
    from bench.run import free_port, wait_port

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    started = time.monotonic()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="guard-sizing-") as tmp:
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            wait_port(port, server)
            result = asyncio.run(measure(args.users, Path(tmp), port))
        finally:
            server.terminate()
            server.wait(timeout=10)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
