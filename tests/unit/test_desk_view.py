"""The desk's small pure helpers: the SLA text, the chart's points, the agent's name."""

from __future__ import annotations

from guard.access.keys import Grant
from guard.web import i18n
from guard.web.desk import due_text, spark
from guard.web.live import sse

EN = i18n.words("en")


def test_the_sla_says_what_is_left_or_how_long_it_is_overdue():
    assert due_text(10_000_000, 10_000_000 - 90 * 60_000, EN) == ("1h 30m left", False)
    assert due_text(10_000_000, 10_000_000 + 5 * 60_000, EN) == ("overdue by 0h 05m", True)
    assert due_text(0, 26 * 3_600_000, i18n.words("zh"))[0] == "已超时 26小时00分"
    assert due_text(90 * 60_000, 0, i18n.words("zh"))[0] == "剩余 1小时30分"


def test_consent_changes_read_as_words_not_json():
    from guard.web.desk import change_text

    en, zh = i18n.words("en"), i18n.words("zh")
    assert (change_text("false", en), change_text("true", zh), change_text("", en)) == ("off", "开启", "—")
    assert change_text('{"tz": "Asia/Shanghai", "start": 1320, "end": 450}', en) == "22:00–07:30 Asia/Shanghai"
    assert change_text("3", en) == "3"


def test_the_chart_spans_its_box_and_clamps_the_index():
    points = [tuple(map(float, p.split(","))) for p in spark([0, 50, 100, 150, -5, 0, 0]).split()]
    assert len(points) == 7 and points[0][0] == 0 and points[-1][0] == 140
    assert points[0][1] == 30 and points[2][1] == 2 and points[3][1] == 2 and points[4][1] == 30
    assert spark([]) == ""


def agent_name(name: str, key_id: str) -> str:
    return Grant(key_id, "default", frozenset(), name).agent


def test_an_agent_is_named_by_the_keys_name_made_an_id():
    assert agent_name("alice", "k1") == "alice"
    assert agent_name("bootstrap admin", "k1") == "bootstrap-admin"
    assert agent_name("  ", "k1") == "k1"
    assert agent_name("{x}", "k1") == "x"


def test_an_event_s_data_keeps_every_line_break_inside_the_event():
    """CR, LF and CRLF each end a line of an event stream: each starts a new data line, never a field."""
    assert sse("task", "a\rid: 7\r\nb\nretry: 1\r\r") == (
        "event: task\ndata: a\ndata: id: 7\ndata: b\ndata: retry: 1\ndata: \ndata: \n\n")
