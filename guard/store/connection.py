"""One Redis connection for the whole store: guarded calls, the Lua scripts, and auto-pipelining.

Every command goes through ``execute``. Commands issued while the event loop runs one
iteration are written to Redis together as one pipeline (one write, one read), as
ioredis and Lettuce do: under load, many concurrent CheckTouches share a round trip,
and a lone call pays nothing extra (it is flushed at the end of its own iteration).
Order is kept: commands from one caller go out in the order they were issued.

Driver errors become ``StoreUnavailable`` here and nowhere else, counted once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.connection import SSLConnection

from guard import metrics, tracing
from guard.errors import StoreUnavailable
from guard.store import target
from guard.store.cluster import ClusterConnection
from guard.store.resp import RespConnection, RespConnectionError, RespRefused
from guard.store.sentinel import SentinelConnection
from guard.store.target import Node, Target, TlsFiles

T = TypeVar("T")


def _source(name: str) -> str:
    return resources.files("guard.store").joinpath(f"lua/{name}.lua").read_text(encoding="utf-8")


class Script:
    """A Lua script known by its SHA; loaded into Redis on first NOSCRIPT (after a Redis restart too)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _source(name)
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()


class _NamedSSLConnection(SSLConnection):
    """redis-py's TLS connection, checking the server's certificate against GUARD_REDIS_TLS_SERVER_NAME."""

    server_name = ""

    def _connection_arguments(self) -> Mapping[str, Any]:
        arguments = dict(super()._connection_arguments())
        arguments["server_hostname"] = self.server_name
        return arguments


def _named(server_name: str) -> type[SSLConnection]:
    return type("NamedSSLConnection", (_NamedSSLConnection,), {"server_name": server_name})


def redis_py_options(node: Node, files: TlsFiles, timeout_s: float) -> dict[str, Any]:
    """redis-py's options for what ``node`` says: credentials, db, TLS (the same files as the lean connection)."""
    options: dict[str, Any] = {"username": node.username, "password": node.password, "socket_timeout": timeout_s,
                               "socket_connect_timeout": timeout_s, "decode_responses": True}
    if node.tls is not None:
        options.update(ssl_ca_certs=str(files.ca) if files.ca else None,
                       ssl_certfile=str(files.client_cert) if files.client_cert else None,
                       ssl_keyfile=str(files.client_key) if files.client_key else None, ssl_check_hostname=True)
    return options


def redis_py_client(target: Target, timeout_s: float) -> Any:
    """The redis-py client for the desk's blocking stream reads and scans, reaching what the lean one reaches."""
    files = target.tls_files
    if target.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        first = target.nodes[0]
        client = RedisCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in target.nodes],
                              ssl=first.tls is not None, **redis_py_options(first, files, timeout_s))
        if files.server_name:  # RedisCluster takes no connection class of its own: every node's gets the name
            client.nodes_manager.connection_kwargs["connection_class"] = _named(files.server_name)
        return client
    if target.kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        primary = target.primary
        assert primary is not None
        sentinel_options = redis_py_options(target.nodes[0], files, timeout_s)
        data_options = redis_py_options(primary, files, timeout_s)
        if primary.tls is not None:
            sentinel_options["ssl"] = data_options["ssl"] = True
        sentinels = Sentinel([(n.host, n.port) for n in target.nodes],  # type: ignore[no-untyped-call]
                             sentinel_kwargs=sentinel_options, **data_options)
        return sentinels.master_for(target.service, db=primary.db, **data_options)
    node = target.nodes[0]
    options = redis_py_options(node, files, timeout_s)
    if node.tls is not None:
        options["connection_class"] = _named(files.server_name) if files.server_name else SSLConnection
    pool = aioredis.ConnectionPool(host=node.host, port=node.port, db=node.db, **options)
    return aioredis.Redis(connection_pool=pool, health_check_interval=10)


class Connection:
    target: Target | None = None  # what it reaches (set by ``to``)

    def __init__(self, client: Any, resp: RespConnection | ClusterConnection | SentinelConnection, *,
                 timeout_s: float = 1.0, max_pipeline: int = 128) -> None:
        self.client = client  # redis-py, for blocking stream reads and the tools that look at Redis directly
        self.resp = resp  # the lean pipelined connection every other command goes through
        self.timeout_s = timeout_s
        # A pipeline is written once this many commands wait, so Redis runs one chunk while the next is built.
        self.max_pipeline = max_pipeline
        self._scripts: dict[str, Script] = {}
        self._queue: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> Connection:
        """A connection to what ``url`` names (see ``guard.store.target``), with no TLS files of its own."""
        return cls.to(target.parse(url), timeout_s=timeout_s)

    @classmethod
    def to(cls, where: Target, *, timeout_s: float = 1.0) -> Connection:
        """One Redis, a Cluster, or the primary the sentinels name; the lean connection and redis-py alike."""
        lean: RespConnection | ClusterConnection | SentinelConnection
        if where.kind == "cluster":
            lean = ClusterConnection(where.nodes, timeout_s=timeout_s)
        elif where.kind == "sentinel":
            lean = SentinelConnection(where, timeout_s=timeout_s)
        else:
            lean = RespConnection(where.nodes[0], timeout_s=timeout_s)
        connection = cls(redis_py_client(where, timeout_s), lean, timeout_s=timeout_s)
        connection.target = where
        return connection

    async def close(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self.resp.close()
        await self.client.aclose()

    def script(self, name: str) -> Script:
        if name not in self._scripts:
            self._scripts[name] = Script(name)
        return self._scripts[name]

    # -- the one way in ----------------------------------------------------------------------

    async def execute(self, *args: Any, **options: Any) -> Any:
        """One command, written together with whatever else this loop iteration issued.

        ``options`` are redis-py's parsing options (``withscores=True`` for a ZRANGE ... WITHSCORES).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((args, options, future))
        if len(self._queue) >= self.max_pipeline:
            self._write_queue()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA a script by name; on NOSCRIPT (a fresh or restarted Redis) load it and run it again."""
        script = self.script(name)
        with tracing.client_span(f"redis {name}", **{"db.system": "redis", "db.operation": "EVALSHA"}) as span:
            try:
                return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
            except StoreUnavailable as exc:
                if not str(exc.__cause__).startswith("NOSCRIPT"):
                    tracing.failed(span, str(exc))
                    raise
            await self.execute("SCRIPT", "LOAD", script.source)
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def run_many(self, name: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """One script, many times, written as one batch; each reply, or a ``StoreUnavailable`` in its place.

        Unlike ``execute`` this makes no future per command: a batch of a thousand checks costs one.
        """
        script = self.script(name)
        commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
        with tracing.client_span(f"redis {name} x{len(commands)}", **{"db.system": "redis", "db.operation": "EVALSHA"}):
            replies = await self._send_now(commands)
        if any(isinstance(r, Exception) and str(r).startswith("NOSCRIPT") for r in replies):
            await self.execute("SCRIPT", "LOAD", script.source)
            again = [i for i, r in enumerate(replies) if isinstance(r, Exception) and str(r).startswith("NOSCRIPT")]
            for i, reply in zip(again, await self._send_now([commands[i] for i in again]), strict=True):
                replies[i] = reply
        out: list[Any] = []
        for reply in replies:
            if isinstance(reply, Exception):
                metrics.STORE_ERRORS.inc()
                error = StoreUnavailable(f"redis error: {reply}")
                error.__cause__ = reply
                out.append(error)
            else:
                out.append(reply)
        return out

    async def _send_now(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        try:
            return await self.resp.send(commands)
        except Exception as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreUnavailable(f"redis unreachable: {exc}") from exc

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several commands in one round trip, answered in order (errors raised as StoreUnavailable)."""
        return list(await asyncio.gather(*(self.execute(*c) for c in commands)))

    async def call(self, command: Callable[[], Awaitable[T]]) -> T:
        """A redis-py call (the desk's blocking stream reads and the like): its errors become StoreUnavailable."""
        try:
            return await command()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreUnavailable(f"redis unreachable: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreUnavailable(f"redis error: {exc}") from exc

    async def copies_made(self, key: str, *, aof: bool, timeout_ms: int) -> bool:
        """Whether the writes this connection made to ``key``'s node are durable as asked: on a replica (WAIT 1)
        or on the primary's disk (WAITAOF 1 0, Redis 7.2+). Sent on the connection the writes went through."""
        command = ("WAITAOF", 1, 0, timeout_ms) if aof else ("WAIT", 1, timeout_ms)
        try:
            if isinstance(self.resp, ClusterConnection):
                (reply,) = await self.resp.send_for_key(key, [command])
            else:
                (reply,) = await self.resp.send([command])
        except Exception as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreUnavailable(f"redis unreachable: {exc}") from exc
        if isinstance(reply, Exception):
            raise StoreUnavailable(f"redis error: {reply}")
        return int(reply[0]) >= 1 if aof else int(reply) >= 1

    async def ping(self) -> bool:
        try:
            return bool(await self.execute("PING"))
        except StoreUnavailable:
            return False

    # -- the pipeline writer -----------------------------------------------------------------

    def _flush(self) -> None:
        """End of the loop iteration that queued the first waiting command: write what waits."""
        self._flush_scheduled = False
        self._write_queue()

    def _write_queue(self) -> None:
        batch, self._queue = self._queue, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]) -> None:
        try:
            results = await self.resp.send([args for args, _, _ in batch])
        except Exception as exc:  # every waiting caller hears of it: a future is never left unanswered
            metrics.STORE_ERRORS.inc()
            error = StoreUnavailable(f"redis unreachable: {exc}")
            error.__cause__ = exc
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (args, options, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                if not str(result).startswith("NOSCRIPT"):
                    metrics.STORE_ERRORS.inc()
                error = StoreUnavailable(f"redis error: {result}")
                error.__cause__ = result
                future.set_exception(error)
            else:
                future.set_result(_shaped(str(args[0]).upper(), result, options))


def _shaped(command: str, reply: Any, options: dict[str, Any]) -> Any:
    """The few replies guard reads in another shape than RESP gives them."""
    if command == "HGETALL" and isinstance(reply, list):
        return dict(zip(reply[::2], reply[1::2], strict=True))
    if options.get("withscores") and isinstance(reply, list):
        return [(member, float(score)) for member, score in zip(reply[::2], reply[1::2], strict=True)]
    return reply


async def probe(where: Target, timeout_s: float = 2.0, durability: str = "local") -> str:
    """Reach the deployment once, before anything else starts: a configuration mistake (a wrong password or
    user, a certificate that does not verify, a sentinel service nobody watches, a durability this Redis
    cannot give) is a ``ValueError`` naming the setting; an unreachable Redis is not (its answer, '' when
    reached, is for the log: the fail modes answer until it comes)."""
    connection = Connection.to(where, timeout_s=timeout_s)
    try:
        answer, server, replication = await asyncio.wait_for(
            connection.resp.send([("PING",), ("INFO", "server"), ("INFO", "replication")]), timeout_s)
        if isinstance(answer, Exception):  # NOAUTH, NOPERM: Redis wants credentials the settings do not give
            raise RespRefused(f"redis refused PING: {answer}")
        if durability == "aof" and _version(str(server)) < (7, 2):
            raise ValueError("GUARD_REDIS_DURABILITY: aof waits with WAITAOF, which needs Redis 7.2 or later; this "
                             f"Redis is {'.'.join(map(str, _version(str(server))))} (use replica, or local with the "
                             "server's appendfsync always)")
        if durability == "replica" and _info(str(replication)).get("connected_slaves", "0") == "0":
            return ("GUARD_REDIS_DURABILITY=replica, but this Redis has no replica connected now: every touch "
                    "will answer its fail mode until one is")
    except RespRefused as exc:
        raise ValueError(f"{exc.setting}: {exc}") from None
    except (RespConnectionError, TimeoutError) as exc:
        return str(exc) or "no answer"
    finally:
        await connection.close()
    return ""


def _info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def _version(server_info: str) -> tuple[int, ...]:
    raw = _info(server_info).get("redis_version", "0")
    return tuple(int(p) for p in raw.split(".") if p.isascii() and p.isdigit())
