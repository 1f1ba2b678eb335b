"""Per-task summaries: every language, the average over target languages, and the transfer gap
(source score minus target average), as a dict and as Markdown tables."""

from __future__ import annotations

Metrics = dict[str, dict[str, dict]]  # task -> language -> {"mean", "std", "seeds"}

METRIC_NAMES = {"pos": "UPOS accuracy", "ner": "entity F1", "pair": "accuracy",
                "tatoeba": "retrieval accuracy", "bucc": "mining F1"}


def metric_name(kind: str, metric: str = "") -> str:
    """What a task's score is, for table headings (`metric` as in the suite, see suite.METRICS)."""
    if kind == "pos" and metric == "f1":
        return "seqeval F1 over UPOS tags, as XTREME"
    if kind == "tatoeba" and metric:
        return f"retrieval accuracy, {metric}"
    return METRIC_NAMES.get(kind, "score")


def task_summary(languages: dict[str, dict], source: str) -> dict:
    """{"source", "target_average", "gap", "targets"}; source/gap are None when the source language
    was not evaluated (e.g. retrieval tasks, which have no source)."""
    targets = [lang for lang in languages if lang != source]
    average = sum(languages[t]["mean"] for t in targets) / len(targets) if targets else None
    source_score = languages[source]["mean"] if source in languages else None
    gap = source_score - average if source_score is not None and average is not None else None
    return {"source": source_score, "target_average": _round(average), "gap": _round(gap),
            "targets": targets}


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "—"
    # retrieval has no fine-tuning, so one score however many seeds: no ± for it
    return f"{entry['mean']:.1f} ± {entry['std']:.1f}" if len(entry["seeds"]) > 1 else f"{entry['mean']:.1f}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def markdown(results: dict[str, Metrics], metric_names: dict[str, str], source: str, seeds: list[int],
             title: str) -> str:
    """One table per task, one column per model: every language, target average, transfer gap.
    `metric_names`: task -> what its score is (see `metric_name`)."""
    models = list(results)
    lines = [f"# {title}", "",
             f"Zero-shot transfer from `{source}`; scores in percent, "
             + (f"mean ± sample std over seeds {seeds}." if len(seeds) > 1 else f"seed {seeds[0]}."),
             "The source language is marked *(source)*; the average is over target languages only.", ""]
    tasks = list(dict.fromkeys(task for metrics in results.values() for task in metrics))
    for task in tasks:
        lines += [f"## {task} ({metric_names.get(task, 'score')})", ""]
        lines.append("| language | " + " | ".join(models) + " |")
        lines.append("|---|" + "---|" * len(models))
        languages = list(dict.fromkeys(lang for m in models for lang in results[m].get(task, {})))
        for lang in languages:
            label = f"{lang} *(source)*" if lang == source else lang
            lines.append(f"| {label} | " + " | ".join(_cell(results[m].get(task, {}).get(lang))
                                                      for m in models) + " |")
        summaries = {m: task_summary(results[m].get(task, {}), source) for m in models}
        lines.append("| **target average** | " + " | ".join(
            f"**{_number(summaries[m]['target_average'])}**" for m in models) + " |")
        lines.append("| transfer gap | " + " | ".join(_number(summaries[m]["gap"]) for m in models) + " |")
        lines.append("")
        lines += _by_layer(results, task)
    return "\n".join(lines)


def _by_layer(results: dict[str, Metrics], task: str) -> list[str]:
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
