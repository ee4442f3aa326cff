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
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from guard import metrics
from guard.errors import StoreUnavailable


def _source(name: str) -> str:
    return resources.files("guard.store").joinpath(f"lua/{name}.lua").read_text(encoding="utf-8")


class Script:
    """A Lua script known by its SHA; loaded into Redis on first NOSCRIPT (after a Redis restart too)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _source(name)
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()


class Connection:
    def __init__(self, client: aioredis.Redis, *, timeout_s: float = 1.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._scripts: dict[str, Script] = {}
        self._queue: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> Connection:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True,
            health_check_interval=10,
        )
        return cls(client, timeout_s=timeout_s)

    async def close(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
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
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA a script by name; on NOSCRIPT (a fresh or restarted Redis) load it and run it again."""
        script = self.script(name)
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except StoreUnavailable as exc:
            if not isinstance(exc.__cause__, redis.exceptions.NoScriptError):
                raise
        await self.execute("SCRIPT", "LOAD", script.source)
        return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several commands in one round trip, answered in order (errors raised as StoreUnavailable)."""
        return list(await asyncio.gather(*(self.execute(*c) for c in commands)))

    async def ping(self) -> bool:
        try:
            return bool(await self.execute("PING"))
        except StoreUnavailable:
            return False

    # -- the pipeline writer -----------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._queue = self._queue, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                results: list[Any] = [await self._one(batch[0][0], batch[0][1])]
            else:
                async with self.client.pipeline(transaction=False) as pipe:
                    for args, options, _ in batch:
                        pipe.execute_command(*args, **options)
                    results = await pipe.execute(raise_on_error=False)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            metrics.STORE_ERRORS.inc()
            error = StoreUnavailable(f"redis unreachable: {exc}")
            error.__cause__ = exc
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except Exception as exc:  # anything else is a failure of every command in the batch, never a lost future
            results = [exc] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                if not isinstance(result, redis.exceptions.NoScriptError):
                    metrics.STORE_ERRORS.inc()
                error = StoreUnavailable(f"redis error: {result}")
                error.__cause__ = result
                future.set_exception(error)
            else:
                future.set_result(result)

    async def _one(self, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        try:
            return await self.client.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except redis.exceptions.ResponseError as exc:
            return exc
