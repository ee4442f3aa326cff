"""The policy file: the shipped default, and one fixture per kind of mistake, each named with its line."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

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
    assert p.classes[TouchClass.TRANSACTIONAL].checks == {Check.LEGAL_CHANNEL}


BAD = {
    "unknown_top_key": (DEFAULT + "\nfrobnicate: 1\n", "frobnicate (line"),
    "zero_limit": (DEFAULT.replace("limit: 3", "limit: 0"), "caps[0].limit (line 34)"),
    "bad_window": (DEFAULT.replace("window: 1d", "window: one day"), "caps[1].window (line"),
    "unknown_channel_in_rule": (DEFAULT.replace("channels: [sms]", "channels: [fax]"), "caps[1].channels[0] (line"),
    "bad_zone": (DEFAULT.replace("time_zone: Asia/Shanghai", "time_zone: Asia/Atlantis"), "quiet_hours.time_zone (line"),
    "bad_time": (DEFAULT.replace('start: "21:00"', 'start: "9pm"'), "quiet_hours (line"),
    "bad_fail_mode": (DEFAULT.replace("fail_mode: closed", "fail_mode: maybe"), "classes.marketing.fail_mode (line"),
    "unknown_check": (DEFAULT.replace("checks: [legal_channel]", "checks: [vibes]"), "classes.transactional.checks[0]"),
    "duplicate_rule": (DEFAULT.replace("id: sms_daily", "id: marketing_weekly"), "caps[1].id (line"),
    "not_yaml": ("channels: [unclosed\n", "not valid YAML (line"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_mistake_names_its_key_and_line(name):
    text, expected = BAD[name]
    with pytest.raises(policy.PolicyError) as err:
        policy.parse(text)
    assert expected in str(err.value)


def test_policy_check_command_exits_non_zero_with_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD["zero_limit"][0], encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "guard", "policy", "check", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and "caps[0].limit (line 34)" in out.stderr
    good = subprocess.run([sys.executable, "-m", "guard", "policy", "check", str(tmp_path / "none.yaml")],
                          capture_output=True, text=True)
    assert good.returncode == 1 and "cannot read policy file" in good.stderr
