"""The offset tables handed to Lua agree with zoneinfo, minute by minute around clock changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from guard.domain import clock
from tests.helpers import ms


@pytest.mark.parametrize("zone,day", [("America/New_York", (2026, 3, 8)), ("America/New_York", (2026, 11, 1)),
                                      ("Europe/Berlin", (2026, 3, 29)), ("Europe/Berlin", (2026, 10, 25)),
                                      ("Asia/Shanghai", (2026, 11, 23)), ("Australia/Lord_Howe", (2026, 10, 4))])
def test_segments_match_zoneinfo_through_a_change_day(zone, day):
    tz = ZoneInfo(zone)
    start = ms(day[0], day[1], day[2], tz="UTC") - 12 * 3_600_000
    for step in range(0, 48 * 60, 7):
        at = start + step * 60_000
        expected = datetime.fromtimestamp(at / 1000, UTC).astimezone(tz)
        segs = clock.segments_for(zone, at)
        local = (expected.hour * 60 + expected.minute)
        assert clock.local_minute(segs, at) == local, (zone, expected)


def test_bad_zone_and_times_are_rejected_with_the_value():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        clock.zone("Mars/Olympus")
    with pytest.raises(ValueError, match="25:00"):
        clock.parse_hhmm("25:00")
    assert clock.parse_hhmm("08:30") == 510 and clock.format_hhmm(510) == "08:30"


def test_segments_are_cached_per_zone_and_year():
    a = clock.segments_for("Europe/Berlin", ms(2026, 1, 1))
    assert a is clock.segments_for("Europe/Berlin", ms(2026, 6, 1))
    assert timedelta(minutes=a[0][1]) == timedelta(hours=1)
