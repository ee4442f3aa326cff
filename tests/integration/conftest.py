"""Shared parts of the feedback-loop tests: the real bundled model, switchable to fail, behind the batcher."""

from __future__ import annotations

import pytest

from guard import policy
from guard.sentiment.batcher import MicroBatcher
from guard.sentiment.model import BUNDLED_MODEL, SentimentModel
from guard.usecases.tenants import wire
from tests.helpers import FakeClock, Switchable, ms

NOON = ms(2026, 11, 23, 12, 0, "Asia/Shanghai")


@pytest.fixture(scope="session")
def model() -> SentimentModel:
    return SentimentModel(BUNDLED_MODEL, threads=2)


@pytest.fixture
async def wired(store, model):
    """Every use case of one tenant, as ``guard serve`` wires them, on a clock the test moves."""
    clock = FakeClock(NOON)
    scorer = Switchable(model)
    batcher = MicroBatcher(scorer, max_batch=16, max_wait_s=0.002)
    parts = wire(policy.load(None), store, batcher.score, now=clock)
    yield parts, scorer, clock
    await batcher.close()


@pytest.fixture
def loop_parts(wired):
    parts, scorer, clock = wired
    return parts.service, parts.replies, scorer, clock


