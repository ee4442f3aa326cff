"""Speed and memory of the bundled sentiment model on this CPU, fp32 (served) and int8 side by side.

Prints: load time, resident memory added by the loaded model (measured after
torch and transformers are imported, so their own footprint is not counted),
median latency of one short reply, and batched throughput over the team's
marketing-reply test split. ``--write`` stores the fp32 figures beside the model
(``speed.json``) for its card.

    python bench/sentiment_speed.py [--threads 2] [--write]
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def replies() -> list[str]:
    with (REPO / "data/marketing_replies/test.tsv").open(encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle, delimiter="\t")]


def measure(model_dir: Path, threads: int, quantize: bool) -> dict[str, float]:
    import torch  # noqa: F401  (imported before the baseline reading on purpose)
    import transformers  # noqa: F401

    from guard.sentiment.model import SentimentModel

    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    model = SentimentModel(model_dir, threads=threads, quantize=quantize)
    load_s = time.perf_counter() - started
    texts = replies()
    model.score(texts[:8])  # warm-up
    singles = []
    for text in (texts * 3)[:150]:
        t0 = time.perf_counter()
        model.score([text])
        singles.append(time.perf_counter() - t0)
    batch = 32
    t0 = time.perf_counter()
    rounds = 0
    while time.perf_counter() - t0 < 5:
        for i in range(0, len(texts), batch):
            model.score(texts[i : i + batch])
        rounds += 1
    throughput = rounds * len(texts) / (time.perf_counter() - t0)
    rss_mb = (process.memory_info().rss - before) / 2**20
    return {
        "load_s": round(load_s, 2),
        "model_rss_mb": round(rss_mb, 1),
        "one_reply_median_ms": round(statistics.median(singles) * 1000, 2),
        "batched_replies_per_s": round(throughput, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "models/guard-sentiment-zh-en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write speed.json beside the model")
    parser.add_argument("--one", choices=["int8", "fp32"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child process: one variant, fresh memory
        from guard import logs

        logs.configure("warning", json=True)
        print(json.dumps(measure(args.model, args.threads, quantize=args.one == "int8")))
        return

    def child(variant: str) -> dict[str, float]:
        cmd = [sys.executable, __file__, "--one", variant, "--threads", str(args.threads), "--model", str(args.model)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    fp32, int8 = child("fp32"), child("int8")
    print(f"{'measure':<24}{'fp32 (served)':>16}{'int8':>12}{'int8/fp32':>12}")
    for key in fp32:
        ratio = int8[key] / fp32[key] if fp32[key] else float("nan")
        print(f"{key:<24}{fp32[key]:>16}{int8[key]:>12}{ratio:>12.2f}")
    print(f"each variant measured in its own process; cpu threads: {args.threads}; cpus: {os.cpu_count()}")
    if args.write:
        speed = {
            "CPU threads": args.threads,
            "load time (s)": fp32["load_s"],
            "resident memory of the loaded model (MB, beyond torch+transformers)": fp32["model_rss_mb"],
            "one short reply, median (ms)": fp32["one_reply_median_ms"],
            "batched, batch 32 (replies/s)": fp32["batched_replies_per_s"],
            "int8 dynamic quantisation (optional) for comparison: one reply (ms) / batched (replies/s)":
                f"{int8['one_reply_median_ms']} / {int8['batched_replies_per_s']}",
        }
        (args.model / "speed.json").write_text(json.dumps(speed, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
