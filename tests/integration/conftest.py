"""Shared parts of the feedback-loop tests: the real bundled model, switchable to fail, behind the batcher."""

from __future__ import annotations

import pytest

from guard import policy
from guard.sentiment.batcher import MicroBatcher
from guard.sentiment.model import BUNDLED_MODEL, SentimentModel
from guard.usecases.tenants import wire
from tests.helpers import FakeClock, Switchable, ms, policy_file

NOON = ms(2026, 11, 23, 12, 0, "Asia/Shanghai")


@pytest.fixture(scope="session")
def model() -> SentimentModel:
    return SentimentModel(BUNDLED_MODEL, threads=2)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "policy(**sections): the shipped policy with these sections changed, for `wired`")


@pytest.fixture
async def wired(store, model, request, tmp_path):
    """Every use case of one tenant, as ``guard serve`` wires them, on a clock the test moves; the shipped policy,
    or that policy with the sections a ``policy`` mark names changed."""
    clock = FakeClock(NOON)
    scorer = Switchable(model)
    batcher = MicroBatcher(scorer, max_batch=16, max_wait_s=0.002)
    mark = request.node.get_closest_marker("policy")
    pol = policy.load(policy_file(tmp_path, **mark.kwargs)) if mark else policy.load(None)
    parts = wire(pol, store, batcher.score, now=clock)
    yield parts, scorer, clock
    await batcher.close()


@pytest.fixture
def loop_parts(wired):
    parts, scorer, clock = wired
    return parts.service, parts.replies, scorer, clock


