"""What one Redis can decide per second: guard's check script through EVALSHA, driven by ``redis-benchmark``.

The arguments are the ones guard itself builds (``RedisStore._check_call``) for a recorded marketing push
promotion under the shipped policy; users and touch ids are made random by redis-benchmark. Two kinds of
traffic: ``fresh`` (a million users: nearly every user is new) and ``history`` (2,000 users: after the warm-up
each has about ten touches, so caps bind and tiers are read). With ``--before REV`` the check script of that
revision runs beside this one in the same Redis, same arguments, alternating rounds, and the table gives the
ratio; the commands each script runs per check are counted from ``INFO commandstats``.

    python bench/check_script.py [--before REV] [--rounds 3] [--requests 50000]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import Redis  # noqa: E402
from guard import policy as policies  # noqa: E402
from guard.domain.types import Touch, TouchClass  # noqa: E402
from guard.store.connection import Connection  # noqa: E402
from guard.store.keys import UserKeys  # noqa: E402
from guard.store.redis_store import RedisStore  # noqa: E402

SCRIPT = "guard/store/lua/check_touch.lua"
USER, TOUCH = "BENCHUSER", "BENCHTOUCH"
KINDS = {"fresh": 1_000_000, "history": 2_000}


def shipped_policy_any_hour() -> policies.Policy:
    """The shipped policy with its quiet hours off: the hour the bench runs at must not decide."""
    import yaml

    data = yaml.safe_load((REPO / "guard/default_policy.yaml").read_text(encoding="utf-8"))
    data["quiet_hours"] = {"time_zone": "UTC", "start": "00:00", "end": "00:00"}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(data, f, allow_unicode=True)
    try:
        return policies.load(Path(f.name))
    finally:
        Path(f.name).unlink()


def check_args(now_ms: int) -> tuple[list[str], list[str]]:
    """The keys and arguments guard sends for one recorded marketing push, user and touch left to randomise."""
    store = RedisStore(Connection.from_url("redis://127.0.0.1:1"))
    touch = Touch(user_id=USER, channel="push", category="promotion", touch_id=TOUCH, touch_class=TouchClass.MARKETING,
                  dry_run=False, campaign_id="spring", at_ms=now_ms)
    keys, args = store._check_call(UserKeys("default", USER), touch, shipped_policy_any_hour(), now_ms, None)
    texts = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
    never_late = [re.sub(r'("deadline_ms":\s*)\d+', r"\g<1>9007199254740991", a) for a in texts]
    return [str(k) for k in keys], never_late


def run(redis: Redis, sha: str, keys: list[str], args: list[str], users: int, requests: int) -> float:
    rand = [k.replace(USER, "__rand_int__").replace(TOUCH, "__rand_int__") for k in keys]
    argv = [a.replace(TOUCH, "__rand_int__") for a in args]
    cmd = ["redis-benchmark", "-p", str(redis.port), "-n", str(requests), "-c", "32", "-r", str(users), "-q", "--csv",
           "evalsha", sha, str(len(rand)), *rand, *argv]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = [row.split(",") for row in out.splitlines() if row.lower().startswith('"evalsha')]
    return float(rows[-1][-7].strip('"'))


def commands_per_call(redis: Redis, sha: str, keys: list[str], args: list[str], users: int, calls: int) -> float:
    """Commands the script itself ran per call (INFO commandstats, EVALSHA itself not counted)."""
    client: Any = redis.client
    client.config_resetstat()
    import random

    for _ in range(calls):
        user, touch = str(random.randrange(users)), str(random.randrange(1 << 40))
        client.evalsha(sha, len(keys), *[k.replace(USER, user).replace(TOUCH, touch) for k in keys],
                       *[a.replace(TOUCH, touch) for a in args])
    stats = client.info("commandstats")
    inner = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_evalsha", "cmdstat_config", "cmdstat_info"))
    return inner / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="", help="a git revision whose check script runs beside this one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=50_000, help="per round and script (default 50,000)")
    args = parser.parse_args()
    import time

    keys, argv = check_args(time.time_ns() // 1_000_000)
    scripts = {"now": (REPO / SCRIPT).read_text()}
    if args.before:
        scripts["before"] = subprocess.run(["git", "-C", str(REPO), "show", f"{args.before}:{SCRIPT}"],
                                           capture_output=True, text=True, check=True).stdout
    results: dict[str, dict[str, list[float]]] = {}
    commands: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as work:
        for kind, users in KINDS.items():
            # Each script gets a Redis of its own per kind of traffic, warmed the same way; rounds alternate.
            servers = {name: Redis(Path(work) / f"{kind}-{name}") for name in scripts}
            try:
                shas = {name: servers[name].client.script_load(body) for name, body in scripts.items()}
                for name, body in scripts.items():
                    assert shas[name] == hashlib.sha1(body.encode()).hexdigest()
                    if kind == "history":
                        run(servers[name], shas[name], keys, argv, users, users * 10)  # about ten touches each
                    commands.setdefault(kind, {})[name] = commands_per_call(servers[name], shas[name], keys, argv,
                                                                            users, 500)
                    results.setdefault(kind, {})[name] = []
                for _ in range(args.rounds):
                    for name in scripts:
                        results[kind][name].append(run(servers[name], shas[name], keys, argv, users, args.requests))
            finally:
                for server in servers.values():
                    server.stop()
    print(f"{'traffic':10} {'script':8} {'EVALSHA/s (median)':>20} {'commands/check':>16}")
    for kind, by_script in results.items():
        for name, per_s in by_script.items():
            print(f"{kind:10} {name:8} {statistics.median(per_s):>20,.0f} {commands[kind][name]:>16.1f}")
        if "before" in by_script:
            ratio = statistics.median(by_script["now"]) / statistics.median(by_script["before"])
            print(f"{kind:10} {'ratio':8} {ratio:>20.2f}x")


if __name__ == "__main__":
    main()
