"""The real bundled model from models/, label mapping of other checkpoints, and hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.sentiment.model import BUNDLED_MODEL, NEGATIVE, NEUTRAL, POSITIVE, ModelError, SentimentModel, map_labels


@pytest.fixture(scope="module")
def bundled() -> SentimentModel:
    return SentimentModel(BUNDLED_MODEL, threads=2)


CLEAR_CASES = [
    ("别再发了，烦死了", NEGATIVE),
    ("天天发短信，再发我就投诉到12315", NEGATIVE),
    ("质量太差了，再也不会买了", NEGATIVE),
    ("Stop texting me, this is spam", NEGATIVE),
    ("My refund still hasn't arrived, terrible service", NEGATIVE),
    ("这个什么时候发货？", NEUTRAL),
    ("多少钱？", NEUTRAL),
    ("收到", NEUTRAL),
    ("What size should I get?", NEUTRAL),
    ("谢谢，东西很好，很喜欢", POSITIVE),
    ("Thanks so much, love it!", POSITIVE),
]


def test_bundled_model_reads_clear_replies(bundled):
    """Clear Chinese and English complaints are negative; questions are not; thanks are positive."""
    scores = bundled.score([text for text, _ in CLEAR_CASES])
    for (text, expected), score in zip(CLEAR_CASES, scores, strict=True):
        assert score.label == expected, (text, score)
        if expected != NEGATIVE:
            assert score.negative < 0.5, (text, score)


def test_hostile_input_never_crashes(bundled):
    """Empty, emoji-only, control characters, mixed script and very long texts all get a score."""
    texts = ["", "   ", "😡😡😡", "\x00\x07\x1b[31m", "退订 STOP 🙏 ok?", "垃圾" * 5000, "\u202etxet\u202c", "ＳＴＯＰ"]
    scores = bundled.score(texts)
    assert len(scores) == len(texts)
    assert all(0.0 <= s.negative <= 1.0 and s.label in (NEGATIVE, NEUTRAL, POSITIVE) for s in scores)
    assert bundled.score([]) == []


def _tiny_checkpoint(path: Path, labels: dict[int, str]) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "ok", "好", "差"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=len(labels), id2label=labels,
                        label2id={v: k for k, v in labels.items()})  # type: ignore[call-arg]
    BertForSequenceClassification(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def test_binary_checkpoint_maps_negative_and_positive(tmp_path):
    """A two-label checkpoint works: its probabilities land on NEGATIVE and POSITIVE, never NEUTRAL."""
    model = SentimentModel(_tiny_checkpoint(tmp_path / "bin", {0: "NEG", 1: "POS"}), quantize=False)
    assert model.labels == [NEGATIVE, POSITIVE]
    for score in model.score(["good", "bad", "差"]):
        assert score.label in (NEGATIVE, POSITIVE)


def test_unmappable_checkpoint_is_refused_with_its_labels(tmp_path):
    path = _tiny_checkpoint(tmp_path / "stars", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ModelError, match="LABEL_0"):
        SentimentModel(path)
    with pytest.raises(ModelError, match=r"config\.json missing"):
        SentimentModel(tmp_path / "nothing")


def test_label_mapping_rules():
    assert map_labels({0: "negative", 1: "neutral", 2: "positive"}) == [NEGATIVE, NEUTRAL, POSITIVE]
    assert map_labels({0: "Positive", 1: "Negative"}) == [POSITIVE, NEGATIVE]
    with pytest.raises(ModelError, match="no negative label"):
        map_labels({0: "neutral", 1: "positive"})


def test_a_score_does_not_depend_on_what_shares_its_batch(bundled):
    """Served in fp32, a reply scores the same alone or padded beside longer ones."""
    texts = ["这个尺码偏大还是偏小？", "Stop texting me, this is spam", "收到", "谢谢，东西很好，很喜欢" * 5]
    together = bundled.score(texts)
    for text, score in zip(texts, together, strict=True):
        assert abs(bundled.score([text])[0].negative - score.negative) < 1e-4


def test_cleaning_keeps_what_the_model_was_trained_on():
    """Full-width punctuation stays (the training text has it); control and zero-width characters go."""
    from guard.sentiment.model import clean

    assert clean("多少钱？\u200b\x00 ok") == "多少钱？ ok"


def test_bf16_reads_replies_as_fp32_does(bundled):
    """bf16 matrix products (the default where the CPU has them) give the same labels, scores within 0.02,
    and a score that still does not depend on what shares its batch."""
    texts = ["别再发了，烦死了", "谢谢，收到了", "When does the sale end?", "Stop spamming me, I will report you",
             "这个尺码有货吗", "Love it!"]
    half = SentimentModel(BUNDLED_MODEL, threads=2, precision="bf16")
    assert half.bf16
    full, reduced = bundled.score(texts), half.score(texts)
    assert [s.label for s in full] == [s.label for s in reduced]
    assert max(abs(a.negative - b.negative) for a, b in zip(full, reduced, strict=True)) < 0.02
    alone = [half.score([t])[0].negative for t in texts]
    assert max(abs(a - b.negative) for a, b in zip(alone, reduced, strict=True)) < 0.002
    with pytest.raises(ModelError):
        SentimentModel(BUNDLED_MODEL, precision="fp8")
