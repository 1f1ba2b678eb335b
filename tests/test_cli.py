"""The command-line contract other tools script against."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [["corpus", "extract"], ["corpus", "sample"], ["vocab", "train"], ["vocab", "report"],
            ["pretrain"], ["evaluate"], ["report"], ["run"], ["bench", "pretrain"]]

CONTRACT_FLAGS = {
    ("corpus", "extract"): ["--lang", "--source", "--out"],
    ("corpus", "sample"): ["--clean", "--out", "--smoothing", "--target-size"],
    ("vocab", "train"): ["--corpus", "--out", "--size", "--kind"],
    ("vocab", "report"): ["--tokenizer", "--text", "--out"],
    ("pretrain",): ["--corpus", "--vocab", "--out", "--model", "--steps"],
    ("evaluate",): ["--model", "--suite", "--out"],
    ("run",): ["--set", "--from"],
}


def _help(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "mbert", *args, "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_top_level_help_lists_the_stages() -> None:
    text = _help()
    for stage in ("corpus", "vocab", "pretrain", "evaluate", "report", "run"):
        assert stage in text


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_help_shows_an_example(command: list[str]) -> None:
    text = _help(*command)
    assert "example:" in text and f"mbert {' '.join(command)}" in text
    for flag in CONTRACT_FLAGS.get(tuple(command), []):
        assert flag in text, f"{flag} missing from `mbert {' '.join(command)} --help`"
    assert "--recipe" in text or command == ["bench", "pretrain"]
