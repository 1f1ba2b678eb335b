"""The W&B Report of a run, built programmatically with `wandb-workspaces` (`wandb_workspaces.reports.v2`).

`report_spec` turns a run's collected results into a *specification*: the Report's title, summary
and blocks in the order of report.html, each block and panel named by its `wandb_workspaces`
class with that class's arguments. Every panel points at keys that `log_run_to_wandb` logged to
the report stage's W&B run, and every panel grid shows that one run (selected by its ID), so the
Report shows what this report shows even when the stages ran with W&B off.

The specification is plain JSON in RUN_DIR/report/wandb_report.json; `wandb_publish` turns it into
the Report on W&B: right away with `--wandb online`, or after `wandb sync` of an offline run with
`mbert report RUN_DIR --publish`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact import writing
from ..atomic import atomic_write_json
from ..progress import summary
from ..transfer.results import Metrics
from ..transfer.summary import TaskSummary, score_text, summarize
from . import plots
from .collect import EvalSuite, RunResults, collect_run
from .document import Table, format_value
from .sections import CORPUS_COLUMNS, HEADLINE, headline_table, matrix_table, neutrality_blocks
from .settings import ReportSettings
from .wandb_log import log_run_to_wandb
from .wandb_publish import SPEC_FILE, SPEC_FORMAT, publish

if TYPE_CHECKING:
    from ..tracking import Tracker

TITLE_MAX = 128  # W&B's limit on a Report title
WIDE = {"w": 12, "h": 9}  # half the report's width: tables, charts and images stay readable


@dataclass
class WandbRun:
    """The W&B run whose logged keys the Report's panels show (the report stage's run)."""

    id: str
    name: str
    group: str
    project: str
    entity: str | None
    folder: str  # its local files (the folder `wandb sync` uploads)


# ----------------------------------------------------------------------------- panels
# Keys as `log_run_to_wandb` and `log_eval_metrics` log them (tests read them back from the run file).

def _table(key: str) -> dict:
    return {"type": "WeavePanelSummaryTable", "table_name": key, "layout": WIDE}


def _images(keys: list[str], title: str) -> dict:
    return {"type": "MediaBrowser", "title": title, "media_keys": keys, "num_columns": min(len(keys), 2),
            "layout": WIDE}


def _bar_chart(prefix: str, task: str, title: str) -> dict:
    """The per-language `wandb.plot.bar` chart of `log_eval_metrics`: W&B keeps its data as `<key>_table`."""
    return {"type": "CustomChart", "chart_name": "wandb/bar/v0",
            "query": {"summaryTable": {"tableKey": f"{prefix}/{task}/bar_table"}},
            "chart_fields": {"label": "language", "value": "score"}, "chart_strings": {"title": title},
            "layout": WIDE}


def _bars(metrics: list[str], title: str) -> dict:
    return {"type": "BarPlot", "title": title, "metrics": metrics, "orientation": "v", "layout": WIDE}


def _grid(panels: list[dict]) -> dict:
    return {"type": "PanelGrid", "panels": panels}


def _heading(level: int, text: str) -> dict:
    return {"type": f"H{level}", "text": text}


def _markdown(text: str) -> dict:
    return {"type": "MarkdownBlock", "text": text}


def _paragraph(text: str) -> dict:
    return {"type": "P", "text": text}


def _md_table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return (value if isinstance(value, str) else format_value(value)).replace("|", "\\|")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


# ----------------------------------------------------------------------------- sections

def _models(results: RunResults) -> list[str]:
    return [f"{log.name} ({_model_text(log.manifest)})" for log in results.pretrain]


def _model_text(manifest: dict | None) -> str:
    """'small BERT (layers 6), 800 steps' from a pretrain manifest: preset, shape settings laid over it, steps."""
    manifest = manifest if isinstance(manifest, dict) else {}
    settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
    overrides = ", ".join(f"{k} {settings[k]}" for k in ("layers", "hidden_size", "heads", "intermediate_size")
                          if settings.get(k) is not None)
    shape = f"{settings['model']} BERT" + (f" ({overrides})" if overrides else "") if settings.get("model") else ""
    steps = f"{format_value(manifest['steps'])} steps" if isinstance(manifest.get("steps"), int) else ""
    return ", ".join(x for x in (shape, steps) if x) or "no manifest yet"


def _overview(results: RunResults) -> list[dict]:
    lines: list[str] = []
    if results.corpus is not None:
        languages = {k: v for k, v in results.corpus.get("languages", {}).items() if isinstance(v, dict)}
        totals = ", ".join(f"{format_value(sum(v[c] for v in languages.values()))} {c}" for c in CORPUS_COLUMNS[:3]
                           if languages and all(isinstance(v.get(c), (int, float)) for v in languages.values()))
        lines.append(f"**Corpus**: {len(languages)} languages ({', '.join(sorted(languages))})"
                     + (f": {totals}." if totals else "."))
    if results.mixture is not None:
        mixture = {k: v for k, v in results.mixture.get("languages", {}).items() if isinstance(v, dict)}
        lines.append(f"**Mixture**: q_L ∝ p_L^S with S = {format_value(results.mixture.get('smoothing'))} "
                     f"({results.mixture.get('unit', 'characters')}); ratio > 1 = repeated (over-sampled).")
        ordered = sorted(mixture.items(), key=lambda kv: -(kv[1].get("p") or 0))
        lines.append(_md_table(["language", "p_L", "q_L", "ratio"],
                               [[lang, v.get("p"), v.get("q"), v.get("ratio")] for lang, v in ordered]))
    if isinstance(results.vocab_manifest, dict):
        vocab = results.vocab_manifest
        size = next((vocab[k] for k in ("vocab_size", "size") if isinstance(vocab.get(k), int)), None)
        lines.append(f"**Vocabulary**: {vocab.get('kind', 'shared')}, {format_value(size)} entries.")
    if results.pretrain:
        lines.append("**Pretrained models**: " + "; ".join(_models(results)) + ".")
    for suite in results.evals:
        models = list(suite.models) if len(suite.models) > 1 else []
        tasks = sorted({task for metrics in [suite.metrics, *suite.models.values()] for task in metrics})
        languages = sorted({lang for metrics in [suite.metrics, *suite.models.values()]
                            for scores in metrics.values() for lang in scores})
        lines.append(f"**Evaluation** (suite {suite.name}): {', '.join(tasks) or 'no tasks yet'}; fine-tuned on "
                     f"{suite.source_language or 'the source language'}, scored in {len(languages)} languages "
                     f"({', '.join(languages)})" + (f"; models {', '.join(models)}." if models else "."))
    return [_heading(1, "Overview"), _markdown("\n\n".join(lines) or "The run folder holds no results yet.")]


def _summaries(suite, settings: ReportSettings) -> tuple[str, dict, list[str]]:
    """A suite's source language, each model's task summaries by task, and every task in order."""
    source = suite.source_language or settings.source_language
    by_model = {name: {s.task: s for s in summarize(metrics, source)} for name, metrics in suite.models.items()}
    return source, by_model, list(dict.fromkeys(task for per_task in by_model.values() for task in per_task))


def _headline(results: RunResults, settings: ReportSettings) -> list[dict]:
    """As report.html opens: every model (pretrained variants and random-init) per task on the source and
    the target languages, then per task one bar per model and language, and the language centroids."""
    blocks: list[dict] = []
    for suite in results.evals:
        if len(suite.models) < 2:
            continue
        source, by_model, tasks = _summaries(suite, settings)
        if len(results.evals) > 1:
            blocks.append(_heading(2, f"Suite {suite.name}"))
        columns, rows = headline_table(by_model, tasks, source)
        blocks.append(_markdown(f"Mean ± std over fine-tuning seeds (target avg: the average over target "
                                f"languages, per seed). Fine-tuned on {source}.\n\n" + _md_table(columns, rows)))
        panels = []
        for task in tasks:
            languages = sorted({lang for per_task in by_model.values() if task in per_task
                                for lang in per_task[task].scores}, key=lambda lang: (lang != source, lang))
            scored = [(lang, name) for lang in languages for name, per_task in by_model.items()
                      if task in per_task and lang in per_task[task].scores]
            panels.append(_bars([f"{_prefix(suite, name)}/{task}/{lang}" for lang, name in scored],
                                f"{task}: every model per language"))
        centroids = ["/".join(x for x in ("analysis", suite.name, analysis.model, "centroids") if x)
                     for analysis in suite.analyses if any(i.name == "centroids.png" for i in analysis.images)]
        if centroids:
            panels.append(_images(centroids, "language centroids per model"))
        blocks.append(_grid(panels))
    return [_heading(1, HEADLINE), *blocks] if blocks else []


def _corpus(results: RunResults) -> list[dict]:
    panels = []
    if results.corpus is not None and matrix_table(results.corpus.get("languages", {}), "language"):
        panels.append(_table("corpus/clean"))
    if results.mixture is not None and matrix_table(results.mixture.get("languages", {}), "language"):
        panels.append(_table("corpus/mixture"))
    if results.smoothing_png is not None:
        panels.append(_images(["corpus/smoothing_plot"], "p_L (corpus share) vs q_L (sampling share)"))
    return _section("Corpus", "Clean corpus per language, and the smoothed mixture: q_L ∝ p_L^S, so large "
                    "languages are under-sampled and small ones repeated.", panels)


def _tokenizer(results: RunResults) -> list[dict]:
    panels = []
    if isinstance(results.vocab_report, dict) and matrix_table(results.vocab_report.get("languages", {}), "language"):
        panels.append(_table("vocab/report"))
    if results.vocab_png is not None:
        panels.append(_images(["vocab/report_plot"], "tokenizer report"))
    return _section("Tokenizer", "Fertility (subwords per word), share of words split, UNK rate and character "
                    "coverage per language.", panels)


def _section(title: str, text: str, panels: list[dict]) -> list[dict]:
    """A titled section with its panels in one grid; nothing when there is nothing to show."""
    return [_heading(1, title), _paragraph(text), _grid(panels)] if panels else []


def _pretraining(results: RunResults, settings: ReportSettings) -> list[dict]:
    """Line plots of the history `log_run_to_wandb` logs against `pretrain/step`: one per metric group,
    every model in it; held-out MLM loss per language gets one plot per model."""
    if not results.pretrain:
        return []
    multi = len(results.pretrain) > 1
    logged: dict[str, list[str]] = {}  # train_log key -> W&B keys, in order
    for log in results.pretrain:
        prefix = f"pretrain/{log.name}/" if multi else "pretrain/"
        keys: list[str] = []
        for row in plots.subsample(log.records, settings.max_curve_points):
            keys += [k for k in row if k not in plots.STEP_KEYS and k not in keys]
        for key in keys:
            logged.setdefault(key, []).append(prefix + key)
    panels = []
    for group, keys in plots.curve_groups(list(logged)).items():
        if group == "heldout_loss":
            for log in results.pretrain:
                prefix = f"pretrain/{log.name}/" if multi else "pretrain/"
                mine = sorted(k for key in keys for k in logged[key] if k.startswith(prefix))
                if mine:
                    panels.append({"type": "LinePlot", "title": "held-out MLM loss per language"
                                   + (f" ({log.name})" if multi else ""), "x": "pretrain/step", "y": mine,
                                   "layout": WIDE})
        else:
            panels.append({"type": "LinePlot", "title": group, "x": "pretrain/step",
                           "y": [k for key in keys for k in logged[key]]})
    if any(log.records for log in results.pretrain):
        panels.append(_images(["pretrain/curves"], "training curves (train_log.jsonl)"))
    if not panels:
        return []
    return [_heading(1, "Pretraining"),
            _paragraph("Training curves against the optimizer step" + (", every model in each plot" if multi else "")
                       + "; held-out MLM loss per language on evaluation steps."), _grid(panels)]


def _by_model(suite: EvalSuite) -> dict[str | None, Metrics]:
    """The metrics the evaluation panels show: every model's when the suite compared several
    (logged under eval/<suite>/<model>/), else the suite's own (eval/<suite>/)."""
    return dict(suite.models) if len(suite.models) > 1 else {None: suite.metrics} if suite.metrics else {}


def _prefix(suite: EvalSuite, model: str | None) -> str:
    return "/".join(x for x in ("eval", suite.name, model) if x)


def _task_table(task: str, summaries: dict[str | None, TaskSummary | None], source: str) -> str:
    names = [name or "score" for name in summaries]
    languages = [source] if any(s and s.source for s in summaries.values()) else []
    languages += sorted({lang for s in summaries.values() if s for lang in s.scores} - {source})
    rows = [[f"**{lang}**" if lang == source else lang]
            + [score_text(s.scores[lang]) if s and lang in s.scores else "–" for s in summaries.values()]
            for lang in languages]
    rows.append(["target average"] + [s.target_average if s else None for s in summaries.values()])
    rows.append(["transfer gap"] + [s.gap if s else None for s in summaries.values()])
    return f"{task} (0-100, mean ± std over seeds):\n\n" + _md_table(["language"] + names, rows)


def _evaluation(results: RunResults, settings: ReportSettings) -> list[dict]:
    blocks: list[dict] = []
    multi_suite = len(results.evals) > 1
    for suite in results.evals:
        by_model = _by_model(suite)
        if not by_model:
            continue
        source = suite.source_language or settings.source_language
        summaries = {model: {s.task: s for s in summarize(metrics, source)} for model, metrics in by_model.items()}
        tasks = list(dict.fromkeys(task for per_task in summaries.values() for task in per_task))
        if multi_suite:
            blocks.append(_heading(2, f"Suite {suite.name}"))
        blocks.append(_paragraph(f"Fine-tuned on {source}, tested zero-shot on every language. Transfer gap = "
                                 f"source score − average over target languages (lower is better)."))
        overview = [_images([f"{_prefix(suite, model)}/heatmap" for model in by_model],
                            "score per task and language" + (" (one heat-map per model)" if len(by_model) > 1 else ""))]
        if len(by_model) == 1:  # several models: "Model comparison" puts them side by side
            model, per_task = next(iter(summaries.items()))
            averages = [f"{_prefix(suite, model)}/{task}/target_average" for task, s in per_task.items()
                        if s.target_average is not None]
            if averages:
                overview.append(_bars(averages, "average over target languages per task"))
        blocks.append(_grid(overview))
        for task in tasks:
            per_model = {model: summaries[model].get(task) for model in by_model}
            blocks += [_heading(2 if not multi_suite else 3, f"Task {task}"),
                       _markdown(_task_table(task, per_model, source))]
            panels = []
            for model, task_summary in per_model.items():
                if task_summary is not None:
                    label = f"{task} per language" + (f" ({model})" if model else "")
                    panels += [_bar_chart(_prefix(suite, model), task, label),
                               _table(f"{_prefix(suite, model)}/{task}/table")]
            blocks.append(_grid(panels))
    return [_heading(1, "Zero-shot evaluation"), *blocks] if blocks else []


def _comparison(results: RunResults, settings: ReportSettings) -> list[dict]:
    """Pretrained vs random-init and the variants side by side: per task one bar per model."""
    blocks: list[dict] = []
    for suite in results.evals:
        if len(suite.models) < 2:
            continue
        _, by_model, tasks = _summaries(suite, settings)
        rows = [[task, kind] + [getattr(by_model[name].get(task), attr, None) for name in by_model]
                for task in tasks for kind, attr in (("target average", "target_average"), ("transfer gap", "gap"))]
        if len(results.evals) > 1:
            blocks.append(_heading(2, f"Suite {suite.name}"))
        blocks.append(_markdown(_md_table(["task", "figure", *by_model], rows)))
        panels = []
        for task in tasks:
            for kind, attr in (("target_average", "target_average"), ("transfer_gap", "gap")):
                keys = [f"{_prefix(suite, name)}/{task}/{kind}" for name in by_model
                        if getattr(by_model[name].get(task), attr, None) is not None]
                if keys:
                    panels.append(_bars(keys, f"{task}: {kind.replace('_', ' ')} per model"))
        blocks.append(_grid(panels))
    return [_heading(1, "Model comparison"), *blocks] if blocks else []


def _neutrality(results: RunResults) -> list[dict]:
    blocks: list[dict] = []
    multi = len(results.evals) > 1
    for suite in results.evals:
        for analysis in suite.analyses:
            base = "/".join(x for x in ("analysis", suite.name, analysis.model) if x)
            panels = []
            if analysis.images:
                panels.append(_images([f"{base}/{image.stem}" for image in analysis.images],
                                      "language centroids and retrieval accuracy by layer"))
            tables = neutrality_blocks(analysis.neutrality) if analysis.neutrality is not None else []
            if any(isinstance(t, Table) and t.columns[0] == "layer" for t in tables):
                panels.append(_table(f"{base}/retrieval_by_layer_table"))
            if not panels:
                continue
            label = " ".join(x for x in (f"suite {suite.name}" if multi else "", analysis.model or "") if x)
            if label:
                blocks.append(_heading(2, label[0].upper() + label[1:]))
            blocks.append(_grid(panels))
    if not blocks:
        return []
    return [_heading(1, "Language neutrality"),
            _paragraph("Tatoeba retrieval accuracy per layer, with and without subtracting each language's mean "
                       "vector (Libovický et al. 2019), and the language centroids."),
            *blocks]


def report_spec(results: RunResults, settings: ReportSettings, run: WandbRun) -> dict:
    """The Report of `results` as JSON: sections in the order of report.html."""
    blocks = [{"type": "TableOfContents"}, *_overview(results), *_headline(results, settings), *_corpus(results),
              *_tokenizer(results),
              *_pretraining(results, settings), *_evaluation(results, settings), *_comparison(results, settings),
              *_neutrality(results)]
    return {
        "format": SPEC_FORMAT,
        "title": f"{settings.title}: {run.group}"[:TITLE_MAX],
        "description": f"Zero-shot cross-lingual transfer, run group {run.group}: corpus, vocabulary, "
                       f"pretraining and evaluation (every panel shows the W&B run {run.name}, {run.id}).",
        "project": run.project, "entity": run.entity, "run_dir": str(results.run_dir),
        "run": {"id": run.id, "name": run.name, "group": run.group, "folder": run.folder},
        "runset": {"name": f"{run.name} ({run.id})", "filters": f"ID = '{run.id}'"},
        "blocks": blocks,
    }


def report_to_wandb(run_dir: Path, out_dir: Path, tracker: Tracker, *, results: RunResults | None = None,
                    settings: ReportSettings | None = None) -> Path | None:
    """The W&B side of the report: log the run (`log_run_to_wandb`), write OUT/wandb_report.json for the
    tracker's run, and publish it when the run is online, else say in one line how to publish it later.
    Returns the specification's path (None when the tracker is off)."""
    if not tracker.enabled:
        return None
    settings = settings or ReportSettings()
    results = results or collect_run(Path(run_dir))
    log_run_to_wandb(run_dir, tracker, results=results, settings=settings)
    wandb_run = tracker.run
    run = WandbRun(id=wandb_run.id, name=wandb_run.name, group=wandb_run.group, project=wandb_run.project,
                   entity=None if wandb_run.offline else wandb_run.entity or None, folder=str(tracker.run_path))
    spec = report_spec(results, settings, run)
    path = Path(out_dir) / SPEC_FILE
    with writing(out_dir):  # the report folder's one-writer lock, as while building it
        atomic_write_json(path, spec)
    if wandb_run.offline:
        out = "" if Path(out_dir) == Path(run_dir) / "report" else f" --out {out_dir}"
        summary(f"W&B Report: specification in {path}; to publish it: `wandb sync {run.folder}`, then "
                f"`mbert report {run_dir}{out} --publish`.")
    else:
        summary(f"W&B Report: {publish(spec, path)}")
    return path
