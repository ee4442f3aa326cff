"""Scoring shared by every worker: one process holds the model, workers send it texts over a Unix socket.

With ``guard serve --workers N`` the model is loaded once, in a scoring process, not N times: the
weights and torch's own footprint are paid once, and replies from all workers share its batches
(more company per batch, not less). Frames are a 4-byte big-endian length and an orjson document:
``{"id", "texts"}`` one way, ``{"id", "scores": [[label, negative], ...]}`` or ``{"id", "error"}``
back. A worker whose scorer is gone gets an exception, which the feedback loop already treats as
a model outage: the reply is kept and scored later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from guard import logs
from guard.sentiment.model import Score

log = logs.get("guard.sentiment.remote")

_HEADER = struct.Struct(">I")
MAX_FRAME = 16 << 20


class ScorerUnavailable(RuntimeError):
    """The scoring process could not be reached or did not answer."""


async def _read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"a scoring frame of {size} bytes is over the limit")
    data: dict[str, Any] = orjson.loads(await reader.readexactly(size))
    return data


def _frame(document: dict[str, Any]) -> bytes:
    body = orjson.dumps(document)
    return _HEADER.pack(len(body)) + body


class ScoringServer:
    """Serves ``score`` (the batcher's) to every worker that connects to ``path``."""

    def __init__(self, score: Callable[[Sequence[str]], Awaitable[Sequence[Score]]], path: Path) -> None:
        self.score = score
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        self.path.chmod(0o600)
        log.info("scoring_server_listening", socket=str(self.path))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = asyncio.Lock()
        tasks: set[asyncio.Task[None]] = set()

        async def answer(request: dict[str, Any]) -> None:
            try:
                scores = await self.score([str(t) for t in request.get("texts", [])])
                reply: dict[str, Any] = {"id": request.get("id"), "scores": [[s.label, s.negative] for s in scores]}
            except Exception as exc:  # the worker hears of the failure; the reply it scores is kept
                reply = {"id": request.get("id"), "error": str(exc) or type(exc).__name__}
            async with lock:
                writer.write(_frame(reply))
                await writer.drain()

        try:
            while True:
                request = await _read_frame(reader)
                task = asyncio.create_task(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.CancelledError):
            pass  # the worker went away, or this server is closing: either way this connection is done
        finally:
            for task in tasks:
                task.cancel()
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class RemoteScorer:
    """The worker's side: ``await scorer.score(texts)``, as the in-process batcher is awaited."""

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[list[Score]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connect_lock: asyncio.Lock | None = None

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError as exc:
                raise ScorerUnavailable(f"the scoring process is not reachable at {self.path}: {exc}") from exc
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader))
            return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                reply = await _read_frame(reader)
                future = self._waiting.pop(int(reply.get("id", 0)), None)
                if future is None or future.done():
                    continue
                if "error" in reply:
                    future.set_exception(ScorerUnavailable(f"the scoring process failed: {reply['error']}"))
                else:
                    future.set_result([Score(str(label), float(neg)) for label, neg in reply["scores"]])
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self._fail(ScorerUnavailable(f"the scoring process went away: {exc}"))

    def _fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(error)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def score(self, texts: Sequence[str]) -> list[Score]:
        if not texts:
            return []
        writer = await self._connected()
        request_id = next(self._ids)
        future: asyncio.Future[list[Score]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        writer.write(_frame({"id": request_id, "texts": list(texts)}))
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        finally:
            self._waiting.pop(request_id, None)

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        self._fail(ScorerUnavailable("closed"))
