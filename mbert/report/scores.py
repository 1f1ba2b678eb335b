"""Zero-shot transfer summaries: average over target languages and the transfer gap.

The gap is the source-language score minus the average over every *other* language (XTREME's
"cross-lingual transfer gap"); it is undefined when the task has no source-language result."""

from __future__ import annotations

from dataclasses import dataclass

from .collect import Metrics, Score


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
    """'84.2 ± 1.3' (std only when there were several seeds)."""
    return f"{score.mean:.1f} ± {score.std:.1f}" if score.n_seeds > 1 else f"{score.mean:.1f}"


def all_languages(summaries: list[TaskSummary]) -> list[str]:
    """Union of languages over tasks: source language(s) first, then alphabetical."""
    sources = sorted({s.source for s in summaries if s.source})
    rest = sorted({lang for s in summaries for lang in s.scores} - set(sources))
    return sources + rest
