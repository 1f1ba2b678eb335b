"""Settings of the evaluation stage (`[evaluate]` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import setting


@dataclass
class EvaluateSettings:
    suite: Path = setting(Path("eval/default.toml"), path="file", help="evaluation suite (TOML)")
