"""Command line of the corpus stage: `mbert corpus extract` and `mbert corpus sample`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..flags import add_command, add_settings_flags
from ..recipe import stage_settings
from ..run_settings import RunSettings
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
    add_settings_flags(extract, "corpus", CorpusSettings, skip=["sources"])  # --lang/--source

    fake = add_command(
        stages, "fake", handler=_fake,
        help="add a fake copy of an extracted language (same text in a script no language uses) to a clean corpus",
        example="mbert corpus fake --clean runs/demo/corpus/clean --code en-fake\n  "
                "mbert corpus fake --clean runs/demo/corpus/clean --code en-fake2 --word-order shuffled")
    fake.add_argument("--clean", required=True, help="output folder of `corpus extract` holding the base language")
    fake.add_argument("--code", required=True, action="append", metavar="CODE",
                      help="fake language code <base>-fake or <base>-fakeN (N = 2..50); repeatable")
    # the rest of [corpus] is about extraction: a fake copy reads the clean text as it is
    add_settings_flags(fake, "corpus", CorpusSettings, only=["fake_word_order", "force"])

    sample = add_command(
        stages, "sample", handler=_sample,
        help="draw the exponentially smoothed language mixture (q_L ∝ p_L^S) from a clean corpus",
        example="mbert corpus sample --clean runs/demo/corpus/clean --out runs/demo/corpus/mixture "
                "--smoothing 0.7 --seed 1")
    sample.add_argument("--clean", required=True, help="output folder of `corpus extract`")
    sample.add_argument("--out", required=True, help="output folder of the mixture")
    add_settings_flags(sample, "sample", SampleSettings)


def _tracker(run: RunSettings, stage: str, out: Path, config: dict):
    if run.wandb == "off":
        return None
    from ..tracking import Tracker
    return Tracker(mode=run.wandb, project=run.wandb_project, stage=stage, run_dir=out, config=config)


def _extract(args: argparse.Namespace) -> int:
    sources = None
    if args.lang or args.source:
        if not (args.lang and args.source):
            raise ConfigError("give --lang CODE together with at least one --source PATH "
                              "(or neither, to take [corpus] sources from the recipe)")
        sources = {args.lang: list(args.source)}  # made absolute by stage_settings
    settings, run = stage_settings(args, "corpus", CorpusSettings, {"sources": sources})
    from ..config import to_plain
    from .extract import extract_corpus
    out = Path(args.out).absolute()
    tracker = _tracker(run, "corpus-extract", out, {"corpus": to_plain(settings)})
    try:
        extract_corpus(settings, out, tracker=tracker)
    finally:
        if tracker is not None:
            tracker.finish()
    return 0


def _fake(args: argparse.Namespace) -> int:
    settings, _ = stage_settings(args, "corpus", CorpusSettings, {"fake": list(args.code)})
    from .extract import add_fake_languages
    add_fake_languages(Path(args.clean).absolute(), settings.fake, settings.fake_word_order, force=settings.force)
    return 0


def _sample(args: argparse.Namespace) -> int:
    settings, run = stage_settings(args, "sample", SampleSettings)
    from ..config import to_plain
    from .sample import sample_mixture
    out = Path(args.out).absolute()
    tracker = _tracker(run, "corpus-sample", out, {"sample": to_plain(settings)})
    try:
        sample_mixture(Path(args.clean).absolute(), out, settings, tracker=tracker)
    finally:
        if tracker is not None:
            tracker.finish()
    return 0
