"""Batched scoring (what guard serves) against transformers' own pipeline called once per text, same texts.

Run by ``bench/run.py`` in a process of its own; prints one JSON object. Both sides use the same
checkpoint and CPU threads; the pipeline is what a team would write first.

    python bench/scoring.py [--threads 2] [--batch 32]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch
    from transformers import pipeline

    from guard import logs
    from guard.sentiment.model import BUNDLED_MODEL, SentimentModel

    logs.configure("warning", json=True)
    torch.set_num_threads(args.threads)
    with (REPO / "data/marketing_replies/test.tsv").open(encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle, delimiter="\t")] * args.rounds
    model = SentimentModel(BUNDLED_MODEL, threads=args.threads, precision="auto")  # as guard serves it by default
    classify = pipeline("text-classification", model=str(BUNDLED_MODEL), tokenizer=str(BUNDLED_MODEL), device=-1)
    model.score(texts[:8])
    classify(texts[:8])
    began = time.perf_counter()
    for text in texts:
        classify(text, truncation=True, max_length=model.max_length)
    unbatched = len(texts) / (time.perf_counter() - began)
    began = time.perf_counter()
    for i in range(0, len(texts), args.batch):
        model.score(texts[i : i + args.batch])
    batched = len(texts) / (time.perf_counter() - began)
    sys.stdout.write(json.dumps({"texts": len(texts), "pipeline_one_by_one_per_s": round(unbatched, 1),
                                 "batched_per_s": round(batched, 1), "batched_over_pipeline": round(batched / unbatched, 2),
                                 "batch": args.batch, "threads": args.threads}) + "\n")


if __name__ == "__main__":
    main()
