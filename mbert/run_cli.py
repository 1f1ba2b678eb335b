"""`mbert run`: the whole pipeline from one recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from .flags import add_command, add_settings_flags, given
from .pipeline import STAGES, default_recipe, run_pipeline
from .recipe import load_recipe
from .run_settings import RunSettings


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
    add_settings_flags(parser, "run", RunSettings, skip=["wandb", "wandb_project"])  # those two: add_command


def _run(args: argparse.Namespace) -> int:
    if args.recipe and args.recipe_file:
        from .errors import ConfigError
        raise ConfigError("give the recipe once: either RECIPE.toml or --recipe FILE")
    path = Path(args.recipe_file or args.recipe or default_recipe())
    recipe = load_recipe(path, args.set, {"run": given(args, "run")})
    run_pipeline(recipe, redo_from=args.redo_from, until=args.until)
    return 0
