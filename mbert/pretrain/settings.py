"""Settings of the pretraining stage (`[pretrain]` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import setting


@dataclass
class PretrainSettings:
    model: Literal["tiny", "small", "base"] = setting("base", help="architecture preset")
    steps: int = setting(1000, min=1, help="optimizer steps")
    batch_size: int = setting(32, min=1, help="sequences per step (global, before accumulation split)")
    max_seq_length: int = setting(128, min=8, max=8192)
    learning_rate: float = setting(1e-4, min=0.0, min_exclusive=True)
    seed: int = setting(0)
