"""Command line of the corpus stage: `mbert corpus extract` and `mbert corpus sample`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_command
from ..errors import ConfigError
from ..recipe import run_settings, stage_settings
from .settings import CorpusSettings, SampleSettings


def register(sub: argparse._SubParsersAction) -> None:
    corpus = sub.add_parser("corpus", help="build the clean multilingual corpus and the smoothed mixture",
                            description="Wikipedia dumps / Parquet / text -> clean per-language shards "
                                        "(extract) -> exponentially smoothed mixture (sample).")
    stages = corpus.add_subparsers(dest="corpus_command", metavar="COMMAND", required=True)

    extract = add_command(
        stages, "extract", handler=_extract,
        help="clean, segment and de-duplicate sources into DIR/<lang>/part-*.parquet + DIR/manifest.json",
        example="mbert corpus extract --lang el --source elwiki-20230501-pages-articles-multistream.xml.bz2 "
                "--out runs/demo/corpus/clean --workers 4\n  "
                "mbert corpus extract --recipe corpora/demo.toml --out runs/demo/corpus/clean")
    extract.add_argument("--lang", help="language code (one of the 104 in corpora/languages.toml); "
                                        "without it, every language of [corpus] sources in the recipe")
    extract.add_argument("--source", action="append", metavar="PATH",
                         help="dump (.xml, .xml.bz2, multistream .bz2 + -index.txt.bz2), Parquet/Arrow "
                              "(id,url,title,text), or text (one sentence per line); repeatable, globs allowed")
    extract.add_argument("--out", required=True, help="output folder")
    extract.add_argument("--workers", type=int, help="worker processes (default: one per CPU core)")
    extract.add_argument("--force", action="store_true", default=None, help="redo languages already complete")

    fake = add_command(
        stages, "fake", handler=_fake,
        help="add a fake copy of an extracted language (same text in a script no language uses) to a clean corpus",
        example="mbert corpus fake --clean runs/demo/corpus/clean --code en-fake\n  "
                "mbert corpus fake --clean runs/demo/corpus/clean --code en-fake2 --word-order shuffled")
    fake.add_argument("--clean", required=True, help="output folder of `corpus extract` holding the base language")
    fake.add_argument("--code", required=True, action="append", metavar="CODE",
                      help="fake language code <base>-fake or <base>-fakeN (N = 2..50); repeatable")
    fake.add_argument("--word-order", choices=["same", "shuffled"],
                      help="shuffled: permute the words of each fake sentence (default: same)")
    fake.add_argument("--force", action="store_true", default=None, help="rebuild a copy that is already complete")

    sample = add_command(
        stages, "sample", handler=_sample,
        help="draw the exponentially smoothed language mixture (q_L ∝ p_L^S) from a clean corpus",
        example="mbert corpus sample --clean runs/demo/corpus/clean --out runs/demo/corpus/mixture "
                "--smoothing 0.7 --seed 1")
    sample.add_argument("--clean", required=True, help="output folder of `corpus extract`")
    sample.add_argument("--out", required=True, help="output folder of the mixture")
    sample.add_argument("--smoothing", type=float, help="exponent S in (0, 1] (default 0.7)")
    sample.add_argument("--target-size", type=int, help="mixture size in --unit (default: clean corpus size)")
    sample.add_argument("--unit", choices=["characters", "tokens"], help="what p_L and the target count")
    sample.add_argument("--max-repeats", type=float, help="cap on repeats of a small language (default 100)")
    sample.add_argument("--seed", type=int, help="sampling and shuffling seed")
    sample.add_argument("--languages", nargs="+", metavar="CODE",
                        help="mix only these languages of the clean corpus (default: all)")


def _tracker(args: argparse.Namespace, stage: str, out: Path, config: dict):
    run = run_settings(args)
    if run.wandb == "off":
        return None
    from ..tracking import Tracker
    return Tracker(mode=run.wandb, project=run.wandb_project, stage=stage, run_dir=out, config=config)


def _extract(args: argparse.Namespace) -> int:
    flags = {"workers": args.workers, "force": args.force}
    if args.lang or args.source:
        if not (args.lang and args.source):
            raise ConfigError("give --lang CODE together with at least one --source PATH "
                              "(or neither, to take [corpus] sources from the recipe)")
        flags["sources"] = {args.lang: list(args.source)}  # made absolute by stage_settings
    settings = stage_settings(args, "corpus", CorpusSettings, flags)
    from ..config import to_plain
    from .extract import extract_corpus
    out = Path(args.out).absolute()
    tracker = _tracker(args, "corpus-extract", out, {"corpus": to_plain(settings)})
    try:
        extract_corpus(settings, out, tracker=tracker)
    finally:
        if tracker is not None:
            tracker.finish()
    return 0


def _fake(args: argparse.Namespace) -> int:
    settings = stage_settings(args, "corpus", CorpusSettings, {
        "fake": list(args.code), "fake_word_order": args.word_order, "force": args.force})
    from .extract import add_fake_languages
    add_fake_languages(Path(args.clean).absolute(), settings.fake, settings.fake_word_order, force=settings.force)
    return 0


def _sample(args: argparse.Namespace) -> int:
    settings = stage_settings(args, "sample", SampleSettings, {
        "smoothing": args.smoothing, "target_size": args.target_size, "unit": args.unit,
        "max_repeats": args.max_repeats, "seed": args.seed,
        "languages": args.languages})
    from ..config import to_plain
    from .sample import sample_mixture
    out = Path(args.out).absolute()
    tracker = _tracker(args, "corpus-sample", out, {"sample": to_plain(settings)})
    try:
        sample_mixture(Path(args.clean).absolute(), out, settings, tracker=tracker)
    finally:
        if tracker is not None:
            tracker.finish()
    return 0
