"""An embedded, persistent Redis for ``guard serve`` with no configuration.

A ``redis-server`` from PATH runs as a child process on a free loopback port,
its data (append-only file on) under the data directory, so touches recorded
before a restart still count after it.

Exactly one Redis ever serves a data directory: two writers on one append-only
file lose data when either rewrites it. So ``guard serve`` holds a lock on the
directory for as long as it runs; the child is asked by the kernel to stop when
its parent dies, however it dies (``PR_SET_PDEATHSIG``); and a Redis left over
from an earlier run anyway (its pid recorded beside the data) is stopped
before a new one starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from guard import logs
from guard.processes import spawn

log = logs.get("guard.embedded_redis")

LOCK_FILE = "guard.lock"
PID_FILE = "redis.pid"
PORT_FILE = "redis.port"  # where the operator's commands (guard store ...) find a running embedded Redis
APPENDFSYNC = ("everysec", "always", "no")


class EmbeddedRedisError(RuntimeError):
    pass


class _PortTaken(Exception):
    """redis-server could not bind the port it was given: someone took it after it was found free."""


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live redis-server working in ``data_dir`` (Redis changes into its --dir)."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return name.startswith("redis-server") and cwd == data_dir.resolve()


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    appendfsync: str = "everysec"
    process: subprocess.Popen[bytes] | None = None
    _lock: IO[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise EmbeddedRedisError("no redis-server on PATH: install Redis or set GUARD_REDIS_URL")
        if self.appendfsync not in APPENDFSYNC:
            raise EmbeddedRedisError(f"GUARD_REDIS_APPENDFSYNC: one of {', '.join(APPENDFSYNC)} is expected, "
                                     f"got {self.appendfsync[:32]!r}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._stop_leftover()
        chosen = not self.port
        for _ in range(3 if chosen else 1):  # a port found free can be taken by another before redis-server binds it
            if chosen:
                self.port = free_port()
            try:
                self._start_on_port(binary, timeout_s)
                return
            except _PortTaken:
                continue
        raise EmbeddedRedisError(f"redis-server could not bind port {self.port}; see {self.data_dir / 'redis.log'}")

    def _start_on_port(self, binary: str, timeout_s: float) -> None:
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
               "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "", "--daemonize", "no",
               "--logfile", str(self.data_dir / "redis.log")]
        self.process = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (self.data_dir / PID_FILE).write_text(f"{self.process.pid}\n", encoding="ascii")
        (self.data_dir / PORT_FILE).write_text(f"{self.port}\n", encoding="ascii")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "Address already in use" in _tail(self.data_dir / "redis.log"):
                    raise _PortTaken()
                raise EmbeddedRedisError(f"redis-server exited with {self.process.returncode}; "
                                         f"see {self.data_dir / 'redis.log'}")
            if _ping(self.port):
                log.info("embedded_redis_started", port=self.port, data_dir=str(self.data_dir), appendonly=True,
                         appendfsync=self.appendfsync, pid=self.process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout_s}s")

    def _take_lock(self) -> None:
        """One guard serve per data directory: a second one is refused, naming the first's pid."""
        handle = (self.data_dir / LOCK_FILE).open("a+", encoding="ascii")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise EmbeddedRedisError(f"{self.data_dir} is in use by another guard serve (pid {holder}); "
                                     "stop it, or give this one its own --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle  # held (and so locked) until this process exits or stop() releases it

    def _stop_leftover(self) -> None:
        """A Redis still serving this directory from an earlier run (whose parent died): stop it first."""
        pid_file = self.data_dir / PID_FILE
        try:
            pid = int(pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return
        if not _serves(pid, self.data_dir):
            return
        log.warning("embedded_redis_leftover", pid=pid, note="a Redis from an earlier run still serves this data "
                    "directory; stopping it (it writes its append-only file first) before starting a new one")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _serves(pid, self.data_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _serves(pid, self.data_dir):
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis flushes the append-only file and exits
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            log.info("embedded_redis_stopped", port=self.port)
        self.process = None
        for name in (PID_FILE, PORT_FILE):
            with contextlib.suppress(OSError):
                (self.data_dir / name).unlink()
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def running_url(data_dir: Path) -> str:
    """The URL of the embedded Redis a running ``guard serve`` keeps in ``data_dir`` ('' when none runs)."""
    try:
        port = int((data_dir / PORT_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return ""
    return f"redis://127.0.0.1:{port}/0" if _ping(port) else ""
