"""Prediction and gold files in XTREME's layout, so XTREME's own `evaluate.py` can score them.

`predictions/<task>/test-<lang>.tsv` and `labels/<task>/test-<lang>.tsv` (the gold answers in the
same layout): token tasks hold one tag per line with a blank line after each sentence;
classification tasks hold one label per line. Run XTREME's
`python evaluate.py --prediction_folder OUT/predictions --label_folder OUT/labels` on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..atomic import atomic_write_text


def format_tags(sentences: Sequence[Sequence[str]]) -> str:
    return "".join("".join(f"{tag}\n" for tag in tags) + "\n" for tags in sentences)


def format_labels(labels: Sequence[str]) -> str:
    return "".join(f"{label}\n" for label in labels)


def write_xtreme(folder: Path, task: str, lang: str, values: Sequence, *, token_task: bool) -> Path:
    path = Path(folder) / task / f"test-{lang}.tsv"
    atomic_write_text(path, format_tags(values) if token_task else format_labels(values))
    return path


def read_xtreme_tags(path: Path) -> list[list[str]]:
    """Read a token-task prediction file back (blank line = end of sentence)."""
    sentences, current = [], []
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        if line.strip():
            current.append(line.strip())
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences
