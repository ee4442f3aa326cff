"""The policy file: the shipped default, and one fixture per kind of mistake, each named with its line."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from importlib import resources

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from guard import policy
from guard.domain.types import Check, TouchClass

DEFAULT = resources.files("guard").joinpath("default_policy.yaml").read_text(encoding="utf-8")


def test_default_policy_encodes_the_playbook():
    p = policy.load(None)
    rules = {r.rule_id: r for r in p.rules}
    assert (rules["marketing_weekly"].limit, rules["marketing_weekly"].window_ms) == (3, 7 * 86_400_000)
    assert rules["sms_daily"].channels == {"sms"}
    assert rules["campaign_once_30d"].per == "campaign"
    assert set(p.channels) == {"sms", "email", "push", "wecom", "app"}
    assert set(p.categories) == {"promotion", "new_arrival", "content", "service", "survey"}
    assert (p.default_quiet.time_zone, p.default_quiet.start_minute, p.default_quiet.end_minute) == ("Asia/Shanghai", 1260, 480)
    assert not p.classes[TouchClass.MARKETING].fail_open and p.classes[TouchClass.TRANSACTIONAL].fail_open
    assert p.classes[TouchClass.TRANSACTIONAL].checks == {Check.STOPPED_CHANNEL}
    # An unsubscribe means marketing; an SMS STOP (keyword or carrier) every SMS; SMS and email closed before scopes
    # existed keep meaning every message, as the page then said.
    sms, email, push = p.channels["sms"], p.channels["email"], p.channels["push"]
    assert (sms.scope_for("list_unsubscribe"), sms.scope_for("keyword"), sms.scope_for("carrier")) == (
        "marketing", "all", "all")
    assert (email.scope_for("keyword"), email.scope_for("preference_center"), push.scope_for("keyword")) == (
        "marketing", "marketing", "marketing")
    assert (sms.scope_before, email.scope_before, push.scope_before) == ("all", "all", "marketing")
    assert (sms.stop_all, email.stop_all, push.stop_all) == (True, True, False)


def test_a_policy_from_before_scopes_keeps_its_meaning():
    """closed_by_law (before scopes): closing stopped every message, and a transactional class checked legal_channel;
    such a policy still loads and means the same."""
    scoped = ("  sms:\n    default_opt_in: true\n    opt_out_scope: {default: marketing, keyword: all, carrier: all}\n"
              "    stop_all: true\n    scope_before: all\n")
    old = DEFAULT.replace(scoped, "  sms:\n    default_opt_in: true\n    closed_by_law: true\n")
    old = old.replace("checks: [stopped_channel]", "checks: [legal_channel]")
    assert "closed_by_law" in old and "legal_channel" in old
    p = policy.parse(old)
    sms = p.channels["sms"]
    assert (sms.scope_for("user"), sms.scope_before, sms.stop_all) == ("all", "all", True)
    assert p.classes[TouchClass.TRANSACTIONAL].checks == {Check.STOPPED_CHANNEL}


# The line of the first cap's limit in the shipped policy (the shipped file's comments move it).
LIMIT_LINE = next(i for i, line in enumerate(DEFAULT.splitlines(), 1) if "limit: 3" in line)

BAD = {
    "unknown_top_key": (DEFAULT + "\nfrobnicate: 1\n", "frobnicate (line"),
    "zero_limit": (DEFAULT.replace("limit: 3", "limit: 0"), f"caps[0].limit (line {LIMIT_LINE})"),
    "unknown_scope": (DEFAULT.replace("keyword: all", "keyword: some"), "channels.sms.opt_out_scope.keyword"),
    "unknown_scope_before": (DEFAULT.replace("scope_before: all", "scope_before: never", 1), "channels.sms.scope_before"),
    "label_in_an_unknown_locale": (DEFAULT.replace("label: {en: Email, zh: 电子邮件}", "label: {en: Email, fr: Courriel}"),
                                   "channels.email.label"),
    "empty_label": (DEFAULT.replace("label: {en: Surveys, zh: 问卷调研}", "label: {en: '', zh: 问卷调研}"),
                    "categories.survey.label.en (line"),
    "bad_window": (DEFAULT.replace("window: 1d", "window: one day"), "caps[1].window (line"),
    "unknown_channel_in_rule": (DEFAULT.replace("channels: [sms]", "channels: [fax]"), "caps[1].channels[0] (line"),
    "bad_zone": (DEFAULT.replace("time_zone: Asia/Shanghai", "time_zone: Asia/Atlantis"), "quiet_hours.time_zone (line"),
    "bad_time": (DEFAULT.replace('start: "21:00"', 'start: "9pm"'), "quiet_hours (line"),
    "bad_fail_mode": (DEFAULT.replace("fail_mode: closed", "fail_mode: maybe"), "classes.marketing.fail_mode (line"),
    "unknown_check": (DEFAULT.replace("checks: [stopped_channel]", "checks: [vibes]"), "classes.transactional.checks[0]"),
    "duplicate_rule": (DEFAULT.replace("id: sms_daily", "id: marketing_weekly"), "caps[1].id (line"),
    "not_yaml": ("channels: [unclosed\n", "not valid YAML (line"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_mistake_names_its_key_and_line(name):
    text, expected = BAD[name]
    with pytest.raises(policy.PolicyError) as err:
        policy.parse(text)
    assert expected in str(err.value)


def test_display_names_come_from_the_policy_with_the_name_as_the_last_resort():
    pol = policy.parse(DEFAULT.replace("label: {en: Surveys, zh: 问卷调研}", "label: {en: Surveys}"))
    assert pol.label("channel", "sms", "zh") == "短信" and pol.label("category", "survey", "zh") == "Surveys"
    bare = policy.parse(DEFAULT.replace(", label: {en: WeChat Work, zh: 企业微信}", ""))
    assert bare.label("channel", "wecom", "en") == "wecom"


def test_policy_check_command_exits_non_zero_with_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD["zero_limit"][0], encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "guard", "policy", "check", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and f"caps[0].limit (line {LIMIT_LINE})" in out.stderr
    good = subprocess.run([sys.executable, "-m", "guard", "policy", "check", str(tmp_path / "none.yaml")],
                          capture_output=True, text=True)
    assert good.returncode == 1 and "cannot read policy file" in good.stderr


# -- generated policies --------------------------------------------------------------------------


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["7d", "0d", "30s", "1w", "21:00", "Asia/Shanghai", "user",
                                                            "marketing", "open", "caps", "sms", "-1d", "1.5h"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                       max_leaves=12)
_BASE = yaml.safe_load(DEFAULT)
_PATHS = ["channels", "channels.sms", "channels.sms.stop_all", "categories", "categories.promotion", "quiet_hours",
          "quiet_hours.start", "quiet_hours.time_zone", "classes", "classes.marketing", "classes.marketing.checks",
          "classes.marketing.fail_mode", "caps", "caps.0", "caps.0.limit", "caps.0.window", "caps.0.per", "caps.0.classes",
          "caps.1.channels", "caps.2.shadow", "replies", "replies.hold", "replies.negative_threshold",
          "replies.opt_out_keywords", "recovery", "recovery.sla", "recovery.max_replies_per_task",
          "store_unavailable_retry_after", "max_schedule_ahead", "surprise"]


def _set(doc: object, path: str, value: object) -> object:
    head, _, rest = path.partition(".")
    key: object = int(head) if head.isdigit() else head
    if isinstance(doc, list) and isinstance(key, int) and key < len(doc):
        doc[key] = _set(doc[key], rest, value) if rest else value
    elif isinstance(doc, dict):
        doc[key] = _set(doc.get(key), rest, value) if rest else value
    return doc


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES), min_size=1, max_size=3))
def test_a_mangled_policy_is_a_policy_error_or_a_policy(changes):
    """The shipped policy with random values at random keys: parse() returns a Policy or raises PolicyError, never else."""
    import copy

    doc = copy.deepcopy(_BASE)
    for path, value in changes:
        doc = _set(doc, path, value)
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    try:
        parsed = policy.parse(text)
    except policy.PolicyError as exc:
        assert str(exc)
        return
    assert set(parsed.classes) == set(TouchClass)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_policy_error_or_a_policy(text):
    """Arbitrary text as a policy file: a PolicyError that says where, never a crash."""
    with contextlib.suppress(policy.PolicyError):
        policy.parse(text)
