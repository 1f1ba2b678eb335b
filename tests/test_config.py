"""Recipe validation: each class of bad setting gives one line naming key, value and what is allowed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Literal

import pytest

from mbert.config import apply_overrides, build, setting, write_resolved
from mbert.errors import ConfigError
from mbert.recipe import load_recipe


@dataclasses.dataclass
class Example:
    steps: int = setting(10, min=1)
    rate: float = setting(0.5, min=0.0, min_exclusive=True, max=1.0)
    kind: Literal["a", "b"] = setting("a")
    names: list[str] = setting([])
    data: Path | None = setting(None, path="file")
    out: Path = setting(Path("out"), path="out")


def test_defaults_and_values(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    obj = build(Example, {"steps": 3, "rate": 1, "kind": "b", "names": "solo", "data": "x.txt"}, base_dir=tmp_path)
    assert (obj.steps, obj.rate, obj.kind, obj.names) == (3, 1.0, "b", ["solo"])
    assert obj.data == tmp_path / "x.txt"  # inputs resolve against the recipe's folder
    assert obj.out == Path.cwd() / "out"  # outputs against the current folder


@pytest.mark.parametrize("data, fragments", [
    ({"stepz": 3}, ["unknown key", "stepz", "did you mean 'steps'"]),
    ({"steps": "many"}, ["steps", "'many'", "an integer"]),
    ({"steps": True}, ["steps", "an integer"]),
    ({"steps": 0}, ["steps", "out of range", ">= 1"]),
    ({"rate": 0.0}, ["rate", "> 0.0"]),
    ({"rate": 1.5}, ["rate", "<= 1.0"]),
    ({"kind": "c"}, ["kind", "'c'", "one of 'a', 'b'"]),
    ({"names": [1]}, ["names[0]", "a string"]),
    ({"data": "missing.txt"}, ["data", "missing.txt", "does not exist"]),
])
def test_each_class_of_bad_value_is_one_clear_line(tmp_path: Path, data: dict, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        build(Example, data, section="demo", base_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_folder_where_file_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder; a file is expected"):
        build(Example, {"data": str(tmp_path)})


def test_overrides_are_typed() -> None:
    raw = apply_overrides({"pretrain": {"steps": 5}}, ["pretrain.steps=100", "sample.smoothing=0.5",
                                                       "vocab.kind=sentencepiece", "run.wandb=\"off\""])
    assert raw == {"pretrain": {"steps": 100}, "sample": {"smoothing": 0.5},
                   "vocab": {"kind": "sentencepiece"}, "run": {"wandb": "off"}}
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["nonsense"])


def test_environment_variables_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.txt").write_text("x")
    monkeypatch.setenv("MBERT_TEST_ROOT", str(tmp_path))
    assert build(Example, {"data": "${MBERT_TEST_ROOT}/x.txt"}).data == tmp_path / "x.txt"
    assert build(Example, {"data": "${MBERT_UNSET_VAR:-x.txt}"}, base_dir=tmp_path).data == tmp_path / "x.txt"
    with pytest.raises(ConfigError, match="MBERT_UNSET_VAR"):
        build(Example, {"data": "${MBERT_UNSET_VAR}/x.txt"})


def test_whole_recipe_validated_and_resolved_config_round_trips(tmp_path: Path, repo_dir: Path) -> None:
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text(f'[sample]\nsmoothing = 0.5\n[evaluate]\nsuite = "{repo_dir}/eval/default.toml"\n'
                           '[variants.mlm]\n[variants.tlm]\nsteps = 7\n', encoding="utf-8")
    recipe = load_recipe(recipe_file, ["pretrain.steps=3"])
    assert recipe.sample.smoothing == 0.5
    assert recipe.pretrain_variants()["mlm"].steps == 3  # a variant inherits [pretrain]
    assert recipe.pretrain_variants()["tlm"].steps == 7
    written = write_resolved(tmp_path, {"sample": recipe.sample})
    assert tomllib.loads(written.read_text())["sample"]["smoothing"] == 0.5


@pytest.mark.parametrize("name", ["demo", "kit", "mbert-104"])
def test_shipped_recipes_and_their_suites_validate(name: str, repo_dir: Path) -> None:
    from mbert.transfer.suite import load_suite

    recipe = load_recipe(repo_dir / "corpora" / f"{name}.toml", [])
    assert recipe.pretrain_variants() and recipe.corpus.sources
    assert load_suite(recipe.evaluate.suite).tasks
    if name == "mbert-104":  # the real recipe: the 104 languages, BERT-base, the BERT schedule
        from mbert.corpus.languages import registry

        # Chinese Traditional is read from the same zh dump as Simplified: listed, but commented out
        assert set(registry()) - set(recipe.corpus.sources) == {"zh-hant"}
        assert recipe.vocab.size == 119547
        assert (recipe.pretrain.model, recipe.pretrain.batch_size, recipe.pretrain.max_seq_length) == ("base", 256, 128)


def _mbert(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mbert", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize("body, fragment", [
    ("[pretrian]\nsteps = 1\n", "unknown key 'pretrian' (did you mean 'pretrain'?)"),
    ("[sample]\nsmoothing = 1.5\n", "sample.smoothing = 1.5 is out of range"),
    ("[pretrain]\nsteps = \"many\"\n", "pretrain.steps = 'many' is invalid; allowed: an integer"),
    ("[evaluate]\nsuite = \"no/such/suite.toml\"\n", "does not exist"),
    ("[vocab]\nkind = \"wordpeice\"\n", "did you mean 'wordpiece'"),
    ("[sample\n", "not valid TOML"),
    ("[corpus.sources]\nen = [\"no/such/en.txt\"]\n", "no/such/en.txt' of 'en' does not exist"),
    ("[corpus.sources]\nen = [\"no/such/*.txt\"]\n", "matches no file"),
])
def test_bad_recipe_exits_2_with_one_line_and_no_traceback(tmp_path: Path, body: str, fragment: str) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(body, encoding="utf-8")
    result = _mbert("run", str(recipe), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.split("\n") if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text("[sample]\nsmoothing = 0\n", encoding="utf-8")
    result = _mbert("--debug", "run", str(recipe), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr  # the same status as without --debug


@pytest.mark.parametrize("override, fragment", [
    ("sample.smoothing=nan", "sample.smoothing = nan is invalid; allowed: a finite number"),
    ("corpus.shard_mb=inf", "corpus.shard_mb = inf is invalid; allowed: a finite number"),
    ("corpus.chunk_mb=nan", "corpus.chunk_mb = nan is invalid"),
    ("sample.shard_mb=nan", "sample.shard_mb = nan is invalid"),
    ("pretrain.learning_rate=inf", "pretrain.learning_rate = inf is invalid"),
    ("pretrain.dropout=nan", "pretrain.dropout = nan is invalid"),
    ("pretrain.max_grad_norm=nan", "pretrain.max_grad_norm = nan is invalid"),  # clipping silently off
    ("pretrain.batch_size=100000000000000000000", "an integer of at most 64 bits"),
    ("pretrain.batch_size=1000000000", "pretrain.batch_size = 1000000000 is out of range; allowed: >= 1 and <= 1048576"),
    ("pretrain.steps=1000000000000", "pretrain.steps = 1000000000000 is out of range"),
])
def test_non_finite_numbers_and_sizes_that_cannot_fit_are_refused(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_recipe(None, [override])
    assert fragment in str(caught.value)


def test_non_finite_flag_exits_2_before_any_work(tmp_path: Path) -> None:
    result = _mbert("pretrain", "--corpus", "c", "--vocab", "v", "--out", "o", "--lr", "nan", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "mbert: error: pretrain.learning_rate = nan is invalid; allowed: a finite number"
    assert not (tmp_path / "o").exists()
