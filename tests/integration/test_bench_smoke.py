"""The benchmark suite, run for a moment so it cannot rot. It asserts what was measured, never how fast."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_the_benchmark_suite_runs_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(REPO / "bench/run.py"), "--seconds", "0.3", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())["figures"]
    for name in ("echo_1", "check_spread_1", "check_spread_16", "check_spread_64", "check_hot_16", "check_hot_64",
                 "check_touches_100", "check_touches_1000", "record_reply_32", "check_with_pending_reply_16"):
        assert figures[name]["calls"] > 0 and set(figures[name]["codes"]) == {"OK"}, (name, figures[name])
    assert figures["redis_commands_per_check"]["by_command"]["evalsha"] >= 1
    assert isinstance(figures["redis_benchmark_evalsha_per_s"], float)
    assert figures["limits_peer"]["guard_per_s"] > 0
    assert figures["workers"]["workers_2_per_s"] > 0 and figures["serve_memory_2_workers"]["processes"] == 4
    assert figures["scoring"]["batched_per_s"] > 0 and figures["scoring"]["pipeline_one_by_one_per_s"] > 0
    assert "check_over_echo_16" in figures["ratios"] and "figure" in done.stdout

