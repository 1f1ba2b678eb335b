"""Evaluation results as read back from `metrics.json`: task -> language -> `Score`.

`metrics.json` holds, per task and language, {"mean", "std", "seeds": [per-seed scores]} (0-100),
retrieval tasks also "by_layer"/"best_layer"; `parse_metrics` reads that shape (and bare numbers,
as other tools write them) and leaves out entries of any other shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Score:
    """One task × language result in 0-100: mean and std over fine-tuning seeds."""

    mean: float
    std: float = 0.0
    seeds: list[float] = field(default_factory=list)
    n_seeds: int = 1
    by_layer: dict[str, dict[int, float]] | None = None  # retrieval: {"raw"|"centered": {layer: score}}


Metrics = dict[str, dict[str, Score]]  # task -> language -> score
MetricsJson = dict[str, dict[str, dict]]  # the same as `metrics.json` holds it (what `evaluate` writes)


def _score(value: Any) -> Score | None:
    if isinstance(value, Score):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Score(mean=float(value))
    if not isinstance(value, dict) or not isinstance(value.get("mean"), (int, float)):
        return None
    seeds_raw = value.get("seeds")
    seeds = [float(s) for s in seeds_raw if isinstance(s, (int, float))] if isinstance(seeds_raw, list) else []
    n_seeds = len(seeds) if seeds else int(seeds_raw) if isinstance(seeds_raw, int) else 1
    std = value.get("std")
    return Score(mean=float(value["mean"]), std=float(std) if isinstance(std, (int, float)) else 0.0,
                 seeds=seeds, n_seeds=n_seeds, by_layer=_by_layer(value.get("by_layer")))


def _by_layer(value: Any) -> dict[str, dict[int, float]] | None:
    """{"raw": {"0": 12.5, ...}, "centered": {...}} with integer layers; None for any other shape."""
    if not isinstance(value, dict):
        return None
    curves = {kind: {int(layer): float(score) for layer, score in scores.items()
                     if str(layer).isdigit() and isinstance(score, (int, float))}
              for kind, scores in value.items() if isinstance(scores, dict)}
    return {kind: dict(sorted(c.items())) for kind, c in curves.items() if c} or None


def parse_metrics(data: Any) -> Metrics:
    """task -> lang -> {mean, std, seeds}; entries of another shape (metadata) are left out."""
    metrics: Metrics = {}
    if not isinstance(data, dict):
        return metrics
    for task, langs in data.items():
        if not isinstance(langs, dict):
            continue
        scores = {lang: s for lang, v in langs.items() if (s := _score(v)) is not None}
        if scores:
            metrics[task] = scores
    return metrics
