"""Zero-shot results in W&B: what `mbert evaluate` logs after each model, and the report stage again
for every suite of a run (`report/wandb_log.py`), so both put the same panels under the same keys."""

from __future__ import annotations

from ..figures import heatmap
from ..tracking import Tracker
from .results import Metrics, MetricsJson, parse_metrics
from .summary import all_languages, summarize


def log_eval_metrics(tracker: Tracker, metrics: Metrics | MetricsJson, *, source_language: str = "en",
                     prefix: str = "eval") -> None:
    """Per task a W&B Table (language, role, mean, std, seeds) at `<prefix>/<task>/table` and a bar
    chart; a task × language heat-map at `<prefix>/heatmap` (image, and `<prefix>/heatmap/table` long
    form); summary `<prefix>/<task>/<lang>`, `/target_average`, `/transfer_gap`, and
    `<prefix>/target_average` over tasks. A no-op when the tracker is off."""
    if not tracker.enabled:
        return
    summaries = summarize(parse_metrics(metrics), source_language)
    averages = []
    for task in summaries:
        languages = task.languages
        tracker.table(f"{prefix}/{task.task}/table", ["language", "role", "mean", "std", "n_seeds", "seeds"],
                      [[lang, "source" if lang == task.source else "target", task.scores[lang].mean,
                        task.scores[lang].std, task.scores[lang].n_seeds,
                        " ".join(f"{s:.2f}" for s in task.scores[lang].seeds)] for lang in languages])
        tracker.bar_chart(f"{prefix}/{task.task}/bar", languages, [task.scores[l].mean for l in languages],
                          title=f"{task.task} per language")
        values = {f"{prefix}/{task.task}/{lang}": task.scores[lang].mean for lang in languages}
        if task.target_average is not None:
            values[f"{prefix}/{task.task}/target_average"] = task.target_average
            averages.append(task.target_average)
        if task.gap is not None:
            values[f"{prefix}/{task.task}/transfer_gap"] = task.gap
        tracker.summary(values)
    if summaries:
        tasks, languages = [t.task for t in summaries], all_languages(summaries)
        grid = [[t.scores[l].mean if l in t.scores else None for l in languages] for t in summaries]
        tracker.table(f"{prefix}/heatmap/table", ["task", "language", "score"],
                      [[task, lang, v] for task, row in zip(tasks, grid) for lang, v in zip(languages, row)
                       if v is not None])
        tracker.image_png(f"{prefix}/heatmap", heatmap(tasks, languages, grid, title="score per task and language"))
    if averages:
        tracker.summary({f"{prefix}/target_average": sum(averages) / len(averages)})
