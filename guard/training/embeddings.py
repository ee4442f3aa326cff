"""Where the Chinese rows of the extended vocabulary start, before any training.

The English base knows where "bad", "refund" and "annoying" sit in its embedding
space, but nothing of Chinese. Rows that start at random (or at the vocabulary
mean) must learn their meaning from a few tens of thousands of labelled texts.
Two public resources give them a head start instead:

- CC-CEDICT's English glosses: a row starts at the mean base embedding of its
  glosses' words (差 near "inferior", 骗 near "swindle");
- Chinese word vectors trained on Wikipedia: a linear map, fitted on the words
  that have both a vector and a gloss, carries every vector into the base's
  space, so words without a useful gloss (and slang the dictionary lacks)
  still land among their distributional neighbours.

Where both exist the two directions are averaged. Every start is re-centred on
the base vocabulary's mean and scaled to its median distance from it, so a new
row is neither louder nor quieter than an old one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

# Function words carry no meaning worth averaging into a row.
_STOPWORDS = frozenset(
    {"a", "an", "the", "of", "to", "or", "and", "be", "is", "are", "in", "on", "at", "for", "as", "by", "with", "from"}
    | {"one", "sth", "sb", "something", "someone", "oneself"}
)
_HAN_WORD = re.compile(r"^[\u4e00-\u9fff]{2,4}$")


@dataclass(frozen=True)
class WordVectors:
    """Unit-length word vectors with their vocabulary."""

    index: dict[str, int]
    vectors: np.ndarray

    def get(self, word: str) -> np.ndarray | None:
        row = self.index.get(word)
        return None if row is None else self.vectors[row]


def choose_words(texts: Iterable[str], vectors: WordVectors, limit: int, min_count: int = 3) -> list[str]:
    """The ``limit`` most frequent 2–4-character Chinese words of the text that have a vector.

    Counting every substring that is a known word over-counts the inner words of
    longer ones a little; for ranking a few thousand words that is harmless.
    """
    known = {w for w in vectors.index if _HAN_WORD.match(w)}
    counts: Counter[str] = Counter()
    for text in texts:
        for n in (2, 3, 4):
            for i in range(len(text) - n + 1):
                gram = text[i : i + n]
                if gram in known:
                    counts[gram] += 1
    return [w for w, c in counts.most_common(limit) if c >= min_count]


class _Glosses:
    """Unit directions (from the base mean) of a headword's English glosses."""

    def __init__(
        self, base: PreTrainedTokenizerBase, old: torch.Tensor, glosses: dict[str, list[str]], max_glosses: int = 10
    ) -> None:
        self.base, self.old, self.glosses, self.max_glosses = base, old, glosses, max_glosses
        self.mean: torch.Tensor = old.mean(0)
        self._pieces: dict[str, list[int]] = {}
        self._borrowed: dict[str, list[str]] | None = None

    def _ids(self, word: str) -> list[int]:
        if word not in self._pieces:
            unknown = self.base.unk_token_id
            ids = self.base(word, add_special_tokens=False)["input_ids"]
            self._pieces[word] = [i for i in ids if i != unknown]
        return self._pieces[word]

    def _borrow(self, char: str) -> list[str]:
        """A bound character with no gloss of its own (垃 of 垃圾) takes those of two-character words with it."""
        if self._borrowed is None:
            self._borrowed = {}
            for word, meanings in self.glosses.items():
                if len(word) == 2:
                    for c in word:
                        got = self._borrowed.setdefault(c, [])
                        if len(got) < self.max_glosses:
                            got += meanings[:2]
        return self._borrowed.get(char, [])

    def direction(self, word: str) -> torch.Tensor | None:
        meanings = self.glosses.get(word) or (self._borrow(word) if len(word) == 1 else [])
        vectors = []
        for gloss in meanings[: self.max_glosses]:
            ids = [i for w in re.findall(r"[a-z]+", gloss) if w not in _STOPWORDS for i in self._ids(w)]
            if ids:
                vectors.append(self.old[ids].mean(0))
        if not vectors:
            return None
        offset = torch.stack(vectors).mean(0) - self.mean
        unit: torch.Tensor = offset / offset.norm().clamp_min(1e-6)
        return unit


def _fit_map(vectors: WordVectors, glosses: _Glosses, ridge: float = 1.0) -> tuple[np.ndarray, int]:
    """Least squares (ridge) from word-vector space to gloss directions, on words that have both."""
    xs, ys = [], []
    for word, row in vectors.index.items():
        if word in glosses.glosses and (len(word) == 1 or _HAN_WORD.match(word)):
            target = glosses.direction(word)
            if target is not None:
                xs.append(vectors.vectors[row])
                ys.append(target.numpy())
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    mapping = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
    return mapping, len(xs)


def start_new_rows(
    model: torch.nn.Module,
    base: PreTrainedTokenizerBase,
    tokenizer: PreTrainedTokenizerBase,
    added: Sequence[str],
    glosses: dict[str, list[str]] | None,
    vectors: WordVectors | None,
) -> dict[str, int]:
    """Set the start of every added row (``##`` pieces share their word's start); returns counts."""
    weight: torch.nn.Parameter = model.get_input_embeddings().weight  # type: ignore[operator]
    vocab = tokenizer.get_vocab()
    counts = {"from_glosses": 0, "from_word_vectors": 0, "unchanged": 0}
    with torch.no_grad():
        old = weight[: len(tokenizer) - len(added)].detach().clone()
        gloss = _Glosses(base, old, glosses or {})
        mapping = None
        if vectors is not None and glosses:
            mapping, counts["map_anchors"] = _fit_map(vectors, gloss)
        scale = (old - gloss.mean).norm(dim=1).median()
        starts: dict[str, tuple[torch.Tensor | None, list[str]]] = {}  # a word and its ## twin share one start
        for token in added:
            word = token.removeprefix("##") or token
            if word not in starts:
                directions, sources = [], []
                from_gloss = gloss.direction(word)
                if from_gloss is not None:
                    directions.append(from_gloss)
                    sources.append("from_glosses")
                vector = vectors.get(word) if vectors is not None else None
                if vector is not None and mapping is not None:
                    mapped = torch.from_numpy(vector.astype(np.float64) @ mapping).float()
                    directions.append(mapped / mapped.norm().clamp_min(1e-6))
                    sources.append("from_word_vectors")
                offset = torch.stack(directions).mean(0) if directions else None
                start = None if offset is None else gloss.mean + offset * (scale / offset.norm().clamp_min(1e-6))
                starts[word] = (start, sources or ["unchanged"])  # unchanged: keeps the start resizing gave it
            start, sources = starts[word]
            for source in sources:
                counts[source] += 1
            if start is not None:
                weight[vocab[token]] = start
    return counts
