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
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from guard import metrics
from guard.errors import StoreUnavailable
from guard.store.cluster import ClusterConnection
from guard.store.resp import Address, RespConnection

T = TypeVar("T")


def _source(name: str) -> str:
    return resources.files("guard.store").joinpath(f"lua/{name}.lua").read_text(encoding="utf-8")


class Script:
    """A Lua script known by its SHA; loaded into Redis on first NOSCRIPT (after a Redis restart too)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _source(name)
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()


def cluster_seeds(url: str) -> list[Address]:
    """The nodes named by ``redis+cluster://[user:password@]host:port[,host:port...]``."""
    rest = url.removeprefix("redis+cluster://").split("/", 1)[0]
    credentials, _, hosts = rest.rpartition("@")
    seeds = [Address.from_url(f"redis://{credentials + '@' if credentials else ''}{h}") for h in hosts.split(",") if h]
    if not seeds:
        raise ValueError("GUARD_REDIS_URL: redis+cluster://host:port[,host:port...] names no node")
    return seeds


class Connection:
    def __init__(self, client: Any, resp: RespConnection | ClusterConnection, *, timeout_s: float = 1.0,
                 max_pipeline: int = 128) -> None:
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
        """``redis://host:port/db`` for one Redis; ``redis+cluster://host:port[,host:port...]`` for a cluster
        (any of its nodes; the rest are found from them)."""
        if url.startswith("redis+cluster://"):
            seeds = cluster_seeds(url)
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            cluster_client = RedisCluster(
                startup_nodes=[ClusterNode(a.host, a.port) for a in seeds], socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s, decode_responses=True, password=seeds[0].password,
                username=seeds[0].username)
            return cls(cluster_client, ClusterConnection(seeds, timeout_s=timeout_s), timeout_s=timeout_s)
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True,
            health_check_interval=10,
        )
        return cls(client, RespConnection(Address.from_url(url), timeout_s=timeout_s), timeout_s=timeout_s)

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
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except StoreUnavailable as exc:
            if not str(exc.__cause__).startswith("NOSCRIPT"):
                raise
        await self.execute("SCRIPT", "LOAD", script.source)
        return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def run_many(self, name: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """One script, many times, written as one batch; each reply, or a ``StoreUnavailable`` in its place.

        Unlike ``execute`` this makes no future per command: a batch of a thousand checks costs one.
        """
        script = self.script(name)
        commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
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
