"""The embedded Redis dies with its parent and is never doubled on one data directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from guard.store.embedded import PID_FILE, EmbeddedRedis, EmbeddedRedisError, _serves, free_port
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.e2e.test_serve import check, open_day_policy


def _redis_pid(data_dir: Path) -> int:
    return int((data_dir / "redis" / PID_FILE).read_text().strip())


def _wait_gone(pid: int, data_dir: Path, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while _serves(pid, data_dir):
        assert time.monotonic() < deadline, f"redis-server {pid} outlived its parent"
        time.sleep(0.05)


def test_sigkill_of_guard_serve_takes_its_redis_along_and_loses_nothing(serve_factory, tmp_path):
    """kill -9 the server: its Redis exits too; the next start runs one Redis and every recorded touch counts."""
    server = serve_factory({"GUARD_POLICY": open_day_policy(tmp_path)})
    server.start()
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        assert [check(stub, f"t{i}").decision for i in range(3)] == [pb.ALLOW] * 3
    first_redis = _redis_pid(server.data_dir)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.proc = None
    _wait_gone(first_redis, server.data_dir / "redis")

    server.start()
    second_redis = _redis_pid(server.data_dir)
    assert second_redis != first_redis and _serves(second_redis, server.data_dir / "redis")
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        after = check(stub, "t3")
        assert after.decision == pb.DEFER and list(after.reasons) == [pb.FREQUENCY_CAP]
        assert check(stub, "t0").replayed
    assert server.stop() == 0
    _wait_gone(second_redis, server.data_dir / "redis")


def test_a_second_serve_on_one_data_directory_is_refused(tmp_path):
    """The data directory's lock: a second embedded Redis on it fails, naming the holder."""
    first = EmbeddedRedis(tmp_path / "redis")
    first.start()
    try:
        with pytest.raises(EmbeddedRedisError, match="in use by another guard serve"):
            EmbeddedRedis(tmp_path / "redis").start()
        assert first.process is not None and first.process.poll() is None
    finally:
        first.stop()
    again = EmbeddedRedis(tmp_path / "redis")
    again.start()  # the lock went with the first
    again.stop()


def test_a_leftover_redis_is_stopped_before_a_new_one_starts(tmp_path):
    """A redis-server still serving the directory from an earlier run (parent gone) is stopped, never doubled."""
    data = tmp_path / "redis"
    data.mkdir()
    port = free_port()
    binary = shutil.which("redis-server")
    assert binary
    leftover = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                                 "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    (data / PID_FILE).write_text(f"{leftover.pid}\n")
    deadline = time.monotonic() + 10
    while not _serves(leftover.pid, data):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fresh = EmbeddedRedis(data)
    try:
        fresh.start()
        assert leftover.wait(timeout=15) == 0  # SIGTERM: it wrote its file and left
        assert fresh.process is not None and _serves(fresh.process.pid, data)
    finally:
        fresh.stop()
        if leftover.poll() is None:
            os.kill(leftover.pid, signal.SIGKILL)
