"""Per-task summaries of zero-shot results, the one place they are computed: every language, the
average over target languages, and the transfer gap, as `TaskSummary` and as Markdown tables.

The gap is the source-language score minus the average over every *other* language (XTREME's
"cross-lingual transfer gap"); it is undefined when the task has no source-language result
(retrieval tasks have none)."""

from __future__ import annotations

from dataclasses import dataclass

from .results import Metrics, MetricsJson, Score, parse_metrics

METRIC_NAMES = {"pos": "UPOS accuracy", "ner": "entity F1", "pair": "accuracy",
                "tatoeba": "retrieval accuracy", "bucc": "mining F1"}


def metric_name(kind: str, metric: str = "") -> str:
    """What a task's score is, for table headings (`metric` as in the suite, see suite.METRICS)."""
    if kind == "pos" and metric == "f1":
        return "seqeval F1 over UPOS tags, as XTREME"
    if kind == "tatoeba" and metric:
        return f"retrieval accuracy, {metric}"
    return METRIC_NAMES.get(kind, "score")


@dataclass
class TaskSummary:
    task: str
    scores: dict[str, Score]
    source: str | None          # the source language, if the task has a result for it
    target_average: float | None
    gap: float | None
    source_language: str = "en"  # the fine-tuning language, whether or not the task scored it

    @property
    def languages(self) -> list[str]:
        """Source first, then the targets alphabetically."""
        targets = sorted(lang for lang in self.scores if lang != self.source)
        return ([self.source] if self.source else []) + targets

    @property
    def targets(self) -> list[str]:
        return [lang for lang in self.languages if lang != self.source]


def summarize_task(task: str, scores: dict[str, Score], source_language: str) -> TaskSummary:
    source = source_language if source_language in scores else None
    targets = [s.mean for lang, s in scores.items() if lang != source]
    average = sum(targets) / len(targets) if targets else None
    gap = scores[source].mean - average if source is not None and average is not None else None
    return TaskSummary(task=task, scores=scores, source=source, target_average=average, gap=gap,
                       source_language=source_language)


def summarize(metrics: Metrics, source_language: str) -> list[TaskSummary]:
    return [summarize_task(task, scores, source_language) for task, scores in metrics.items()]


def score_text(score: Score) -> str:
    """'84.2 ± 1.3' (std only when there were several seeds: retrieval has one score however many)."""
    return f"{score.mean:.1f} ± {score.std:.1f}" if score.n_seeds > 1 else f"{score.mean:.1f}"


def all_languages(summaries: list[TaskSummary]) -> list[str]:
    """Union of languages over tasks: source language(s) first, then alphabetical."""
    sources = sorted({s.source for s in summaries if s.source})
    rest = sorted({lang for s in summaries for lang in s.scores} - set(sources))
    return sources + rest


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def markdown(results: dict[str, MetricsJson], metric_names: dict[str, str], source: str, seeds: list[int],
             title: str) -> str:
    """One table per task, one column per model: every language, target average, transfer gap.
    `metric_names`: task -> what its score is (see `metric_name`)."""
    models = list(results)
    parsed = {model: parse_metrics(metrics) for model, metrics in results.items()}
    lines = [f"# {title}", "",
             f"Zero-shot transfer from `{source}`; scores in percent, "
             + (f"mean ± sample std over seeds {seeds}." if len(seeds) > 1 else f"seed {seeds[0]}."),
             "The source language is marked *(source)*; the average is over target languages only.", ""]
    tasks = list(dict.fromkeys(task for metrics in results.values() for task in metrics))
    for task in tasks:
        lines += [f"## {task} ({metric_names.get(task, 'score')})", ""]
        lines.append("| language | " + " | ".join(models) + " |")
        lines.append("|---|" + "---|" * len(models))
        scores = {m: parsed[m].get(task, {}) for m in models}
        for lang in dict.fromkeys(lang for m in models for lang in scores[m]):
            label = f"{lang} *(source)*" if lang == source else lang
            lines.append(f"| {label} | " + " | ".join(score_text(scores[m][lang]) if lang in scores[m] else "—"
                                                      for m in models) + " |")
        summaries = [summarize_task(task, scores[m], source) for m in models]
        lines.append("| **target average** | " + " | ".join(
            f"**{_number(s.target_average)}**" for s in summaries) + " |")
        lines.append("| transfer gap | " + " | ".join(_number(s.gap) for s in summaries) + " |")
        lines.append("")
        lines += _by_layer(results, task)
    return "\n".join(lines)


def _by_layer(results: dict[str, MetricsJson], task: str) -> list[str]:
    """Retrieval scores at every recorded layer, raw and centred, with the best layer marked as such
    (chosen on these test scores; the task's headline above stays at its configured layer)."""
    rows = [(model, lang, entry) for model, metrics in results.items()
            for lang, entry in metrics.get(task, {}).items() if "by_layer" in entry]
    if not rows:
        return []
    layers = sorted({int(k) for _, _, e in rows for scores in e["by_layer"].values() for k in scores})
    lines = [f"### {task} by layer (0 = embeddings; best layer picked on these test scores)", "",
             "| model | language | vectors | " + " | ".join(f"layer {k}" for k in layers) + " | best layer |",
             "|---|---|---|" + "---|" * (len(layers) + 1)]
    for model, lang, entry in rows:
        for kind, scores in entry["by_layer"].items():
            best = entry.get("best_layer", {}).get(kind)
            cells = [_number(scores.get(str(k))) for k in layers]
            best_cell = f"{best['layer']} ({best['score']:.1f})" if best else "—"
            lines.append(f"| {model} | {lang} | {kind} | " + " | ".join(cells) + f" | {best_cell} |")
    return lines + [""]
