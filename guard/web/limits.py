"""What every HTTP request is held to, whatever route it reaches: a body limit, a body deadline, a header deadline.

The body limit counts the bytes actually received, so a chunked body (no Content-Length) is
refused as soon as it passes the limit, never parsed whole first; a declared length past it is
refused before a byte is read. The body must arrive within a deadline from the request's start,
so a client trickling a byte every few seconds cannot hold a connection and a task for ever. The
request line and headers have their own deadline, enforced in the HTTP protocol itself (the
application never sees a request whose headers did not finish). Every refusal closes the
connection: what the client still had to send is never read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from guard import logs

log = logs.get("guard.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """More body bytes arrived (or were declared) than the route takes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class BodyTooSlow(Exception):
    """The body did not arrive within the deadline."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the request body did not arrive within {timeout_s:g}s")
        self.timeout_s = timeout_s


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None  # h11 refuses a malformed length before we see it
    return None


class BodyLimits:
    """ASGI middleware: the body's bytes counted as they arrive, against ``limit_for(path)``, within a deadline.

    The refusals are raised from ``receive``, inside the application, so its exception handlers
    answer them (413, 408) like any other failure; nothing stored changes, since no handler gets a
    body it could act on.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int], body_timeout_s: float) -> None:
        self.app = app
        self.limit_for = limit_for
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _declared_length(scope)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        received = 0
        done = declared == 0 or (declared is None and not _chunked(scope))  # HTTP/1.1: no length, no chunks: no body

        async def bounded() -> Message:
            nonlocal received, done
            if done:  # the body is in: later reads only wait for a disconnect (a live stream), unbounded
                return await receive()
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise BodyTooSlow(self.body_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        await self.app(scope, bounded, send)


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


def header_timeout_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with a deadline for a request's line and headers.

    The clock starts when a connection opens or the first byte of a next request arrives, and
    stops when the headers are complete; a connection still short of them is answered 408 and
    closed. (uvicorn's own keep-alive timeout covers an idle connection, not a slow one.)
    """

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                if self._header_timer is None:
                    self._arm()  # a next request has begun on a kept-alive connection
            elif self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(timeout_s, self._headers_too_slow)

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            log.info("http_header_timeout", timeout_s=timeout_s)
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    return HeaderTimeoutProtocol
