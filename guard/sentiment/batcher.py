"""Micro-batching: concurrent callers' texts become one model call, off the event loop.

Each request carries its own future; the worker wakes on arrival, waits at most
``max_wait_s`` for company, cuts a batch of at most ``max_batch`` texts, runs it
on a single worker thread, and hands every caller its own slice. A bound on
texts in flight makes excess calls fail fast (``Overloaded``) instead of queueing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from guard import logs
from guard.sentiment.model import Score

log = logs.get("guard.sentiment.batcher")


class Overloaded(RuntimeError):
    """More texts are in flight than the batcher admits."""


class ScoringFailed(RuntimeError):
    """The model raised while scoring the batch this call was part of."""


@dataclass
class _Request:
    texts: Sequence[str]
    future: asyncio.Future[list[Score]]
    results: list[Score] = field(default_factory=list)


class MicroBatcher:
    def __init__(self, score: Callable[[Sequence[str]], list[Score]], *, max_batch: int = 32,
                 max_wait_s: float = 0.005, max_in_flight: int = 1024) -> None:
        self._score = score
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_in_flight = max_in_flight
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard-sentiment")
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches run so far (for tests and metrics)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sentiment-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._pool.shutdown(wait=True)

    async def score(self, texts: Sequence[str]) -> list[Score]:
        if not texts:
            return []
        if self._in_flight + len(texts) > self.max_in_flight:
            raise Overloaded(f"{self._in_flight} texts are being scored; the limit is {self.max_in_flight}")
        self.start()
        self._in_flight += len(texts)
        request = _Request(list(texts), asyncio.get_running_loop().create_future())
        await self._queue.put(request)
        try:
            return await request.future
        finally:
            self._in_flight -= len(texts)

    async def _gather(self) -> list[_Request]:
        first = await self._queue.get()
        batch, size = [first], len(first.texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while size < self.max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 and self._queue.empty():
                break
            try:
                nxt = self._queue.get_nowait() if self._queue.qsize() else await asyncio.wait_for(
                    self._queue.get(), max(remaining, 0))
            except (TimeoutError, asyncio.QueueEmpty):
                break
            batch.append(nxt)
            size += len(nxt.texts)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            live = [r for r in batch if not r.future.done()]
            texts = [t for r in live for t in r.texts]
            if not texts:
                continue
            self.batches += 1
            try:
                scores = await loop.run_in_executor(self._pool, self._score, texts)
            except Exception as exc:
                log.warning("sentiment_batch_failed", error=str(exc), texts=len(texts))
                for r in live:
                    if not r.future.done():
                        r.future.set_exception(ScoringFailed(str(exc)))
                continue
            offset = 0
            for r in live:
                part = scores[offset : offset + len(r.texts)]
                offset += len(r.texts)
                if not r.future.done():
                    r.future.set_result(part)
