"""Redis as companies run it: TLS (with and without client certificates, a certificate naming another host),
ACL users on one Redis and on every node of a Cluster, URL-encoded passwords, and the mistakes an operator
makes, each refused naming the setting. Every Redis here is a real redis-server the test starts; the CA and
certificates are made by openssl in the test."""

from __future__ import annotations

import asyncio
import functools
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from guard.store.connection import probe
from guard.store.desk import DeskStore
from guard.store.redis_store import RedisStore
from guard.store.target import Target, TlsFiles, parse
from tests.conftest import RedisCluster3, RedisProcess, valkey_server

PASSWORD = "p@ss:w/rd"  # every character a URL gives meaning to
ACL = ["--user", "default", "off", "--user", "guard", "on", f">{PASSWORD}", "~*", "&*", "+@all"]


async def reaches(where: Target, users: int = 1) -> None:
    """Both ways guard talks to Redis work: the lean connection (checks, scripts) and redis-py (the desk's
    stream reads), for ``users`` users' slots (on a cluster, every node)."""
    store = RedisStore.to(where, timeout_s=2)
    try:
        for i in range(users):
            await store.conn.execute("SET", f"guard:{{t:u{i}}}:probe", f"lean-{i}")
        for i in range(users):
            key = f"guard:{{t:u{i}}}:probe"
            assert await store.conn.call(functools.partial(store.client.get, key)) == f"lean-{i}"
        desk = DeskStore(store, "t")
        await desk.ensure_group()
        assert await desk.stream_after("0-0", 10) == []
    finally:
        await store.close()


@pytest.fixture
def tls_redis(tmp_path: Path, pki: Path):
    server = RedisProcess(tmp_path / "tls", pki=pki)
    server.start()
    yield server
    server.stop()


async def test_tls_verifies_the_server_against_the_ca_given(tls_redis, pki):
    await reaches(parse(tls_redis.url, TlsFiles(ca=pki / "ca.pem")))
    with pytest.raises(ValueError, match=r"^GUARD_REDIS_CA: .*certificate verify failed"):
        await probe(parse(tls_redis.url))  # the system's CAs do not know the test's CA


async def test_a_certificate_naming_another_host_needs_the_server_name(tls_redis, pki):
    url = tls_redis.url.replace("127.0.0.1", "localhost")
    await reaches(parse(url, TlsFiles(ca=pki / "ca.pem", server_name="redis.test")))
    with pytest.raises(ValueError, match=r"^GUARD_REDIS_CA: "):
        await probe(parse(url, TlsFiles(ca=pki / "ca.pem", server_name="other.test")))


async def test_tls_with_client_certificates(tmp_path, pki):
    server = RedisProcess(tmp_path / "mtls", pki=pki, client_certs=True)
    server.start()
    try:
        await reaches(parse(server.url, TlsFiles(ca=pki / "ca.pem", client_cert=pki / "client.pem",
                                                 client_key=pki / "client.key")))
        with pytest.raises(ValueError, match=r"^GUARD_REDIS_CLIENT_CERT: "):
            await probe(parse(server.url, TlsFiles(ca=pki / "ca.pem")))
    finally:
        server.stop()


async def test_an_acl_user_with_a_url_encoded_password(tmp_path):
    server = RedisProcess(tmp_path / "acl", extra=ACL, password=PASSWORD)
    server.start()
    try:
        await reaches(parse(f"redis://guard:{quote(PASSWORD, safe='')}@127.0.0.1:{server.port}/0"))
        with pytest.raises(ValueError, match=r"^GUARD_REDIS_URL: .*WRONGPASS"):
            await probe(parse(f"redis://guard:wrong@127.0.0.1:{server.port}/0"))
        with pytest.raises(ValueError, match=r"^GUARD_REDIS_URL: .*NOAUTH"):
            await probe(parse(f"redis://127.0.0.1:{server.port}/0"))
    finally:
        server.stop()


async def test_an_acl_user_on_every_node_of_a_cluster(tmp_path):
    """Nodes found from CLUSTER SLOTS get the seed's user and password (they once got none: NOAUTH)."""
    cluster = RedisCluster3(tmp_path / "acl-cluster", extra=ACL, create_auth=["--user", "guard", "--pass", PASSWORD])
    cluster.start()
    try:
        seed = cluster.nodes[0]
        refused = await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", str(cluster.nodes[1].port), "ping"],
                                          capture_output=True, text=True)
        assert "NOAUTH" in refused.stdout + refused.stderr  # the default user is off on every node
        await reaches(parse(f"redis+cluster://guard:{quote(PASSWORD, safe='')}@127.0.0.1:{seed.port}"), users=30)
        with pytest.raises(ValueError, match=r"^GUARD_REDIS_URL: .*WRONGPASS"):
            await probe(parse(f"redis+cluster://guard:wrong@127.0.0.1:{seed.port}"))
    finally:
        cluster.stop()


@pytest.mark.parametrize(("env", "named"), [
    ({"GUARD_REDIS_URL": "memcached://127.0.0.1:1"}, "GUARD_REDIS_URL"),
    ({"GUARD_REDIS_URL": "rediss://127.0.0.1:1", "GUARD_REDIS_CA": "/no/such/ca.pem"}, "GUARD_REDIS_CA"),
    ({"GUARD_REDIS_URL": "redis://127.0.0.1:1", "GUARD_REDIS_CA": "/no/such/ca.pem"}, "GUARD_REDIS_CA"),
    ({"GUARD_REDIS_URL": "rediss://127.0.0.1:1", "GUARD_REDIS_CLIENT_CERT": "c.pem"}, "GUARD_REDIS_CLIENT_KEY"),
    ({"GUARD_REDIS_URL": "redis+sentinel://127.0.0.1:26379"}, "GUARD_REDIS_URL"),
    ({"GUARD_REDIS_URL": "redis://127.0.0.1:99999"}, "GUARD_REDIS_URL"),
])
def test_a_mistaken_setting_is_named(env, named):
    from guard.settings import Settings

    with pytest.raises(ValueError, match=f"^{named}"):
        Settings.from_env(env).redis_target()



@pytest.mark.parametrize("appendonly", ["yes", "no"])
async def test_aof_durability_answers_recorded_only_when_the_primary_s_disk_has_the_touch(tmp_path, appendonly):
    """GUARD_REDIS_DURABILITY=aof waits with WAITAOF 1 0 (Redis 7.2+; here a Valkey 8 server). With the
    append-only file on, a touch is recorded once on disk; with it off, WAITAOF cannot say so: the touch is
    taken back and the check fails as an outage would (the service answers its fail mode)."""
    from guard.domain.types import Outcome
    from guard.errors import StoreUnavailable
    from guard.policy import load
    from guard.store.keys import UserKeys
    from tests.helpers import touch

    server = RedisProcess(tmp_path / "valkey", binary=valkey_server(), extra=["--appendonly", appendonly])
    server.start()
    store = RedisStore.to(parse(server.url), durability="aof")
    try:
        assert await probe(parse(server.url), durability="aof") == ""  # new enough: guard serve would start
        keys = UserKeys("default", "u1")
        if appendonly == "yes":
            outcome = await store.check_touch(keys, touch(touch_id="t1"), load(None), 1_800_000_000_000)
            assert isinstance(outcome, Outcome) and outcome.recorded
        else:
            with pytest.raises(StoreUnavailable, match="not on the primary's disk"):
                await store.check_touch(keys, touch(touch_id="t1"), load(None), 1_800_000_000_000)
            assert server.client().hget(keys.touch("t1"), "state") == b"cancelled"  # taken back: counts in no cap
    finally:
        await store.close()
        server.stop()
