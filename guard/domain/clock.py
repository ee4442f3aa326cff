"""Time zones as the decision core and the Lua script both see them.

The Lua script in Redis has no time-zone database, so each zone is handed to it
as a table of UTC offset segments computed here from ``zoneinfo``; the pure core
uses the same table, and tests check the table against ``zoneinfo`` itself.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from guard.domain.types import DAY_MS, MINUTE_MS, QuietHours
from guard.validate import shown

Clock = Callable[[], int]
"""Returns now in epoch milliseconds; injected everywhere a window is computed."""


def system_clock() -> int:
    return time.time_ns() // 1_000_000


# A segment is (from_ms, offset_minutes): the offset holds from from_ms until the next segment.
Segments = tuple[tuple[int, int], ...]

_SEGMENT_YEARS_BACK = 2
_SEGMENT_YEARS_AHEAD = 12


def zone(name: str) -> ZoneInfo:
    """The named IANA zone; ValueError (naming it) when unknown."""
    if not name or len(name) > 64 or name.startswith("/") or ".." in name or not name.isascii():
        raise ValueError(f"not an IANA time zone: {shown(name)}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"not an IANA time zone: {shown(name)}") from exc


def _offset_minutes(tz: ZoneInfo, at_ms: int) -> int:
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone(tz)
    offset = moment.utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


@functools.lru_cache(maxsize=512)
def segments(name: str, around_year: int) -> Segments:
    """Offset segments of a zone from two years before to twelve after ``around_year``.

    Transitions are found day by day, then pinned to the minute by bisection.
    """
    tz = zone(name)
    start = int(datetime(around_year - _SEGMENT_YEARS_BACK, 1, 1, tzinfo=UTC).timestamp() * 1000)
    end = int(datetime(around_year + _SEGMENT_YEARS_AHEAD, 1, 1, tzinfo=UTC).timestamp() * 1000)
    out = [(start, _offset_minutes(tz, start))]
    step = DAY_MS // 4
    t = start
    while t < end:
        nxt = t + step
        if _offset_minutes(tz, nxt) != out[-1][1]:
            lo, hi = t, nxt
            while hi - lo > MINUTE_MS:
                mid = (lo + hi) // 2 // MINUTE_MS * MINUTE_MS
                if mid <= lo:
                    break
                if _offset_minutes(tz, mid) == out[-1][1]:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, _offset_minutes(tz, hi)))
        t = nxt
    return tuple(out)


def segments_for(name: str, at_ms: int) -> Segments:
    year = datetime.fromtimestamp(at_ms / 1000, tz=UTC).year
    return segments(name, year)


def offset_at(segs: Segments, at_ms: int) -> int:
    """Offset in minutes at an instant (the first segment's before the table, the last's after)."""
    current = segs[0][1]
    for start, offset in segs:
        if start > at_ms:
            break
        current = offset
    return current


def local_minute(segs: Segments, at_ms: int) -> int:
    local = at_ms + offset_at(segs, at_ms) * MINUTE_MS
    return (local // MINUTE_MS) % 1440


def in_quiet_hours(quiet: QuietHours, segs: Segments, at_ms: int) -> bool:
    if quiet.empty:
        return False
    m = local_minute(segs, at_ms)
    if quiet.start_minute < quiet.end_minute:
        return quiet.start_minute <= m < quiet.end_minute
    return m >= quiet.start_minute or m < quiet.end_minute


def quiet_hours_end(quiet: QuietHours, segs: Segments, at_ms: int) -> int:
    """The next instant whose local wall time is the quiet hours' end.

    Computed with the offset in force at ``at_ms``; when a clock change falls in
    between, the decision loop evaluates that instant again and moves on.
    """
    offset = offset_at(segs, at_ms) * MINUTE_MS
    local = at_ms + offset
    day = local - local % DAY_MS
    candidate = day + quiet.end_minute * MINUTE_MS
    if candidate <= local:
        candidate += DAY_MS
    return candidate - offset


def parse_hhmm(value: str) -> int:
    """``"HH:MM"`` → minutes after midnight; ValueError naming the value."""
    parts = value.split(":")
    # ASCII digits only: int() would also read full-width and other scripts' digits.
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"not a local time HH:MM: {shown(value)}")
    hours, minutes = int(parts[0]), int(parts[1])
    if hours > 23 or minutes > 59:
        raise ValueError(f"not a local time HH:MM: {shown(value)}")
    return hours * 60 + minutes


def format_hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
