"""A recipe: one TOML file describing a whole run, one section per stage, plus `--set` overrides."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from .config import apply_overrides, build, is_url, read_toml, setting
from .corpus.settings import CorpusSettings, SampleSettings
from .errors import ConfigError
from .flags import given
from .pretrain.settings import PretrainSettings
from .report.settings import ReportSettings
from .run_settings import RunSettings
from .transfer.settings import EvaluateSettings
from .vocab.settings import VocabSettings

T = TypeVar("T")


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


def load_recipe(path: Path | None, overrides: list[str] | None = None,
                flags: dict[str, dict[str, Any]] | None = None) -> Recipe:
    """Load and validate every section up front; `flags` (section -> field -> value) win over `overrides`."""
    raw, base, where = load_raw(path, overrides)
    for section, values in (flags or {}).items():
        _lay_flags(raw, section, get_type_hints(Recipe)[section], values, where)
    variants = raw.get("variants", {})
    if isinstance(variants, dict) and isinstance(raw.get("pretrain", {}), dict):
        # a variant is a set of overrides on top of [pretrain]
        raw["variants"] = {name: {**raw.get("pretrain", {}), **table} if isinstance(table, dict) else table
                           for name, table in variants.items()}
    return build(Recipe, raw, where=where, base_dir=base)


def stage_settings(args: argparse.Namespace, section: str, cls: type[T],
                   extra: dict[str, Any] | None = None) -> tuple[T, RunSettings]:
    """The settings of one stage command and its `[run]` settings, from one reading of the recipe
    (`--recipe`): its section, then `--set`, then the flags given (`mbert.flags.given`) and `extra`
    (values of the command's hand-written flags, None when not given)."""
    raw, base, where = load_raw(getattr(args, "recipe", None), getattr(args, "set", None))
    return (_section(raw, section, cls, {**given(args, section), **(extra or {})}, base, where),
            _section(raw, "run", RunSettings, given(args, "run"), base, where))


def run_settings(args: argparse.Namespace) -> RunSettings:
    """The `[run]` settings alone, for a command without a stage section (`mbert vocab report`)."""
    raw, base, where = load_raw(getattr(args, "recipe", None), getattr(args, "set", None))
    return _section(raw, "run", RunSettings, given(args, "run"), base, where)


def _section(raw: dict, section: str, cls: type[T], flags: dict[str, Any], base: Path, where: str) -> T:
    _lay_flags(raw, section, cls, flags, where)
    return build(cls, raw[section], section=section, where=where, base_dir=base)


def _lay_flags(raw: dict, section: str, cls: type, flags: dict[str, Any], where: str) -> None:
    """Put flag values over `raw[section]`. Paths given as flags are made absolute first: flags are
    relative to the current folder, recipe paths to the recipe."""
    if section in raw and not isinstance(raw[section], dict):
        raise ConfigError(f"{where}[{section}] must be a table of settings, not {raw[section]!r}")
    path_fields = {f.name for f in dataclasses.fields(cls) if f.metadata.get("path")}
    data = raw.setdefault(section, {})
    for key, value in flags.items():
        if value is not None:
            data[key] = _absolute(value) if key in path_fields else value


def _absolute(value: Any) -> Any:
    """Paths given as flags are relative to the current folder (`hf:`-style names are left alone)."""
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    if isinstance(value, dict):
        return {k: _absolute(v) for k, v in value.items()}
    if isinstance(value, (str, Path)) and not is_url(str(value)):
        return str(Path(value).expanduser().absolute())
    return value
