"""The narrower benchmarks (webhooks, HTTP/JSON), run for a moment so they cannot rot; apart from the suite's smoke
test so the two run on different test workers. They assert what was measured, never how fast."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_the_webhooks_benchmark_measures_both_sides(tmp_path):
    out = tmp_path / "hooks.json"
    done = subprocess.run([sys.executable, str(REPO / "bench/webhooks.py"), "--rounds", "1", "--batches", "1",
                           "--events", "50", "--replies", "8", "--json", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert all(v[0] > 0 for v in result["rounds"].values()) and result["inbound_sms_over_record_reply"] > 0


@pytest.mark.slow
def test_the_json_api_benchmark_measures_both_transports(tmp_path):
    out = tmp_path / "json.json"
    done = subprocess.run([sys.executable, str(REPO / "bench/json_api.py"), "--rounds", "1", "--calls", "20",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(out.read_text())["http_over_grpc"] > 0
