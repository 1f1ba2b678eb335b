"""Flags come from the settings (`mbert.flags`): every field of a stage's settings is a flag whose
name, type, choices, help, default and range are the setting's; an unset flag leaves the recipe."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from mbert import recipe as recipe_module
from mbert.cli import build_parser, main
from mbert.config import allowed_range, is_url, setting
from mbert.corpus.settings import CorpusSettings, SampleSettings
from mbert.flags import add_settings_flags, given, option_strings
from mbert.pretrain.settings import BenchSettings, PretrainSettings
from mbert.report.settings import ReportSettings
from mbert.run_settings import RunSettings
from mbert.transfer.settings import EvaluateSettings
from mbert.vocab.settings import VocabSettings

# command -> (section, settings class, {field: the hand-written flag that sets it})
STAGE_COMMANDS = {
    ("corpus", "extract"): ("corpus", CorpusSettings, {"sources": "--source"}),
    ("corpus", "sample"): ("sample", SampleSettings, {}),
    ("vocab", "train"): ("vocab", VocabSettings, {}),
    ("pretrain",): ("pretrain", PretrainSettings, {"tlm": "--tlm"}),
    ("evaluate",): ("evaluate", EvaluateSettings, {}),
    ("report",): ("report", ReportSettings, {}),
    ("run",): ("run", RunSettings, {}),
    ("bench", "pretrain"): ("bench", BenchSettings, {}),  # not a recipe section: flags only
}


def _command(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def _flags_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions if action.option_strings}


@pytest.mark.parametrize("command", STAGE_COMMANDS, ids=" ".join)
def test_every_setting_of_each_stage_has_a_flag(command: tuple[str, ...]) -> None:
    section, cls, hand_written = STAGE_COMMANDS[command]
    parser = _command(*command)
    flags = _flags_by_dest(parser)
    for field in dataclasses.fields(cls):
        if field.name in hand_written:
            assert hand_written[field.name] in parser._option_string_actions
        else:
            assert f"{section}.{field.name}" in flags, f"mbert {' '.join(command)} has no flag for {section}.{field.name}"
    for name in ("wandb", "wandb_project"):  # the [run] W&B settings, on every stage command
        assert (f"run.{name}" in flags) == (command != ("bench", "pretrain"))


@pytest.mark.parametrize("command", STAGE_COMMANDS, ids=" ".join)
def test_flag_help_choices_default_and_range_are_the_settings(command: tuple[str, ...]) -> None:
    section, cls, _ = STAGE_COMMANDS[command]
    flags = _flags_by_dest(_command(*command))
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        action = flags.get(f"{section}.{field.name}")
        if action is None:
            continue
        assert [o for o in action.option_strings if not o.startswith("--no-")] == option_strings(field)
        assert action.default is argparse.SUPPRESS  # unset: the recipe's value stays
        assert field.metadata["help"], f"{section}.{field.name} has no help"
        help_text = action.help.replace("%%", "%")
        assert help_text.startswith(field.metadata["help"])
        if allowed_range(field.metadata):
            assert f"allowed: {allowed_range(field.metadata)}" in help_text
        default = field.default
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            assert f"default: {default})" in help_text or f"default: {default};" in help_text
        if typing.get_origin(hints[field.name]) is Literal:
            assert action.choices == list(typing.get_args(hints[field.name]))


@dataclass
class _Example:
    count: int = setting(5, min=1, max=9, flag="n", help="how many")
    rate: float | None = setting(None, min=0.0, min_exclusive=True, help="a rate; 100% = 1")
    mode: Literal["a", "b"] = setting("a", help="which mode")
    on: bool = setting(False, help="switch")
    names: list[str] = setting([], help="names")
    folders: dict[str, Path] = setting({}, path="dir", help="name -> folder")
    tables: dict[str, dict[str, int]] = setting({}, help="name -> table")


def _example_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_settings_flags(parser, "ex", _Example)
    return parser


def test_a_field_becomes_a_flag_of_its_type() -> None:
    parser = _example_parser()
    assert given(parser.parse_args([]), "ex") == {}  # nothing given: nothing overrides the recipe
    args = parser.parse_args(["--n", "3", "--rate", "0.5", "--mode", "b", "--on", "--names", "x", "y", "--names", "z",
                              "--folders", "ref=models/ref", "--folders", "other=o", "--tables", "t={k = 1}"])
    assert given(args, "ex") == {"count": 3, "rate": 0.5, "mode": "b", "on": True, "names": ["x", "y", "z"],
                                 "folders": {"ref": "models/ref", "other": "o"}, "tables": {"t": {"k": 1}}}
    assert given(parser.parse_args(["--count", "4", "--no-on"]), "ex") == {"count": 4, "on": False}
    text = parser.format_help()
    assert "--n N, --count N" in text and "{a,b}" in text
    assert "how many (default: 5; allowed: >= 1 and <= 9)" in text
    assert "a rate; 100% = 1 (allowed: > 0.0)" in text  # no default shown for None
    with pytest.raises(argparse.ArgumentError, match="invalid choice"):
        parser.parse_args(["--mode", "c"])
    with pytest.raises(argparse.ArgumentError, match="must look like KEY=VALUE"):
        parser.parse_args(["--folders", "models/ref"])


def test_a_field_of_a_type_without_a_flag_must_be_handled_by_its_command() -> None:
    @dataclass
    class Odd:
        pairs: list[_Example] = setting([], help="tables")

    with pytest.raises(TypeError, match="no flag for the setting pairs"):
        add_settings_flags(argparse.ArgumentParser(), "odd", Odd)
    add_settings_flags(argparse.ArgumentParser(), "odd", Odd, skip=["pairs"])


def test_out_of_range_flag_exits_2_naming_the_settings_range(tmp_path: Path, capsys) -> None:
    assert main(["pretrain", "--corpus", "c", "--vocab", "v", "--out", str(tmp_path / "o"), "--layers", "0"]) == 2
    assert capsys.readouterr().err.strip() == ("mbert: error: pretrain.layers = 0 is out of range; "
                                               "allowed: >= 1 and <= 96")
    with pytest.raises(SystemExit) as stopped:  # a choice outside the setting's: argparse says so, exit 2
        main(["corpus", "sample", "--clean", "c", "--out", "o", "--unit", "words"])
    assert stopped.value.code == 2
    assert "invalid choice: 'words' (choose from 'characters', 'tokens')" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# command, stage function the command calls (replaced by a recorder), recipe section and flags
RECIPE = """
[run]
wandb = "off"
[sample]
smoothing = 0.5
seed = 3
max_repeats = 7.0
[pretrain]
model = "tiny"
steps = 50
learning_rate = 0.001
nsp = true
max_seq_length = 64
[evaluate]
seeds = [4, 5]
threads = 2
[report]
title = "from the recipe"
figure_dpi = 120
"""

CASES = {
    "corpus sample": (["corpus", "sample", "--clean", "{tmp}/clean", "--out", "{tmp}/mix", "--seed", "9"],
                      "mbert.corpus.sample", "sample_mixture", 2,
                      {"smoothing": 0.5, "seed": 9, "max_repeats": 2.0, "unit": "characters"}),
    "pretrain": (["pretrain", "--corpus", "{tmp}/c", "--vocab", "{tmp}/v", "--out", "{tmp}/p", "--steps", "7",
                  "--no-nsp", "--seq-len", "32"],
                 "mbert.pretrain.train", "pretrain", 3,
                 {"model": "tiny", "steps": 7, "learning_rate": 0.001, "nsp": False, "max_seq_length": 32,
                  "batch_size": 2}),
    "evaluate": (["evaluate", "--model", "{tmp}/m", "--out", "{tmp}/e", "--threads", "1"],
                 "mbert.transfer.evaluate", "evaluate", 3, {"seeds": [4, 5], "threads": 1, "max_train_examples": 2}),
    "report": (["report", "{tmp}", "--title", "from a flag"],
               "mbert.report.build", "build_report", 2, {"title": "from a flag", "figure_dpi": 120,
                                                        "max_curve_points": 20}),
}
SETS = {"corpus sample": ["sample.seed=8", "sample.max_repeats=2"],
        "pretrain": ["pretrain.steps=60", "pretrain.batch_size=2"],
        "evaluate": ["evaluate.threads=3", "evaluate.max_train_examples=2"],
        "report": ["report.title=set", "report.max_curve_points=20"]}


@pytest.mark.parametrize("name", CASES)
def test_defaults_then_recipe_then_set_then_flags_from_one_reading_of_the_recipe(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    argv, module, function, settings_at, expected = CASES[name]
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE, encoding="utf-8")
    reads = []
    read_toml = recipe_module.read_toml
    monkeypatch.setattr(recipe_module, "read_toml", lambda path: reads.append(path) or read_toml(path))
    calls = []
    monkeypatch.setattr(importlib.import_module(module), function, lambda *a, **k: calls.append(a))
    argv = [arg.format(tmp=tmp_path) for arg in argv] + ["--recipe", str(recipe)]
    for override in SETS[name]:
        argv += ["--set", override]
    assert main(argv) == 0
    settings = calls[0][settings_at]
    assert {key: getattr(settings, key) for key in expected} == expected
    assert reads == [recipe]  # the stage's section and [run] come from one reading


def test_flags_of_tables_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    (tmp_path / "ref").mkdir()
    monkeypatch.chdir(tmp_path)
    args = parser.parse_args(["corpus", "extract", "--out", "o", "--languages", 'fo={name = "Faroese", script = "Latn"}',
                              "--fake", "en-fake", "--word-order", "shuffled"])
    corpus, run = recipe_module.stage_settings(args, "corpus", CorpusSettings)
    assert corpus.languages["fo"].name == "Faroese" and corpus.fake == ["en-fake"]
    assert corpus.fake_word_order == "shuffled" and run.wandb == "offline"
    args = parser.parse_args(["evaluate", "--out", "o", "--compare", "ref=ref", "--wandb", "off"])
    evaluate, run = recipe_module.stage_settings(args, "evaluate", EvaluateSettings)
    assert evaluate.compare == {"ref": tmp_path / "ref"} and run.wandb == "off"  # relative to the current folder


def test_url_or_path() -> None:
    assert is_url("hf:bert-base-multilingual-cased") and is_url("https://example.org/x")
    assert not is_url("runs/demo") and not is_url("/abs/path") and not is_url("C:\\data")


def test_stage_command_modules_import_without_the_top_level_cli() -> None:
    """No cycle: each command module builds on mbert.flags, never on mbert.cli, which only assembles."""
    modules = ["mbert.corpus.cli", "mbert.vocab.cli", "mbert.pretrain.cli", "mbert.transfer.cli", "mbert.report.cli",
               "mbert.run_cli", "mbert.bench_cli"]
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    for loaded in [m for m in sys.modules if m.startswith('mbert')]:\n"
            "        del sys.modules[loaded]\n"
            "    importlib.import_module(name)\n"
            "    assert 'mbert.cli' not in sys.modules, name + ' imports mbert.cli'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
