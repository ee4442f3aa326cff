"""A lean, pipelined Redis connection for the hot path: RESP written by hand, read by hiredis.

redis-py spends tens of microseconds of Python per command (packing each argument, a pooled
connection per call, response callbacks). guard's hot path needs none of that: it sends a
few command shapes, many at once. This connection writes every batch it is given as one
``write`` and resolves one future per reply, in order, as hiredis parses them. One connection
carries all of a process's non-blocking commands (Redis answers a connection in order), and
it reconnects on the next batch after any failure. Blocking commands (XREADGROUP ... BLOCK)
never come here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis

from guard.store.target import Node


class RespError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``); the message is Redis's."""


class RespConnectionError(ConnectionError):
    """The connection failed, closed, or did not answer in time; every command on it failed too."""


class RespRefused(RespConnectionError):
    """Redis answered but will not have us: a wrong password or user, a TLS certificate that does not verify.
    A configuration mistake, not an outage: ``guard serve`` stops on it at start, naming ``setting``."""

    def __init__(self, message: str, setting: str = "GUARD_REDIS_URL") -> None:
        super().__init__(message)
        self.setting = setting


def pack(args: Sequence[Any]) -> bytes:
    """One command as RESP (an array of bulk strings), packed by hiredis in C."""
    return bytes(hiredis.pack_command(tuple(args)))


class _Batch:
    """Replies of one written batch, gathered in order; one future wakes its caller when all have come."""

    __slots__ = ("future", "replies", "size")

    def __init__(self, future: asyncio.Future[list[Any]], size: int) -> None:
        self.future = future
        self.replies: list[Any] = []
        self.size = size


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace", replyError=RespError)
        self.waiting: deque[_Batch] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not self.waiting:  # a reply nobody asked for: the stream is out of step, start afresh
                self.fail(RespConnectionError("redis sent a reply nobody was waiting for"))
                return
            batch = self.waiting[0]
            batch.replies.append(reply)
            if len(batch.replies) == batch.size:
                self.waiting.popleft()
                if not batch.future.done():
                    batch.future.set_result(batch.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if isinstance(exc, ssl.SSLError):  # TLS 1.3 says "certificate required" after the handshake, here
            setting = "GUARD_REDIS_CLIENT_CERT" if "CERTIFICATE_REQUIRED" in str(exc) else "GUARD_REDIS_CA"
            self.fail(RespRefused(f"redis ended TLS: {exc}", setting))
            return
        self.fail(RespConnectionError(f"redis closed the connection: {exc or 'end of stream'}"))

    def expire(self, batch: _Batch, timeout_s: float) -> None:
        if not batch.future.done():  # replies may still come: a connection out of step with its callers is dropped
            self.fail(RespConnectionError(f"redis did not answer within {timeout_s}s"))

    def fail(self, error: Exception) -> None:
        self.closed = True
        while self.waiting:
            batch = self.waiting.popleft()
            if not batch.future.done():
                batch.future.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class RespConnection:
    """One pipelined connection; ``send`` writes a batch and returns its replies (or exceptions), in order."""

    def __init__(self, node: Node, *, timeout_s: float, credentials_setting: str = "GUARD_REDIS_URL") -> None:
        self.node = node
        self.credentials_setting = credentials_setting  # where its user and password were given
        self.timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def _ready(self) -> _Protocol:
        if self._protocol is not None and not self._protocol.closed:
            return self._protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and not self._protocol.closed:
                return self._protocol
            loop = asyncio.get_running_loop()
            node = self.node
            try:
                if node.tls is not None:
                    opening = loop.create_connection(_Protocol, node.host, node.port, ssl=node.tls,
                                                     server_hostname=node.server_name or node.host)
                else:
                    opening = loop.create_connection(_Protocol, node.host, node.port)
                _, protocol = await asyncio.wait_for(opening, self.timeout_s)
            except ssl.SSLError as exc:
                raise RespRefused(f"TLS with {node.name} failed: {exc}", "GUARD_REDIS_CA") from exc
            except (OSError, TimeoutError) as exc:
                raise RespConnectionError(f"cannot connect to {node.name}: {exc}") from exc
            hello: list[tuple[Any, ...]] = []
            if node.password is not None:
                user = (node.username,) if node.username else ()
                hello.append(("AUTH", *user, node.password))
            if node.db:
                hello.append(("SELECT", node.db))
            self._protocol = protocol
            if hello:
                for reply in await self._exchange(protocol, hello):
                    if isinstance(reply, Exception):
                        protocol.fail(RespConnectionError(f"redis refused the connection: {reply}"))
                        raise RespRefused(f"{node.name} refused the connection: {reply}", self.credentials_setting)
            return protocol

    async def send(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Replies in order; an error reply comes back as a ``RespError`` in its place, not raised.

        A connection that fails, closes or does not answer within the timeout fails every batch on it
        with ``RespConnectionError`` and is replaced on the next call.
        """
        return await self._exchange(await self._ready(), commands)

    async def _exchange(self, protocol: _Protocol, commands: Sequence[Sequence[Any]]) -> list[Any]:
        if protocol.transport is None or protocol.closed:
            raise RespConnectionError("the connection to redis is closed")
        loop = asyncio.get_running_loop()
        batch = _Batch(loop.create_future(), len(commands))
        protocol.waiting.append(batch)
        protocol.transport.write(b"".join([pack(c) for c in commands]))
        timer = loop.call_later(self.timeout_s, protocol.expire, batch, self.timeout_s)
        try:
            return await batch.future
        finally:
            timer.cancel()

    async def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.sleep(0)
        self._protocol = None
