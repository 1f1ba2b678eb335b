"""`mbert run`: the whole pipeline from one recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli import add_command
from .pipeline import STAGES, default_recipe, run_pipeline
from .recipe import load_recipe


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub, "run", handler=_run,
        help="run corpus -> vocab -> pretrain -> evaluate -> report from one recipe; complete stages "
             "with unchanged settings are skipped",
        example="mbert run corpora/demo.toml --set pretrain.steps=200 --from pretrain")
    parser.add_argument("recipe_file", nargs="?", metavar="RECIPE.toml",
                        help="recipe (default: the embedded demo, corpora/demo.toml)")
    parser.add_argument("--from", dest="redo_from", choices=STAGES, help="redo this stage and every later one")
    parser.add_argument("--until", choices=STAGES, help="stop after this stage (e.g. vocab, then pretrain "
                                                        "under torchrun)")
    parser.add_argument("--out", help="run folder (overrides run.out)")


def _run(args: argparse.Namespace) -> int:
    if args.recipe and args.recipe_file:
        from .errors import ConfigError
        raise ConfigError("give the recipe once: either RECIPE.toml or --recipe FILE")
    path = Path(args.recipe_file or args.recipe or default_recipe())
    overrides = list(args.set)
    if args.wandb:
        overrides.append(f"run.wandb={args.wandb!r}".replace("'", '"'))
    if args.out:
        overrides.append(f"run.out={str(Path(args.out).absolute())!r}".replace("'", '"'))
    recipe = load_recipe(path, overrides)
    run_pipeline(recipe, redo_from=args.redo_from, until=args.until)
    return 0
