"""The stage contract (`mbert/artifact.py`): runtime-only settings never change a fingerprint, output
settings change their stage's and every later one, and one writer at a time per output folder."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from mbert.artifact import differences, is_complete, output_settings, write_manifest, writing
from mbert.cli import main
from mbert.errors import UserError
from mbert.pipeline import STAGE_SECTIONS, STAGES, default_recipe, stage_fingerprints
from mbert.recipe import Recipe, load_recipe


def _fields(recipe: Recipe) -> typing.Iterator[tuple[str, str, dataclasses.Field, object]]:
    """(section, key, field, section object) for every setting of every recipe section."""
    for section in dataclasses.fields(recipe):
        value = getattr(recipe, section.name)
        if dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                yield section.name, field.name, field, value


def _changed(value: object, key: str, tmp_path: Path) -> object:
    """Another value of the same kind (fingerprints do not validate, so any other value will do)."""
    if key == "suite":  # the suite file's bytes enter the evaluate fingerprint: a suite that differs
        other = tmp_path / "suite.toml"
        other.write_bytes(Path(value).read_bytes() + b"\n# changed\n")
        return other
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, Path):
        return value / "changed"
    if isinstance(value, list):
        return [*value, value[0] if value else "changed"]
    if isinstance(value, dict):
        return {**value, "changed": "x"}
    return 1  # None: set


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    return load_recipe(default_recipe())


def test_runtime_settings_never_change_a_fingerprint_and_output_settings_change_theirs_and_later(
        recipe: Recipe, tmp_path: Path) -> None:
    before = stage_fingerprints(recipe)
    owner = {section: stage for stage, sections in STAGE_SECTIONS.items() for section in sections}
    runtime = set()
    for section, key, field, value in _fields(recipe):
        changed = dataclasses.replace(recipe, **{section: dataclasses.replace(
            value, **{key: _changed(getattr(value, key), key, tmp_path)})})
        after = stage_fingerprints(changed)
        if field.metadata.get("runtime"):
            runtime.add(f"{section}.{key}")
            assert after == before, f"runtime-only {section}.{key} changed a fingerprint"
        else:
            first = STAGES.index(owner[section])
            assert [after[s] == before[s] for s in STAGES] == [i < first for i in range(len(STAGES))], \
                f"{section}.{key} must redo {owner[section]} and every later stage, and nothing before"
    # the settings that must never redo work (#13): workers, W&B, logging, devices, intervals
    assert {"corpus.workers", "run.wandb", "run.wandb_project", "run.out", "pretrain.log_every",
            "pretrain.checkpoint_every", "pretrain.device", "pretrain.compile", "evaluate.device",
            "evaluate.threads"} <= runtime


def test_output_settings_and_differences_name_what_changed(recipe: Recipe) -> None:
    settings = recipe.pretrain
    made = output_settings(settings)
    assert "steps" in made and "log_every" not in made and "device" not in made
    runtime_changed = dataclasses.replace(settings, log_every=3, device="cpu", compile=True)
    assert differences(made, output_settings(runtime_changed)) == []
    # a record that still holds runtime keys (older manifests kept every setting) compares the same
    assert differences({**made, "log_every": 99, "device": "cuda"}, output_settings(runtime_changed)) == []
    other = dataclasses.replace(settings, steps=9, learning_rate=0.5)
    assert differences(made, output_settings(other)) == [
        f"learning_rate = {settings.learning_rate!r} there, 0.5 here", f"steps = {settings.steps} there, 9 here"]
    assert differences({"a": {"b": 1}}, {"a": {"b": 2}}, "x.") == ["x.a.b = 1 there, 2 here"]


def test_a_folder_is_complete_only_with_its_manifest_and_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    assert not is_complete(folder)
    write_manifest(folder, {"complete": False})
    assert not is_complete(folder)
    write_manifest(folder, {"complete": True})
    assert is_complete(folder) and not is_complete(folder, "metrics.json")
    (folder / "metrics.json").write_text("{}")
    assert is_complete(folder, "metrics.json")
    (folder / "manifest.json").write_text("{not json")
    assert not is_complete(folder)


@pytest.fixture
def held(tmp_path: Path) -> typing.Iterator[tuple[Path, subprocess.Popen]]:
    """An output folder whose lock another process holds until the test ends."""
    folder = tmp_path / "held"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom mbert.artifact import writing\n"
                               "with writing(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(300)",
         str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield folder, holder
    finally:
        holder.kill()
        holder.wait()


def test_a_second_writer_gets_one_line_naming_the_holder(held, tmp_path: Path, capsys) -> None:
    folder, holder = held
    text = tmp_path / "kk.txt"  # exists (settings are validated first), never read: the lock comes first
    text.write_text("Қазақ тілі — түркі тілдерінің бірі.\n", encoding="utf-8")
    text = str(text)
    commands = [
        ["corpus", "extract", "--lang", "kk", "--source", text, "--out", str(folder), "--wandb", "off"],
        ["corpus", "sample", "--clean", str(tmp_path), "--out", str(folder), "--wandb", "off"],
        ["vocab", "train", "--corpus", str(tmp_path), "--out", str(folder), "--wandb", "off"],
        ["pretrain", "--corpus", str(tmp_path), "--vocab", str(tmp_path), "--out", str(folder), "--wandb", "off"],
        ["evaluate", "--model", str(tmp_path), "--out", str(folder), "--wandb", "off"],
        ["run", "--out", str(folder), "--wandb", "off"],
    ]
    for command in commands:
        assert main(command) == 1, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{folder} is being written by another process (pid {holder.pid}" in err, err
        assert "wait for it to finish" in err
    assert not folder.exists()  # nothing was written
    holder.kill()
    holder.wait()
    with writing(folder):  # the holder is gone: its lock went with it
        assert (folder.parent / ".held.lock").is_file()
    assert not (folder.parent / ".held.lock").exists()  # and a finished writer leaves no lock file


def test_a_writer_that_fails_releases_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with pytest.raises(UserError, match="boom"):
        with writing(folder):
            raise UserError("boom")
    with writing(folder):
        pass
