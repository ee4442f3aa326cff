"""Runs the real ``guard serve`` as a subprocess on a free port and talks to it over gRPC."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from guard.store.embedded import free_port


class ServeProcess:
    """``guard serve`` as a subprocess. Its ports are the ones it binds on its first start (port 0: the kernel's
    choice, read back from its log), kept across restarts, so parallel test workers never race for a port;
    ``--workers N`` needs a port known before (its workers share it), so it gets one that was free."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "GUARD_LOG_FORMAT": "json", **(env or {})}
        workers = int(self.env.get("GUARD_WORKERS", "1") or 1) > 1
        self.port = free_port() if workers else 0
        self.http_port = free_port() if workers else 0
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir / "serve.log"
        self.credentials: grpc.ChannelCredentials | None = None  # set: the server speaks TLS

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _bound(self, since: int, deadline: float) -> None:
        """Read the ports this start bound from its log (they are logged before it reports healthy)."""
        import json

        while not (self.port and self.http_port):
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "guard serve never said where it listens"
            for line in self.log.read_text()[since:].splitlines():
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                if event.get("event") == "serving" and not self.port:
                    self.port = int(event["port"])
                elif event.get("event") == "http_listening" and not self.http_port:
                    self.http_port = int(event["port"])
            time.sleep(0.05)

    def start(self, timeout_s: float = 60, ready_on: str = "") -> None:
        """Start, and wait until health says ``ready_on`` (``""``: the whole service; ``guard.redis``: Redis
        answers, for a server that is up but not ready) is SERVING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        since = self.log.stat().st_size if self.log.exists() else 0
        handle = self.log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guard", "serve", "--listen", self.target, "--data-dir", str(self.data_dir),
             "--http-listen", f"127.0.0.1:{self.http_port}"],
            env=self.env, stdout=handle, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout_s
        self._bound(since, deadline)
        self._until_serving(ready_on, deadline)

    def _alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()

    def _until_serving(self, ready_on: str, deadline: float) -> None:
        """Wait until health says ``ready_on`` is SERVING (the server still alive at every look)."""
        opened = (grpc.secure_channel(self.target, self.credentials) if self.credentials is not None
                  else grpc.insecure_channel(self.target))
        with opened as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self._alive()
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service=ready_on), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, "guard serve did not become healthy"
                time.sleep(0.05)

    @property
    def http(self) -> str:
        """The pages' address (preference center, desk)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def key(self) -> str:
        """The admin key the server wrote on its first start (tenant ``default``, roles admin and operator)."""
        return (self.data_dir / "admin.key").read_text(encoding="ascii").strip()

    @property
    def cli_env(self) -> dict[str, str]:
        """The environment of a ``guard`` client command run beside this server: it finds admin.key itself."""
        env = {k: v for k, v in os.environ.items() if k != "GUARD_API_KEY"}
        return {**env, "GUARD_DATA_DIR": str(self.data_dir)}

    def cli(self, *args: str, key: str | None = None, timeout_s: float = 60,
            server: bool = True) -> subprocess.CompletedProcess[str]:
        """A ``guard`` client command against this server (with the admin key it finds, or ``key``); ``server``
        False: an operator's command that names no server (``guard store ...``)."""
        env = self.cli_env if key is None else {**self.cli_env, "GUARD_API_KEY": key}
        where = ["--server", self.target] if server else []
        return subprocess.run([sys.executable, "-m", "guard", *args, *where], env=env,
                              capture_output=True, text=True, timeout=timeout_s)

    def channel(self, key: str | None = None, **options: object) -> grpc.Channel:
        """A channel to this server that sends ``key`` (default: the admin key) with every call."""
        from guard.transport.client import connect

        return connect(self.target, key or self.key, options=list(options.items()) or None)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def events(self, name: str | None = None, timeout_s: float = 3.0,
               where: Callable[[dict[str, object]], bool] | None = None) -> list[dict[str, object]]:
        """The server's JSON log lines (of one event, if named); waits up to ``timeout_s`` for lines still
        gathering, until one matching ``where`` (any, when not given) has been written."""
        import json

        deadline = time.monotonic() + timeout_s
        while True:
            found = [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]
            found = [e for e in found if name is None or e.get("event") == name]
            if any(where is None or where(e) for e in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class InProcessServe(ServeProcess):
    """The app wired exactly as ``guard serve`` wires it (``app.build`` from the same settings, its own embedded
    Redis, the bundled model shared by the test session), run in this process on a thread with its own event
    loop: the same ports, admin key, channels and client commands as ``ServeProcess``, without importing torch
    and loading the model again. For API contracts; what is about processes (signals, the supervisor, kill -9,
    logs) keeps ``ServeProcess``. ``now`` is the use cases' clock (a ``FakeClock`` moves time instead of sleeping).
    """

    def __init__(self, data_dir: Path, env: dict[str, str] | None, model: object,
                 now: Callable[[], int] | None = None) -> None:
        super().__init__(data_dir, env)
        self.model = model
        self.now = now
        self.app: Any = None  # the running App, its event loop and thread
        self._loop: Any = None
        self._thread: Any = None

    def start(self, timeout_s: float = 60, ready_on: str = "") -> None:
        import asyncio
        import threading

        from guard.app import build
        from guard.domain import clock
        from guard.settings import Settings

        settings = Settings.from_env(self.env, listen=f"127.0.0.1:{self.port}", data_dir=self.data_dir,
                                     http_listen=f"127.0.0.1:{self.http_port}")
        loop = asyncio.new_event_loop()
        built: list[Any] = []
        started = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)  # gRPC's server binds to the loop current when it is made: made here
            try:
                built.append(build(settings, model=self.model, now=self.now or clock.system_clock))  # type: ignore[arg-type]
                loop.run_until_complete(built[0].start())
            except BaseException as exc:
                failed.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=run, name="guard-app", daemon=True)
        thread.start()
        assert started.wait(timeout_s), "the app did not start"
        if failed:
            raise failed[0]
        app = built[0]
        self.app, self._loop, self._thread = app, loop, thread
        self.port, self.http_port = app.server.port, app.http.port if app.http is not None else 0
        self._until_serving(ready_on, time.monotonic() + timeout_s)

    def _alive(self) -> None:
        assert self._thread is not None and self._thread.is_alive(), "the app's thread ended"

    def stop(self) -> int:
        import asyncio

        assert self.app is not None and self._loop is not None
        loop = self._loop
        asyncio.run_coroutine_threadsafe(self.app.stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)
        loop.close()
        self.app = None
        return 0

    def kill(self) -> None:
        if self.app is not None:
            self.stop()


@pytest.fixture
def app_serve_factory(tmp_path: Path, bundled_model: object) -> Iterator[object]:
    """``InProcessServe``s, stopped at the end of the test."""
    started: list[InProcessServe] = []

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None,
             now: Callable[[], int] | None = None) -> InProcessServe:
        one = InProcessServe(data_dir or tmp_path / "data", env, bundled_model, now)
        started.append(one)
        return one

    yield make
    for one in started:
        one.kill()


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[object]:
    started: list[ServeProcess] = []

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None) -> ServeProcess:
        proc = ServeProcess(data_dir or tmp_path / "data", env)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[object]:
    """A redis-server of this test's own, for a guard serve whose Redis the test reads directly."""
    from tests.conftest import RedisProcess

    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bundled_model() -> object:
    from guard.sentiment.model import BUNDLED_MODEL, SentimentModel

    return SentimentModel(BUNDLED_MODEL, threads=2)


@pytest.fixture
async def app_factory(redis_server, bundled_model, tmp_path) -> AsyncIterator[object]:
    """Build apps wired exactly as ``guard serve`` wires them, in this process, on free ports, quiet hours off;
    ``settings`` change what a test needs changed (a short timeout, a small limit), ``policy`` the policy's sections."""
    from dataclasses import replace

    import redis.asyncio as aioredis

    from guard.app import build
    from guard.settings import Settings
    from tests.conftest import STORE_TIMEOUT_S
    from tests.helpers import QUIET_HOURS_OFF, policy_file

    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    built: list[object] = []

    async def make(policy: dict[str, object] | None = None, **settings: object) -> object:
        changes = {"quiet_hours": QUIET_HOURS_OFF, "recovery": {"redeliver_after": "1s"}, **(policy or {})}
        # No sweep and no brake evaluation behind the tests' backs: tests compare the store before and after a call.
        base = Settings(listen="127.0.0.1:0", http_listen="127.0.0.1:0", redis_url=redis_server.url,
                        sweep_seconds=3600, brake_seconds=3600, policy=policy_file(tmp_path, **changes),
                        redis_timeout=STORE_TIMEOUT_S)
        one = build(replace(base, data_dir=tmp_path / "data", **settings), model=bundled_model)  # type: ignore[arg-type]
        await one.start()
        built.append(one)
        return one

    yield make
    for one in built:
        await one.stop(0)  # type: ignore[attr-defined]


@pytest.fixture
async def app(app_factory) -> object:
    """The service wired exactly as ``guard serve`` wires it, in this process, on a free port, quiet hours off."""
    return await app_factory()
