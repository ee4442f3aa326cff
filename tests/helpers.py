"""Small builders shared by the tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
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


def policy_file(directory: Path, **changes: Any) -> Path:
    """The shipped policy with top-level sections changed (merged one level deep), written to a file.

    Tests say what differs (quiet hours off, a quick redelivery) instead of editing YAML text.
    """
    from importlib import resources

    import yaml

    data = yaml.safe_load(resources.files("guard").joinpath("default_policy.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


QUIET_HOURS_OFF = {"time_zone": "UTC", "start": "00:00", "end": "00:00"}
