"""The desk's live queue: server-sent events, one reader of a tenant's desk stream per process, and the caps.

However many agents keep the queue open, a process reads each tenant's desk stream once and hands
every new task to every open stream (so 50 open queues cost Redis one client, not 50, and the
serving loop one poll, not 50). Streams are capped per desk session and per key; past a cap the
answer is 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Awaitable, Callable

from guard import logs
from guard.errors import StoreUnavailable
from guard.usecases.desk import RecoveryTask

log = logs.get("guard.web.live")

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
QUEUE_DEPTH = 64  # batches a slow stream may fall behind before its oldest are dropped (the page reloads them)


def sse(event: str, data: str) -> str:
    """One server-sent event. Every line break of ``data`` (CR, LF or CRLF: the specification ends a line at
    each) starts a new ``data:`` line, so nothing in it can end the event or begin a field of its own."""
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data)) + "\n"


Batch = list[RecoveryTask]


class TaskFeed:
    """One tenant's new open tasks, read from Redis by one loop while anybody listens, fanned out to listeners."""

    def __init__(self, start: Callable[[], Awaitable[str]], read: Callable[[str], Awaitable[tuple[str, Batch]]]) -> None:
        self._start = start
        self._read = read
        self._listeners: set[asyncio.Queue[Batch]] = set()
        self._reader: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def listen(self) -> asyncio.Queue[Batch]:
        queue: asyncio.Queue[Batch] = asyncio.Queue(QUEUE_DEPTH)
        self._listeners.add(queue)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._run())
        return queue

    def leave(self, queue: asyncio.Queue[Batch]) -> None:
        self._listeners.discard(queue)

    async def _run(self) -> None:
        after = ""
        outage = logs.Condition(log, "desk_feed_store_unavailable", "warning")
        while self._listeners:
            try:
                after = after or await self._start()
                after, tasks = await self._read(after)
                outage.ended()
            except StoreUnavailable as exc:
                outage.met(error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if not tasks:
                continue
            for queue in list(self._listeners):
                if queue.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(tasks)

    async def close(self) -> None:
        self._listeners.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class StreamCaps:
    """Open live streams counted per desk session and per key, in this process."""

    def __init__(self, per_session: int, per_key: int) -> None:
        self.per_session = per_session
        self.per_key = per_key
        self._sessions: Counter[str] = Counter()
        self._keys: Counter[str] = Counter()

    def take(self, session_id: str, key_id: str) -> bool:
        """Count one more stream; False (nothing counted) when either cap is reached."""
        if self._sessions[session_id] >= self.per_session or self._keys[key_id] >= self.per_key:
            return False
        self._sessions[session_id] += 1
        self._keys[key_id] += 1
        return True

    def give_back(self, session_id: str, key_id: str) -> None:
        self._sessions[session_id] -= 1
        self._keys[key_id] -= 1
        self._sessions += Counter()  # drop the zeros
        self._keys += Counter()
