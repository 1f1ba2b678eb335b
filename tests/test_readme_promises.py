"""What the README promises about every command: the commands it shows exist with the flags and
values it shows (and the reproduction commands a test can run, run); flags win over `--set`, which
wins over the recipe; progress bars, transformers' own included, stay off when stderr is not a
terminal; W&B falls back from online to offline without an API key."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_pretrain import make_mixture, make_vocab  # noqa: E402

SEPARATORS = {";", "&&", "||", "|", "do", "then", "done", "(", ")"}
BAR_VARIABLES = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def readme(repo_dir: Path) -> str:
    return (repo_dir / "README.md").read_text(encoding="utf-8")


def shell_commands(text: str) -> list[list[str]]:
    """Every simple command of the README's ```bash blocks (continuation lines joined, comments
    dropped, split at ; && | do ...), plus every inline `mbert ...` code span."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").split("\n"):
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            command: list[str] = []
            for token in [*lexer, ";"]:
                if token in SEPARATORS or set(token) <= set(";&|<>"):
                    if command:
                        commands.append(command)
                    command = []
                else:
                    command.append(token)
    commands += [shlex.split(span) for span in re.findall(r"`(mbert [^`]+)`", text)]
    return commands


def mbert_arguments(command: list[str]) -> list[str] | None:
    """The arguments of an `mbert` invocation (`mbert`, `.venv/bin/mbert`, `... -m mbert`), else None."""
    for i, token in enumerate(command):
        if token == "mbert" or token.endswith("/mbert"):
            return command[i + 1:]
        if token == "-m" and i + 1 < len(command) and command[i + 1] == "mbert":
            return command[i + 2:]
    return None


def test_every_mbert_command_in_the_readme_exists_with_its_flags_and_values(repo_dir):
    import argparse

    from mbert.cli import build_parser

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    top = build_parser()
    checked = 0
    for command in shell_commands(readme(repo_dir)):
        args = mbert_arguments(command)
        if args is None:
            continue
        parser, path = top, ["mbert"]
        args = [a for a in args if a != "..."]
        while args and args[0].startswith("--") and args[0] in top._option_string_actions:
            args = args[1:]  # --quiet / --debug before the command
        while subcommands(parser) and args and not args[0].startswith("-"):
            assert args[0] in subcommands(parser), f"`{' '.join(command)}`: no command {' '.join(path)} {args[0]}"
            parser = subcommands(parser)[args[0]]
            path.append(args.pop(0))
        assert len(path) > 1 or args == [], f"`{' '.join(command)}` names no command"
        options = parser._option_string_actions
        for i, token in enumerate(args):
            if not token.startswith("--"):
                continue
            flag = token.split("=", 1)[0]
            assert flag in options, f"`{' '.join(command)}`: {' '.join(path)} has no option {flag}"
            action = options[flag]
            value = token.split("=", 1)[1] if "=" in token else (args[i + 1] if i + 1 < len(args) else None)
            if action.choices and value and not value.startswith(("-", "$")):
                for choice in value.split("|"):  # prose shows alternatives as a|b
                    assert choice in action.choices, f"`{' '.join(command)}`: {flag} {choice} is not one of {action.choices}"
        checked += 1
    assert checked >= 40  # the README shows every stage's commands


def test_readme_retrieval_reproduction_prepares_its_inputs_and_names_real_flags(repo_dir, data_dir, tmp_path,
                                                                                capsys):
    """The reproduction block of the retrieval section, run as written up to the alignment command
    (paths under tmp_path); that command (4 minutes) must name existing flags and inputs."""
    from mbert.transfer import alignment

    text = readme(repo_dir)
    section = text[text.index("<!-- section:retrieval -->"):text.index("<!-- section:report -->")]
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[-1]
    block = block.replace("D=../shared/data", f"D={data_dir}").replace("/tmp/", f"{tmp_path}/")
    prepare, align = block.split("python -m mbert.transfer.alignment")
    assert "build_tiny_bert" in prepare
    # `python` is the environment's, as in an activated virtual environment
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", prepare], cwd=repo_dir, capture_output=True, text=True,
                          env=dict(os.environ, PATH=path, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "tiny" / "config.json").is_file() and (tmp_path / "tiny" / "vocab.txt").is_file()
    variables = dict(re.findall(r"(?:^|;\s*)(\w+)=([^;\s]+)", block, re.M))
    words = [re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], word)
             for word in shlex.split(align.replace("\\\n", " "), comments=True)]
    with pytest.raises(SystemExit):
        alignment.main(["--help"])
    help_text = capsys.readouterr().out
    flags = [word for word in words if word.startswith("--")]
    assert {"--parallel", "--tatoeba", "--languages", "--steps"} <= set(flags)
    for flag in flags:
        assert re.search(rf"{flag}\b", help_text), f"python -m mbert.transfer.alignment has no {flag}"
    inputs = [Path(words[0])] + [Path(w) for i, w in enumerate(words) if i and words[i - 1] in ("--tatoeba", "--parallel")]
    inputs += [Path(words[i + 2]) for i, w in enumerate(words) if w == "--parallel"]
    assert len(inputs) == 10 and all(p.exists() for p in inputs), [p for p in inputs if not p.exists()]
    english, german = ((tmp_path / "xnli-par" / f"{lang}.txt").read_text().split("\n") for lang in ("en", "de"))
    assert len(english) == len(german) > 4000  # both columns of XNLI dev, line-aligned


# ----------------------------------------------------------------------------- settings and progress

def test_flags_win_over_set_which_wins_over_the_recipe_and_no_bar_without_a_terminal(data_dir, tmp_path):
    corpus = make_mixture(data_dir, tmp_path / "mixture", max_docs=3)
    vocab = make_vocab(data_dir, tmp_path / "vocab")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("""
[pretrain]
model = "tiny"
steps = 5
batch_size = 4
max_seq_length = 64
learning_rate = 2e-3
tokenize_workers = 1
device = "cpu"
heldout_docs = 1
heldout_instances = 2
""", encoding="utf-8")
    out = tmp_path / "pretrain"
    err = tmp_path / "stderr.txt"
    # the environment as a user's shell has it: not what earlier in-process commands set here
    env = {k: v for k, v in os.environ.items() if k not in BAR_VARIABLES} | {"OMP_NUM_THREADS": "1"}
    with open(err, "w", encoding="utf-8") as stderr:  # a file, as with `mbert pretrain ... 2>file`
        done = subprocess.run([sys.executable, "-m", "mbert", "pretrain", "--recipe", str(recipe), "--corpus",
                               str(corpus), "--vocab", str(vocab), "--out", str(out), "--wandb", "off",
                               "--set", "pretrain.steps=3", "--set", "pretrain.max_seq_length=32", "--steps", "2"],
                              stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    log = err.read_text(encoding="utf-8")
    assert done.returncode == 0, log[-3000:]
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    assert settings["steps"] == 2                # the flag, over --set (3) and the recipe (5)
    assert settings["max_seq_length"] == 32      # --set, over the recipe (64)
    assert settings["batch_size"] == 4 and settings["learning_rate"] == 2e-3  # the recipe, over the defaults
    assert "Pretrained a tiny BERT for 2 steps" in done.stdout
    # no progress bar of ours or of transformers ("Writing model shards" in save_pretrained)
    assert "\r" not in log and "%|" not in log and "Writing model shards" not in log, log


def test_library_bars_stay_off_after_models_are_loaded_quietly(monkeypatch):
    """`mbert evaluate` loads every model inside quiet_transformers(); leaving it must not switch
    transformers' bars back on when they were off (no terminal, --quiet)."""
    from transformers.utils import logging as hf_logging

    from mbert.progress import hide_library_bars
    from mbert.transfer.checkpoints import quiet_transformers

    for name in BAR_VARIABLES:
        monkeypatch.delenv(name, raising=False)  # restored after the test
    hf_logging.enable_progress_bar()
    try:
        hide_library_bars()
        assert not hf_logging.is_progress_bar_enabled()
        with quiet_transformers():
            pass
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()


def test_wandb_online_without_an_api_key_logs_offline(tmp_path, monkeypatch, capsys):
    from mbert.errors import UserError
    from mbert.tracking import Tracker
    from mbert.report.wandb_reader import find_run_file, summary_values, wait_until_finished

    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc with a key either
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / ".config" / "wandb"))
    with Tracker(mode="online", project="mbert-test", stage="report", run_dir=tmp_path / "run") as tracker:
        assert tracker.enabled and tracker.run.settings.mode == "offline"
        tracker.summary({"answer": 42})
        run_path = tracker.run_path
    assert run_path.name.startswith("offline-run-") and run_path.parent == tmp_path / "run" / "wandb"
    assert "no API key found, logging offline" in capsys.readouterr().err
    run_file = wait_until_finished(find_run_file(run_path))  # `wandb sync` uploads this file later
    assert summary_values(run_file)["answer"] == 42
    # a run file without its exit record (still being written by another process) is an error, at once
    torn = tmp_path / "torn" / "run-torn.wandb"
    torn.parent.mkdir()
    torn.write_bytes(run_file.read_bytes()[:len(run_file.read_bytes()) // 2])
    with pytest.raises(UserError, match="no exit record"):
        wait_until_finished(torn)
