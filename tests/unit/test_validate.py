"""The shared input rules: ids, texts, and how much of a caller's value an error may echo."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard.errors import InvalidArgument
from guard.validate import ECHO_CHARS, check_id, check_name, check_text, shown, timestamp_ms


@pytest.mark.parametrize("bad", ["a b", "a\tb", "a\x00b", "a\x9bb", "a\u200bb", "a\u2028b", "{a}", "x" * 129, "a\u3000b"])
def test_ids_refuse_white_space_controls_braces_and_length(bad):
    with pytest.raises(InvalidArgument) as err:
        check_id(bad, "user_id")
    assert err.value.field == "user_id"


@pytest.mark.parametrize("good", ["u1", "用户-42", "a:b@c.d", "x" * 128, "é"])
def test_ids_accept_printable_words(good):
    assert check_id(good, "user_id") == good


def test_required_and_optional_ids():
    with pytest.raises(InvalidArgument, match="is required"):
        check_id("", "touch_id")
    assert check_id("", "campaign_id", required=False) == ""


def test_texts_and_names():
    with pytest.raises(InvalidArgument, match="is required"):
        check_text(" \n", "text", required=True)
    with pytest.raises(InvalidArgument, match="longer than 2000"):
        check_text("x" * 2001, "text")
    assert check_name("Amy Chen", "actor") == "Amy Chen"
    with pytest.raises(InvalidArgument):
        check_name("a\x07", "actor")


@given(st.text(max_size=5000))
def test_an_echo_is_short_whatever_the_value(value):
    """No error message quotes more than ECHO_CHARS characters of what a caller sent."""
    assert len(shown(value)) <= 4 * ECHO_CHARS + 40


def test_timestamps_outside_protobufs_range_name_the_field():
    assert timestamp_ms(1, 5_000_000, "send_at") == 1005
    for seconds, nanos in [(-1, 0), (253_402_300_800, 0), (0, 10**9), (0, -1)]:
        with pytest.raises(InvalidArgument) as err:
            timestamp_ms(seconds, nanos, "send_at")
        assert err.value.field == "send_at"


def test_the_cli_says_waits_and_times_as_people_read_them():
    from datetime import UTC, datetime

    from guard.cli import check_text, duration_text

    assert duration_text(35731.463) == "9h 55m" and duration_text(45) == "45s" and duration_text(2 * 86400 + 3 * 3600) == "2d 3h"
    assert duration_text(0) == "0s" and duration_text(60) == "1m"
    text = check_text({"decision": "DEFER", "reasons": ["QUIET_HOURS"], "retry_after": "35731.463s",
                       "evaluated_at": "2026-12-01T14:00:00Z",
                       "caps": [{"rule_id": "marketing_weekly", "limit": 3, "used": 1, "window": "604800s"}],
                       "tier": "active", "recorded": False}, datetime(2030, 1, 1, tzinfo=UTC))
    assert text.startswith("DEFER: QUIET_HOURS\n") and "in 9h 55m" in text  # from the moment decided, not now
    assert "23:55" in text
    assert "cap marketing_weekly: 1 of 3 in 7d" in text and text.endswith("\n")
