"""``guard serve --workers N``: N serving processes on one port, one scoring process, one Redis.

Why processes: one Python process serves gRPC on one core. N workers bind the same port
(SO_REUSEPORT: the kernel spreads new connections across them), each with its own
connection to Redis. The model is loaded once, in a scoring process the workers send replies
to (``guard.sentiment.remote``), so memory does not grow with N and replies from every worker
share its batches. The supervisor owns what must exist once: the embedded Redis (when no
address is given), the scoring process, the one metrics endpoint (Prometheus multiprocess
mode, summing every worker), and the signals. SIGTERM drains every worker, then stops the
scorer and Redis. A child that dies is started again; every child dies with the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from guard import logs
from guard.processes import spawn
from guard.settings import Settings
from guard.store.embedded import EmbeddedRedis
from guard.validate import ascii_digits

log = logs.get("guard.supervisor")

RESTART_DELAY_S = 1.0


@dataclass
class Child:
    role: str  # "scorer" or "worker"
    index: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> None:
        command = "_scorer" if self.role == "scorer" else "_worker"
        self.process = spawn([sys.executable, "-m", "guard", command], env=self.env)
        self.started_at = time.monotonic()
        log.info("child_started", role=self.role, index=self.index, pid=self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.embedded: EmbeddedRedis | None = None
        self.run_dir = Path(tempfile.mkdtemp(prefix="guard-serve-"))
        self.stopping = False

    def _env(self, redis_url: str) -> dict[str, str]:
        """The workers' and the scorer's environment: every setting of this process, and where to find the rest."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUARD_")}
        env.update(self.settings.to_env())
        env.update({"GUARD_REDIS_URL": redis_url, "GUARD_SCORER_SOCKET": str(self.run_dir / "scorer.sock"),
                    "GUARD_WORKERS": "1"})
        if self.settings.metrics_listen:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.run_dir / "metrics")
        return env

    async def run(self) -> None:
        s = self.settings
        host, _, port = s.listen.rpartition(":")
        if not ascii_digits(port) or not _port_is_free(host.strip("[]") or "0.0.0.0", int(port)):
            raise OSError(f"cannot listen on {s.listen}: the address is in use or not valid")
        (self.run_dir / "metrics").mkdir()
        redis_url = s.redis_url
        if not redis_url:
            self.embedded = EmbeddedRedis(s.data_dir / "redis", appendfsync=s.redis_appendfsync)
            self.embedded.start()
            redis_url = self.embedded.url
            log.info("using_embedded_redis", url=redis_url, data_dir=str(self.embedded.data_dir),
                     note="no GUARD_REDIS_URL given: guard runs its own persistent Redis, shared by every worker")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            env = self._env(redis_url)
            scorer = Child("scorer", 0, env)
            self.children.append(scorer)
            scorer.start()
            await self._wait_for_scorer(scorer, stop)
            for index in range(s.workers):
                child = Child("worker", index, {**env, "GUARD_WORKER_INDEX": str(index)})
                self.children.append(child)
                child.start()
            if s.metrics_listen:
                self._serve_metrics()
            log.info("supervising", workers=s.workers, listen=s.listen, scorer_pid=scorer.process.pid if scorer.process
                     else None)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                self._restart_the_dead()
        finally:
            await self._stop_all()

    async def _wait_for_scorer(self, scorer: Child, stop: asyncio.Event, timeout_s: float = 180) -> None:
        socket_path = Path(scorer.env["GUARD_SCORER_SOCKET"])
        deadline = time.monotonic() + timeout_s
        while not os.path.exists(socket_path):  # noqa: ASYNC240 - a stat every 100 ms while the model loads
            if not scorer.alive:
                raise RuntimeError("the scoring process exited while loading the model; see its log above")
            if stop.is_set() or time.monotonic() > deadline:
                raise RuntimeError("the scoring process did not start listening in time")
            await asyncio.sleep(0.1)

    def _serve_metrics(self) -> None:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        from guard.web.http import host_port

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.run_dir / "metrics"))  # type: ignore[no-untyped-call]
        host, port = host_port(self.settings.metrics_listen, "GUARD_METRICS_LISTEN")
        try:
            start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise OSError(exc.errno, f"GUARD_METRICS_LISTEN {self.settings.metrics_listen}: {exc.strerror}") from None
        log.info("metrics_listening", address=self.settings.metrics_listen, workers=self.settings.workers)

    def _restart_the_dead(self) -> None:
        for child in self.children:
            if not child.alive and not self.stopping and time.monotonic() - child.started_at > RESTART_DELAY_S:
                code = child.process.returncode if child.process is not None else None
                log.warning("child_died", role=child.role, index=child.index, exit_code=code, note="starting it again")
                child.start()

    async def _stop_all(self) -> None:
        self.stopping = True
        workers = [c for c in self.children if c.role == "worker"]
        scorers = [c for c in self.children if c.role == "scorer"]
        log.info("draining", workers=len(workers), grace_s=self.settings.drain_seconds)
        for group, grace in ((workers, self.settings.drain_seconds + 5), (scorers, 10.0)):
            for child in group:
                if child.alive and child.process is not None:
                    child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for child in group:
                while child.alive and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a child process
                    await asyncio.sleep(0.05)
                if child.alive and child.process is not None:
                    child.process.kill()
                if child.process is not None:
                    child.process.wait()
        if self.embedded is not None:
            self.embedded.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        log.info("stopped")
        logs.flush()
