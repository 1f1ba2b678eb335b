"""A non-editable install (`pip install .`) carries the language registry and the default suite, so the
commands work from any folder, not only beside a source checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def installed(repo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built as a wheel (from a copy, so the checkout gets no build/ folder) and unpacked
    into a folder of its own: what `pip install .` puts in site-packages."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(repo_dir, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "wandb", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "wheel"), str(source)],
                   check=True, cwd=root, timeout=300)
    subprocess.run([*pip, "install", "--no-deps", "--target", str(root / "site"), *map(str, (root / "wheel").glob("*.whl"))],
                   check=True, cwd=root, timeout=300)
    return root / "site"


def test_commands_work_from_any_folder_after_a_plain_install(installed: Path, data_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed), "MBERT_DATA": str(data_dir)}
    out = tmp_path / "clean"
    extract = subprocess.run([sys.executable, "-m", "mbert", "--quiet", "corpus", "extract", "--lang", "kk",
                              "--source", str(data_dir / "corpus" / "kk.txt"), "--out", str(out), "--workers", "1",
                              "--wandb", "off"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert extract.returncode == 0, extract.stderr
    assert '"name": "Kazakh"' in (out / "manifest.json").read_text(encoding="utf-8")
    # `mbert evaluate` reads the default suite from the package: its tasks resolve against MBERT_DATA
    suite = subprocess.run([sys.executable, "-c", "import mbert, sys; from mbert.transfer.settings import "
                            "DEFAULT_SUITE; from mbert.transfer.suite import load_suite; "
                            "print(mbert.__file__); print(sorted(load_suite(DEFAULT_SUITE).tasks))"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert suite.returncode == 0, suite.stderr
    location, tasks = suite.stdout.splitlines()
    assert location.startswith(str(installed)) and "udpos" in tasks
