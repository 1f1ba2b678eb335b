"""`log_run_to_wandb`: a finished run's collected results into one W&B run (the report stage's).

Useful when the stages ran with W&B off, and as the one-page overview of a run in its W&B group:
corpus and mixture tables, the smoothing plot, the tokenizer table, the training curves (as W&B
history), evaluation tables/bar charts/heat-map per suite, language-neutrality plots, summary metrics."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from ..tracking import Tracker
from ..transfer.wandb_metrics import log_eval_metrics
from . import plots
from .collect import RunResults, collect_run, flatten_numbers
from .document import Table
from .sections import CORPUS_COLUMNS, MIXTURE_COLUMNS, matrix_table, neutrality_blocks, neutrality_figures
from .settings import ReportSettings


def _log_table(tracker: Tracker, key: str, data: dict, first: str, preferred: tuple[str, ...] = ()) -> None:
    table = matrix_table(data, first, preferred=preferred)
    if table is not None:
        tracker.table(key, table.columns, table.rows)


def _log_training(tracker: Tracker, results: RunResults, settings: ReportSettings) -> None:
    """Training curves as W&B history against their own x-axis `pretrain/step` (one history row per
    step, merged across models)."""
    by_step: dict[float, dict[str, float]] = {}
    multi = len(results.pretrain) > 1
    for log in results.pretrain:
        prefix = f"pretrain/{log.name}/" if multi else "pretrain/"
        rows = plots.subsample(log.records, settings.max_curve_points)
        for index, row in enumerate(rows):
            step = row.get("step", row.get("global_step", float(index)))
            by_step.setdefault(step, {}).update({prefix + k: v for k, v in row.items() if k not in plots.STEP_KEYS})
        last: dict[str, float] = {}
        for row in log.records:
            last.update(row)
        tracker.summary({f"{prefix}final/{k}": v for k, v in last.items()})
        if log.manifest:
            tracker.summary({f"{prefix}manifest/{k}": v for k, v in flatten_numbers(log.manifest).items()})
    tracker.define_step("pretrain/*", "pretrain/step")
    for step in sorted(by_step):
        tracker.log({**by_step[step], "pretrain/step": step})
    png = plots.training_curves(results.pretrain, max_points=settings.max_curve_points, dpi=settings.figure_dpi)
    if png:
        tracker.image_png("pretrain/curves", png, "training curves from train_log.jsonl")


def _artifact_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")


def log_run_to_wandb(run_dir: Path, tracker: Tracker, *, results: RunResults | None = None,
                     settings: ReportSettings | None = None) -> None:
    """Log everything the report shows to `tracker`'s W&B run; a no-op when the tracker is off."""
    if not tracker.enabled:
        return
    settings = settings or ReportSettings()
    results = results or collect_run(Path(run_dir))
    if results.empty:
        raise UserError(f"{run_dir} holds no stage output to log to W&B; run a stage first")
    summary: dict[str, object] = {"run/stages_complete": sum(s.complete for s in results.stages)}
    if results.corpus is not None:
        languages = results.corpus.get("languages", {})
        _log_table(tracker, "corpus/clean", languages, "language", CORPUS_COLUMNS)
        summary["corpus/languages"] = len(languages)
        for column in CORPUS_COLUMNS:
            values = [v.get(column) for v in languages.values() if isinstance(v, dict)]
            if values and all(isinstance(x, (int, float)) for x in values):
                summary[f"corpus/{column}"] = sum(values)
    if results.mixture is not None:
        _log_table(tracker, "corpus/mixture", results.mixture.get("languages", {}), "language", MIXTURE_COLUMNS)
        if isinstance(results.mixture.get("smoothing"), (int, float)):
            summary["corpus/smoothing"] = results.mixture["smoothing"]
    if results.smoothing_png is not None:
        tracker.image("corpus/smoothing_plot", results.smoothing_png)
    if isinstance(results.vocab_report, dict):
        _log_table(tracker, "vocab/report", results.vocab_report.get("languages", {}), "language")
    if results.vocab_png is not None:
        tracker.image("vocab/report_plot", results.vocab_png)
    if isinstance(results.vocab_manifest, dict):
        summary.update({f"vocab/{k}": v for k, v in flatten_numbers(results.vocab_manifest).items()})
    tracker.summary(summary)
    if results.pretrain:
        _log_training(tracker, results, settings)
    for suite in results.evals:
        source = suite.source_language or settings.source_language
        if suite.metrics:
            log_eval_metrics(tracker, suite.metrics, source_language=source, prefix=f"eval/{suite.name}")
        if len(suite.models) > 1:
            for name in suite.models:
                log_eval_metrics(tracker, suite.models[name], source_language=source,
                                 prefix=f"eval/{suite.name}/{name}")
        for analysis in suite.analyses:
            base = "/".join(x for x in ("analysis", suite.name, analysis.model) if x)
            for image in analysis.images:
                tracker.image(f"{base}/{image.stem}", image)
            tracker.summary({f"{base}/{k}": v for k, v in neutrality_figures(analysis.neutrality).items()})
            for table in neutrality_blocks(analysis.neutrality) if analysis.neutrality is not None else []:
                if isinstance(table, Table) and table.columns[0] == "layer":
                    tracker.table(f"{base}/retrieval_by_layer_table", table.columns, table.rows)
    if settings.wandb_artifacts:
        group = results.run_dir.resolve().name
        if (results.run_dir / "vocab").is_dir():
            tracker.artifact(_artifact_name(group, "vocab"), "vocabulary", results.run_dir / "vocab")
        for log in results.pretrain:
            if (log.path / "model").is_dir():
                tracker.artifact(_artifact_name(group, log.name), "model", log.path / "model")
