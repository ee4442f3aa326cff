"""Every Redis misconfiguration stops ``guard serve`` at once, before the model loads, naming the setting.

A bad scheme, a missing CA file, a wrong password and a sentinel service nobody watches, each against real
redis-server processes (a Redis with a password, a sentinel watching another service). The time each
refusal took is printed (the target is under 2 s on a quiet host; the test asserts only that it is
refused before the model loads, and within a bound that catches a hang).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from guard.store.embedded import free_port
from tests.conftest import RedisProcess


@pytest.fixture(scope="module")
def deployments(tmp_path_factory):
    """A Redis that wants a password, and one sentinel watching it as ``guard``."""
    tmp = tmp_path_factory.mktemp("misconfigured")
    locked = RedisProcess(tmp / "locked", extra=["--requirepass", "right"], password="right")
    locked.start()
    port = free_port()
    (tmp / "sentinel.conf").write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                                       f"sentinel monitor guard 127.0.0.1 {locked.port} 1\n"
                                       "sentinel auth-pass guard right\n", encoding="ascii")
    sentinel = subprocess.Popen(["redis-server", str(tmp / "sentinel.conf"), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() != "PONG":
        assert time.monotonic() < deadline, "the sentinel did not start"
        time.sleep(0.1)
    yield {"redis": locked.port, "sentinel": port}
    sentinel.terminate()
    sentinel.wait(timeout=10)
    locked.stop()


@pytest.mark.parametrize(("case", "env", "named"), [
    ("bad scheme", {"GUARD_REDIS_URL": "mysql://127.0.0.1:{redis}"}, "GUARD_REDIS_URL"),
    ("missing CA", {"GUARD_REDIS_URL": "rediss://127.0.0.1:{redis}", "GUARD_REDIS_CA": "/no/such/ca.pem"},
     "GUARD_REDIS_CA"),
    ("wrong password", {"GUARD_REDIS_URL": "redis://:wrong@127.0.0.1:{redis}/0"}, "GUARD_REDIS_URL"),
    ("no password", {"GUARD_REDIS_URL": "redis://127.0.0.1:{redis}/0"}, "GUARD_REDIS_URL"),
    ("unknown sentinel service", {"GUARD_REDIS_URL": "redis+sentinel://:right@127.0.0.1:{sentinel}/nosuch"},
     "GUARD_REDIS_URL"),
    ("aof on a Redis before 7.2", {"GUARD_REDIS_URL": "redis://:right@127.0.0.1:{redis}/0",
                                   "GUARD_REDIS_DURABILITY": "aof"}, "GUARD_REDIS_DURABILITY"),
])
def test_a_misconfiguration_stops_serve_before_the_model_loads_naming_the_setting(deployments, tmp_path, case, env,
                                                                                   named):
    settings = {k: v.format(**deployments) for k, v in env.items()}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "guard", "serve", "--data-dir", str(tmp_path / "data")],
                         env={**os.environ, "GUARD_LOG_FORMAT": "json", **settings}, capture_output=True, text=True,
                         timeout=60)
    took = time.monotonic() - started
    print(f"{case}: refused in {took:.2f}s")
    assert out.returncode == 2, out.stdout + out.stderr
    assert named in out.stderr and "sentiment_model_loaded" not in out.stdout + out.stderr
    assert not (tmp_path / "data" / "admin.key").exists()  # nothing started, nothing written
    assert took < 15
