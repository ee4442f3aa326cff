"""The micro-batcher: batches form under concurrency, failures stay in their batch, overload fails fast."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from guard.sentiment.batcher import MicroBatcher, Overloaded, ScoringFailed
from guard.sentiment.model import BUNDLED_MODEL, NEGATIVE, Score, SentimentModel


class RecordingScorer:
    """A stand-in for the model that notes each batch and the thread it ran on."""

    def __init__(self, fail_on: str | None = None, delay_s: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on
        self.delay_s = delay_s

    def __call__(self, texts: Sequence[str]) -> list[Score]:
        self.batches.append(list(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("model exploded")
        return [Score(NEGATIVE, float(len(t)) / 100) for t in texts]


async def test_concurrent_callers_share_batches_and_get_their_own_results():
    scorer = RecordingScorer(delay_s=0.01)
    batcher = MicroBatcher(scorer, max_batch=16, max_wait_s=0.02)
    texts = [f"reply {i:03d}" + "x" * i for i in range(64)]
    results = await asyncio.gather(*(batcher.score([t]) for t in texts))
    assert [r[0].negative for r in results] == [len(t) / 100 for t in texts]
    assert len(scorer.batches) < 64 and max(len(b) for b in scorer.batches) <= 16
    assert scorer.threads and not any(name == threading.main_thread().name for name in scorer.threads)
    await batcher.close()


async def test_a_failing_batch_fails_only_its_own_callers():
    scorer = RecordingScorer(fail_on="boom", delay_s=0.01)
    batcher = MicroBatcher(scorer, max_batch=4, max_wait_s=0.0)
    first = asyncio.create_task(batcher.score(["boom"]))
    await asyncio.sleep(0.002)
    others = [asyncio.create_task(batcher.score([f"fine {i}"])) for i in range(6)]
    with pytest.raises(ScoringFailed):
        await first
    done = await asyncio.gather(*others, return_exceptions=True)
    failed_batches = [b for b in scorer.batches if "boom" in b]
    failed_together = {t for b in failed_batches for t in b}
    for i, result in enumerate(done):
        if f"fine {i}" in failed_together:
            assert isinstance(result, ScoringFailed)
        else:
            assert isinstance(result, list) and result[0].label == NEGATIVE
    assert any(isinstance(r, list) for r in done)
    await batcher.close()


async def test_overload_fails_fast():
    scorer = RecordingScorer(delay_s=0.2)
    batcher = MicroBatcher(scorer, max_batch=2, max_wait_s=0.0, max_in_flight=3)
    slow = asyncio.create_task(batcher.score(["a", "b", "c"]))
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(Overloaded):
        await batcher.score(["d"])
    assert time.perf_counter() - started < 0.1  # failed at once, not after the slow batch
    assert len(await slow) == 3
    await batcher.close()


async def test_real_model_behind_the_batcher():
    model = SentimentModel(BUNDLED_MODEL, threads=2)
    batcher = MicroBatcher(model.score, max_batch=8, max_wait_s=0.005)
    replies = ["别再发了，烦死了", "Stop spamming me", "收到", "Thanks!"] * 4
    results = await asyncio.gather(*(batcher.score([r]) for r in replies))
    labels = [r[0].label for r in results]
    assert labels[0] == NEGATIVE and labels[1] == NEGATIVE and labels[2] != NEGATIVE
    await batcher.close()
