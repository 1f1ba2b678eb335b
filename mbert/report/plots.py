"""Report figures drawn with matplotlib, returned as PNG bytes (embedded in HTML, saved for Markdown).

Figures are built with the object API (`matplotlib.figure.Figure`), not pyplot, so no GUI backend
or global figure state is involved."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..figures import png
from ..transfer.summary import TaskSummary
from .collect import TrainLog

STEP_KEYS = ("step", "global_step", "steps")
SOURCE_COLOR, TARGET_COLOR = "#d62728", "#1f77b4"


def curve_groups(keys: Sequence[str]) -> dict[str, list[str]]:
    """Metric keys grouped into panels: 'heldout_loss/de' and 'heldout_loss/fr' share the panel
    'heldout_loss'; a key without '/' gets a panel of its own."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        if key in STEP_KEYS:
            continue
        group = key.rsplit("/", 1)[0] if "/" in key else key
        groups.setdefault(group, []).append(key)
    return groups


def subsample(rows: list[dict[str, float]], max_points: int) -> list[dict[str, float]]:
    if len(rows) <= max_points:
        return rows
    stride = math.ceil(len(rows) / max_points)
    return rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])


def training_curves(logs: Sequence[TrainLog], *, max_points: int = 2000, dpi: int = 110) -> bytes | None:
    """One panel per metric group (loss, mlm_accuracy, lr, held-out loss per language, ...),
    one line style per pretrained model; None when no log has numeric values."""
    logs = [log for log in logs if log.records]
    keys: list[str] = []
    for log in logs:
        for row in log.records:
            keys += [k for k in row if k not in keys]
    groups = curve_groups(keys)
    if not groups:
        return None
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.2 * nrows))
    styles = ["-", "--", ":", "-."]
    for index, (group, members) in enumerate(groups.items()):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        for log_index, log in enumerate(logs):
            rows = subsample(log.records, max_points)
            for key in members:
                points = [(row.get(next((s for s in STEP_KEYS if s in row), ""), float(i)), row[key])
                          for i, row in enumerate(rows) if key in row]
                if not points:
                    continue
                label_parts = ([log.name] if len(logs) > 1 else []) + ([key.rsplit("/", 1)[1]] if "/" in key else [])
                ax.plot([p[0] for p in points], [p[1] for p in points], styles[log_index % len(styles)],
                        marker="o" if len(points) < 3 else None, linewidth=1.3,
                        label=" ".join(label_parts) or None)
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if group in ("lr", "learning_rate"):
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        handles, labels = ax.get_legend_handles_labels()
        if 0 < len(labels) <= 16:  # beyond that a legend hides the curves; the tables have the values
            ax.legend(fontsize=7, ncol=1 + len(labels) // 8)
        elif labels:
            ax.set_title(f"{group} ({len(labels)} series)", fontsize=10)
    fig.tight_layout()
    return png(fig, dpi)


def task_bars(summary: TaskSummary, *, dpi: int = 110) -> bytes:
    """Per-language scores of one task with seed std as error bars; the source language in red,
    the dashed line is the average over target languages."""
    languages = summary.languages
    means = [summary.scores[lang].mean for lang in languages]
    stds = [summary.scores[lang].std for lang in languages]
    fig = Figure(figsize=(max(4.5, (0.45 if len(languages) <= 20 else 0.22) * len(languages) + 1.5), 3.0))
    ax = fig.add_subplot(1, 1, 1)
    colors = [SOURCE_COLOR if lang == summary.source else TARGET_COLOR for lang in languages]
    ax.bar(range(len(languages)), means, yerr=stds if any(stds) else None, color=colors, capsize=2)
    ax.set_xticks(range(len(languages)), labels=languages, fontsize=8, rotation=90 if len(languages) > 15 else 0)
    if summary.target_average is not None:
        ax.axhline(summary.target_average, color="black", linestyle="--", linewidth=1,
                   label=f"target average {summary.target_average:.1f}")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_ylabel("score (0-100)", fontsize=8)
    ax.set_title(summary.task, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png(fig, dpi)


def model_comparison(models: dict[str, list[TaskSummary]], *, dpi: int = 110) -> bytes:
    """Average target-language score per task, one bar per model."""
    tasks = sorted({s.task for summaries in models.values() for s in summaries})
    width = 0.8 / max(1, len(models))
    fig = Figure(figsize=(max(5.0, 1.2 * len(tasks) * max(1, len(models)) / 2 + 2), 3.2))
    ax = fig.add_subplot(1, 1, 1)
    for index, (name, summaries) in enumerate(models.items()):
        by_task = {s.task: s.target_average for s in summaries}
        values = [by_task.get(task) for task in tasks]
        ax.bar([t + (index - (len(models) - 1) / 2) * width for t in range(len(tasks))],
               [np.nan if v is None else v for v in values], width, label=name)
    ax.set_xticks(range(len(tasks)), labels=tasks, fontsize=8)
    ax.set_ylabel("average over target languages", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png(fig, dpi)


def models_by_language(task: str, summaries: dict[str, TaskSummary], *, dpi: int = 110) -> bytes:
    """One task: a group of bars per language (source first), one bar per model, seed std as error
    bars; the headline comparison of pretrained models with their random initialisation."""
    languages = list(dict.fromkeys(lang for s in summaries.values() for lang in s.languages))
    width = 0.8 / max(1, len(summaries))
    fig = Figure(figsize=(max(4.5, 0.35 * len(languages) * len(summaries) + 2), 3.0))
    ax = fig.add_subplot(1, 1, 1)
    for index, (name, summary) in enumerate(summaries.items()):
        scores = [summary.scores.get(lang) for lang in languages]
        xs = [i + (index - (len(summaries) - 1) / 2) * width for i in range(len(languages))]
        ax.bar(xs, [np.nan if s is None else s.mean for s in scores], width,
               yerr=[0.0 if s is None else s.std for s in scores], capsize=2, label=name)
    ax.set_xticks(range(len(languages)), labels=languages, fontsize=8,
                  rotation=90 if len(languages) > 15 else 0)
    ax.set_ylabel("score (0-100)", fontsize=8)
    ax.set_title(f"{task}: every model, source language first (error bars: std over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png(fig, dpi)


def retrieval_layers(task: str, curves: dict[str, dict[str, dict[int, float]]], *, dpi: int = 110) -> bytes:
    """Retrieval accuracy by layer, one colour per model: solid raw, dashed with each language's
    mean vector subtracted (averaged over the task's languages)."""
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    for index, (name, kinds) in enumerate(curves.items()):
        color = f"C{index % 10}"
        for kind, style in (("raw", "-"), ("centered", "--")):
            if kind in kinds:
                layers = sorted(kinds[kind])
                ax.plot(layers, [kinds[kind][k] for k in layers], style, color=color, marker="o", markersize=3,
                        label=f"{name} ({kind})")
    ax.set_xlabel("layer (0 = embeddings)", fontsize=8)
    ax.set_ylabel("accuracy (0-100)", fontsize=8)
    ax.set_title(f"{task}: retrieval accuracy by layer", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png(fig, dpi)


def smoothing(languages: dict[str, dict], exponent: float | None, *, dpi: int = 110) -> bytes | None:
    """p_L (corpus share) against q_L (sampling share) per language, when the sampler drew none."""
    points = [(lang, v["p"], v["q"]) for lang, v in languages.items()
              if isinstance(v, dict) and isinstance(v.get("p"), (int, float)) and isinstance(v.get("q"), (int, float))]
    if not points:
        return None
    points.sort(key=lambda t: -t[1])
    fig = Figure(figsize=(max(5.0, 0.4 * len(points) + 1.5), 3.2))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(points))
    ax.bar(x - 0.2, [p for _, p, _ in points], 0.4, label="p_L (corpus)")
    ax.bar(x + 0.2, [q for _, _, q in points], 0.4, label=f"q_L (sampled{f', S={exponent}' if exponent else ''})")
    ax.set_yscale("log")
    ax.set_xticks(x, labels=[lang for lang, _, _ in points], fontsize=8, rotation=90 if len(points) > 15 else 0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig, dpi)
