"""A recipe: one TOML file describing a whole run, one section per stage, plus `--set` overrides."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from .errors import ConfigError
from .config import _SCHEME, apply_overrides, build, read_toml, setting
from .corpus.settings import CorpusSettings, SampleSettings
from .pretrain.settings import PretrainSettings
from .report.settings import ReportSettings
from .transfer.settings import EvaluateSettings
from .vocab.settings import VocabSettings

T = TypeVar("T")


@dataclass
class RunSettings:
    out: Path = setting(Path("runs/default"), path="out", runtime=True,
                        help="run folder holding every stage's output")
    wandb: Literal["online", "offline", "off"] = setting("offline", runtime=True, help="Weights & Biases mode")
    wandb_project: str = setting("mbert", runtime=True, help="Weights & Biases project")
    report_lines_per_language: int = setting(2000, min=1, help="lines per language for the tokenizer report")


@dataclass
class Recipe:
    run: RunSettings = setting(RunSettings())
    corpus: CorpusSettings = setting(CorpusSettings())
    sample: SampleSettings = setting(SampleSettings())
    vocab: VocabSettings = setting(VocabSettings())
    pretrain: PretrainSettings = setting(PretrainSettings())
    evaluate: EvaluateSettings = setting(EvaluateSettings())
    report: ReportSettings = setting(ReportSettings())
    # name -> [pretrain] overrides; each variant is pretrained and evaluated side by side
    # (e.g. with and without TLM). Empty: one model from [pretrain].
    variants: dict[str, PretrainSettings] = setting({})

    def pretrain_variants(self) -> dict[str, PretrainSettings]:
        return dict(self.variants) if self.variants else {"model": self.pretrain}


def load_raw(recipe: Path | None, overrides: list[str] | None = None) -> tuple[dict, Path, str]:
    """The recipe as a dict with overrides applied, the folder its relative paths resolve against,
    and a prefix for error messages."""
    if recipe is None:
        raw, base, where = {}, Path.cwd(), ""
    else:
        recipe = Path(recipe)
        raw, base, where = read_toml(recipe), recipe.resolve().parent, f"{recipe}: "
    return apply_overrides(raw, overrides or []), base, where


def load_recipe(path: Path | None, overrides: list[str] | None = None) -> Recipe:
    """Load and validate every section up front."""
    raw, base, where = load_raw(path, overrides)
    variants = raw.get("variants", {})
    if isinstance(variants, dict) and isinstance(raw.get("pretrain", {}), dict):
        # a variant is a set of overrides on top of [pretrain]
        raw["variants"] = {name: {**raw.get("pretrain", {}), **table} if isinstance(table, dict) else table
                           for name, table in variants.items()}
    return build(Recipe, raw, where=where, base_dir=base)


def stage_settings(args: argparse.Namespace, section: str, cls: type[T], flags: dict[str, Any]) -> T:
    """Settings for one stage command: recipe section (if `--recipe`), then `--set`, then flags.

    Flag values that are paths are made absolute first, because flags are relative to the current
    folder while recipe paths are relative to the recipe."""
    raw, base, where = load_raw(getattr(args, "recipe", None), getattr(args, "set", None))
    if section in raw and not isinstance(raw[section], dict):
        raise ConfigError(f"{where}[{section}] must be a table of settings, not {raw[section]!r}")
    data = dict(raw.get(section, {}))
    path_fields = {f.name for f in dataclasses.fields(cls) if f.metadata.get("path")}
    for key, value in flags.items():
        if value is None:
            continue
        data[key] = _absolute(value) if key in path_fields else value
    return build(cls, data, section=section, where=where, base_dir=base)


def _absolute(value: Any) -> Any:
    """Paths given as flags are relative to the current folder (`hf:`-style names are left alone)."""
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    if isinstance(value, dict):
        return {k: _absolute(v) for k, v in value.items()}
    if isinstance(value, (str, Path)) and not _SCHEME.match(str(value)):
        return str(Path(value).expanduser().absolute())
    return value


def run_settings(args: argparse.Namespace) -> RunSettings:
    """The `[run]` section (W&B mode, seed) for a single-stage command; `--wandb` overrides it."""
    return stage_settings(args, "run", RunSettings, {"wandb": getattr(args, "wandb", None)})
