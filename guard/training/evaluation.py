"""Held-out scoring shared by the transformer and the TF-IDF baseline.

Every source is reported as "negative versus the rest", the decision the
product actually makes, plus plain three-way accuracy where a source has three
classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guard.training.corpora import NEGATIVE, Example

# Domain questions that must never read as negative: price, size, delivery, coupons.
NEUTRAL_QUESTION_MARKERS = (
    "多少钱",
    "价格",
    "价",
    "尺码",
    "码",
    "发货",
    "到货",
    "快递",
    "几天",
    "优惠",
    "券",
    "price",
    "size",
    "ship",
    "deliver",
    "coupon",
    "discount",
    "promo",
)


def score(examples: Sequence[Example], probs: Sequence[Sequence[float]], threshold: float = 0.5) -> dict[str, Any]:
    tp = fp = fn = tn = correct = 0
    neutral_questions = neutral_questions_negative = 0
    for ex, p in zip(examples, probs, strict=True):
        predicted_negative = p[NEGATIVE] >= threshold
        actual_negative = ex.label == NEGATIVE
        tp += predicted_negative and actual_negative
        fp += predicted_negative and not actual_negative
        fn += (not predicted_negative) and actual_negative
        tn += (not predicted_negative) and (not actual_negative)
        correct += max(range(len(p)), key=lambda i: p[i]) == ex.label
        if ex.label == 1 and any(m in ex.text.lower() for m in NEUTRAL_QUESTION_MARKERS):
            neutral_questions += 1
            neutral_questions_negative += predicted_negative
    n = max(1, len(examples))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(examples),
        "neg_vs_rest_accuracy": round((tp + tn) / n, 4),
        "neg_precision": round(precision, 4),
        "neg_recall": round(recall, 4),
        "neg_f1": round(f1, 4),
        "three_way_accuracy": round(correct / n, 4),
        "neutral_questions": neutral_questions,
        "neutral_questions_read_negative": neutral_questions_negative,
    }


@dataclass
class TfidfBaseline:
    """Character 1–4-gram TF-IDF with logistic regression, fitted on the same training mix."""

    pipeline: Any

    @classmethod
    def fit(cls, train: Sequence[Example], domain_upsample: int, seed: int) -> TfidfBaseline:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True, max_features=400_000),
            LogisticRegression(max_iter=3000, C=4.0, random_state=seed),
        )
        weights = [float(domain_upsample) if ex.source == "domain" else 1.0 for ex in train]
        pipeline.fit([ex.text for ex in train], [ex.label for ex in train], logisticregression__sample_weight=weights)
        return cls(pipeline)

    def predict_proba(self, texts: Sequence[str]) -> list[list[float]]:
        classes = list(self.pipeline.classes_)
        rows = self.pipeline.predict_proba(list(texts))
        return [[float(row[classes.index(c)]) if c in classes else 0.0 for c in range(3)] for row in rows]
