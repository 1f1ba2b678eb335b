"""`mbert evaluate`: zero-shot cross-lingual transfer of one or more checkpoints on a suite."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_command
from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub, "evaluate", handler=_evaluate,
        help="fine-tune on the source language and test every target language (XTREME-style); "
             "metrics.json, summary.md and XTREME-layout predictions in --out",
        example="mbert evaluate --model mlm=runs/demo/pretrain/mlm --model runs/demo/pretrain/mlm-tlm "
                "--random-init --suite eval/default.toml --out runs/demo/eval/compare --seeds 1 2 3")
    parser.add_argument("--model", action="append", default=[], metavar="[NAME=]DIR",
                        help="checkpoint folder (a pretrain output or a save_pretrained folder); repeat "
                             "to compare several; default: the suite's [models]")
    parser.add_argument("--suite", help="evaluation suite TOML (default eval/default.toml)")
    parser.add_argument("--out", required=True, help="output folder (replaced when the run completes)")
    parser.add_argument("--seeds", type=int, nargs="+", help="fine-tuning seeds (override the suite's)")
    parser.add_argument("--tasks", nargs="+", help="run only these tasks of the suite")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--random-init", action="store_true", default=None,
                        help="also evaluate fresh weights of the first model's shape (no-pretraining baseline)")
    parser.add_argument("--max-train-examples", type=int, help="cap training examples per task")
    parser.add_argument("--max-eval-examples", type=int, help="cap test examples per language")
    parser.add_argument("--analysis", action=argparse.BooleanOptionalAction, default=None,
                        help="run the language-neutrality analysis (default: as the suite says)")


def parse_models(values: list[str]) -> list[tuple[str | None, Path]]:
    """`DIR` or `NAME=DIR` per value; unnamed folders are named after themselves later."""
    models: list[tuple[str | None, Path]] = []
    for value in values:
        name, sep, folder = value.partition("=")
        if sep and name and "/" not in name and folder:
            models.append((name, Path(folder)))
        elif sep and not (name and folder) and "/" not in name:
            raise ConfigError(f"--model {value!r}: expected DIR or NAME=DIR")
        else:
            models.append((None, Path(value)))
    return models


def _evaluate(args: argparse.Namespace) -> int:
    from ..config import to_plain
    from ..recipe import run_settings, stage_settings
    from ..tracking import Tracker
    from .evaluate import evaluate
    from .settings import EvaluateSettings

    settings = stage_settings(args, "evaluate", EvaluateSettings, {
        "suite": args.suite, "seeds": args.seeds, "tasks": args.tasks, "device": args.device, "threads": args.threads,
        "random_init": args.random_init, "max_train_examples": args.max_train_examples,
        "max_eval_examples": args.max_eval_examples, "analysis": args.analysis})
    run = run_settings(args)
    out = Path(args.out).absolute()
    models = parse_models(args.model)
    # W&B files go beside the output: the output folder itself is replaced when the run completes.
    with Tracker(mode=run.wandb, project=run.wandb_project, stage="evaluate", run_dir=out.parent,
                 config={"evaluate": to_plain(settings)}, group=out.name) as tracker:
        evaluate(models, settings.suite, out, settings, tracker)
    return 0
