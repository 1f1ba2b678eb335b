"""Settings of a whole run (`[run]` in a recipe): the run folder and Weights & Biases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .config import setting


@dataclass
class RunSettings:
    out: Path = setting(Path("runs/default"), path="out", runtime=True,
                        help="run folder holding every stage's output")
    wandb: Literal["online", "offline", "off"] = setting(
        "offline", runtime=True, help="Weights & Biases mode (online needs an API key)")
    wandb_project: str = setting("mbert", runtime=True, help="Weights & Biases project")
    report_lines_per_language: int = setting(2000, min=1, help="lines per language for the tokenizer report")
