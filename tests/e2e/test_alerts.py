"""The suggested alerts (``docs/alerts.yaml``) are valid Prometheus rules that fire when they should, and name
only metrics a real guard exports; the metrics count what they say (each decision once, reasons apart)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import prometheus_client
import pytest
import yaml

from tests.helpers import touch

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "docs" / "alerts.yaml"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install the Debian package prometheus (./dev test does)")
    return found


def test_the_alert_rules_are_valid_and_fire_on_the_series_they_watch():
    checked = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([_promtool(), "test", "rules", "alerts_test.yaml"], cwd=REPO / "tests" / "fixtures",
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _exported() -> set[str]:
    """Every series name the process's registry exports (a histogram's _bucket, a counter's _total ...)."""
    names = set()
    for family in prometheus_client.REGISTRY.collect():
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


async def test_every_metric_an_alert_names_is_exported_by_guard(app):
    await app.service.check(touch(user="u1", touch_id="t1"))
    await app.read_gauges()
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    named = {m for rule in rules for m in re.findall(r"\bguard_[a-z_]+", rule["expr"])}
    assert named and named <= _exported(), named - _exported()
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info") and rule["annotations"]["description"]


async def test_each_decision_is_counted_once_and_its_reasons_apart(app):
    def value(name: str, **labels: str) -> float:
        return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("guard_decisions_total", decision="BLOCK", touch_class="marketing")
    reasons = value("guard_decision_reasons_total", reason="CHANNEL_OPTED_OUT", decision="BLOCK", touch_class="marketing")
    from guard.usecases.preferences import PreferencesPatch

    await app.preferences.update_preferences("u2", PreferencesPatch(paths=["channels.sms", "unsubscribed_all"],
                                                                    channels={"sms": False}, unsubscribed_all=True),
                                             source="user", actor="u2", expected_version=None)
    blocked = await app.service.check(touch(user="u2", channel="sms", touch_id="t2"))
    assert len(blocked.reasons) == 2  # unsubscribed and the closed channel: two reasons, one decision
    assert value("guard_decisions_total", decision="BLOCK", touch_class="marketing") == before + 1
    assert value("guard_decision_reasons_total", reason="CHANNEL_OPTED_OUT", decision="BLOCK",
                 touch_class="marketing") == reasons + 1
