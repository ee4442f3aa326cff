"""The card's speed verdicts: each target compared the right way round."""

from guard.training.card import _speed_targets


def test_speed_targets_compare_latency_down_and_throughput_up():
    speed = {
        "one short reply, median (ms)": 15.0,
        "batched, batch 32 (replies/s)": 249.9,
        "load time (s)": 5.1,
        "resident memory of the loaded model (MB, beyond torch+transformers)": 120.0,
    }
    rows = [line.split(" | ") for line in _speed_targets(speed)[2:-1]]
    assert [(r[0].lstrip("| "), r[2].rstrip(" |")) for r in rows] == [
        ("one short reply, median ≤ 15 ms", "yes"),
        ("batched ≥ 250 replies/s", "**no**"),
        ("load time ≤ 5 s", "**no**"),
        ("resident memory ≤ 400 MB", "yes"),
    ]


def test_speed_targets_skip_what_was_not_measured():
    assert _speed_targets({"CPU threads": 2}) == []
    assert len(_speed_targets({"load time (s)": 1.0})) == 4  # header, rule, one row, blank
