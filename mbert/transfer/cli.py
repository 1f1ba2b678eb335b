"""`mbert evaluate`: zero-shot cross-lingual transfer of one or more checkpoints on a suite."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..flags import add_command, add_settings_flags
from .settings import EvaluateSettings


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
    parser.add_argument("--out", required=True, help="output folder (replaced when the run completes)")
    add_settings_flags(parser, "evaluate", EvaluateSettings)


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
    from ..recipe import stage_settings
    from ..tracking import Tracker
    from .evaluate import evaluate

    settings, run = stage_settings(args, "evaluate", EvaluateSettings)
    out = Path(args.out).absolute()
    models = parse_models(args.model)
    # W&B files go beside the output: the output folder itself is replaced when the run completes.
    with Tracker(mode=run.wandb, project=run.wandb_project, stage="evaluate", run_dir=out.parent,
                 config={"evaluate": to_plain(settings)}, group=out.name) as tracker:
        evaluate(models, settings.suite, out, settings, tracker)
    return 0
