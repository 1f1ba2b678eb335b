"""Command line of the vocab stage: `mbert vocab train` and `mbert vocab report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import to_plain
from ..flags import add_command, add_settings_flags
from ..recipe import run_settings, stage_settings
from ..tracking import Tracker
from ..run_settings import RunSettings
from .settings import VocabSettings


def register(sub: argparse._SubParsersAction) -> None:
    vocab = sub.add_parser("vocab", help="train a shared WordPiece/SentencePiece vocabulary; report on it",
                           description="Shared vocabulary: `train` builds it from a corpus folder, `report` "
                                       "measures any tokenizer per language.")
    commands = vocab.add_subparsers(dest="vocab_command", metavar="COMMAND", required=True)

    train = add_command(
        commands, "train", handler=_train,
        help="train a shared vocabulary (mBERT-style WordPiece, or SentencePiece) on a corpus folder",
        example="mbert vocab train --corpus runs/demo/corpus/mixture --out runs/demo/vocab --size 30000")
    train.add_argument("--corpus", required=True, metavar="DIR",
                       help="corpus folder: a mixture (DIR/part-*.parquet) or a clean corpus "
                            "(DIR/<lang>/part-*.parquet)")
    train.add_argument("--out", required=True, metavar="DIR", help="tokenizer folder to write")
    add_settings_flags(train, "vocab", VocabSettings)

    report = add_command(
        commands, "report", handler=_report,
        help="per-language fertility, split words, UNK rate, character coverage and script shares of a tokenizer",
        example="mbert vocab report --tokenizer runs/demo/vocab --text runs/demo/corpus/clean "
                "--out runs/demo/vocab/report")
    report.add_argument("--tokenizer", required=True, metavar="DIR",
                        help="any folder AutoTokenizer loads (ours, or e.g. a released mBERT one)")
    report.add_argument("--text", required=True, nargs="+", metavar="DIR_OR_LANG=PATH",
                        help="a clean corpus folder, a folder of <lang>.txt files, or lang=path items")
    report.add_argument("--out", required=True, metavar="DIR", help="folder for report.json/.md/.png")
    report.add_argument("--max-lines", type=int, metavar="N", help="lines read per language (default all)")


def _tracker(run: RunSettings, out: Path, config: dict) -> Tracker:
    # W&B files go beside the output folder, not inside it: the output folder is replaced whole
    return Tracker(mode=run.wandb, project=run.wandb_project, stage="vocab", run_dir=out.parent, config=config)


def _train(args: argparse.Namespace) -> None:
    from .train import train_vocab

    settings, run = stage_settings(args, "vocab", VocabSettings)
    corpus, out = Path(args.corpus).absolute(), Path(args.out).absolute()
    with _tracker(run, out, {"vocab": to_plain(settings)}) as tracker:
        train_vocab(corpus, out, settings, tracker)


def _report(args: argparse.Namespace) -> None:
    from ..errors import UserError
    from .report import tokenizer_report
    from .texts import parse_text_args

    if args.max_lines is not None and args.max_lines < 1:
        raise UserError(f"--max-lines {args.max_lines} must be at least 1")
    texts = parse_text_args(args.text)
    out = Path(args.out).absolute()
    with _tracker(run_settings(args), out, {"tokenizer": args.tokenizer}) as tracker:
        tokenizer_report(Path(args.tokenizer), texts, out, tracker, max_lines_per_language=args.max_lines)
