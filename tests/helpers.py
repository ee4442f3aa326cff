"""Small builders shared by the tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from guard.domain.types import Touch, TouchClass


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


class FakeClock:
    """An injected clock: tests move time explicitly."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, delta_ms: int) -> None:
        self.now_ms += delta_ms


def touch(user: str = "u1", channel: str = "push", category: str = "promotion", campaign: str = "",
          touch_id: str = "t1", touch_class: TouchClass = TouchClass.MARKETING, dry_run: bool = False,
          at_ms: int = 0) -> Touch:
    return Touch(user, channel, category, campaign, touch_id, touch_class, dry_run, at_ms)
