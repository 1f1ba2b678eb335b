"""Settings of the vocabulary stage (`[vocab]` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import setting


@dataclass
class VocabSettings:
    kind: Literal["wordpiece", "sentencepiece"] = setting("wordpiece")
    size: int = setting(119547, min=10, help="vocabulary size (released mBERT cased: 119,547)")
    uncased: bool = setting(False, help="lower-case and strip accents like the original uncased model")
    force: bool = setting(False, help="replace a different tokenizer already in the output folder")
