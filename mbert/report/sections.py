"""Turn collected run results into the report's sections (a `Document`), format-neutral."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..figures import heatmap
from ..transfer.summary import TaskSummary, all_languages, score_text, summarize
from . import plots
from .collect import EvalSuite, RunResults
from .document import Block, Code, Document, Figure, Heading, Section, Table, Text, format_value
from .settings import ReportSettings

CORPUS_COLUMNS = ("documents", "sentences", "characters", "bytes")
MIXTURE_COLUMNS = ("p", "q", "target", "achieved", "ratio")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower() or "figure"


def scalar_table(data: dict, caption: str = "", skip: tuple[str, ...] = ()) -> Table | None:
    rows = [[key, value] for key, value in data.items() if _is_scalar(value) and key not in skip]
    return Table(["setting", "value"], rows, caption) if rows else None


def matrix_table(data: dict[str, dict], first: str, caption: str = "", preferred: tuple[str, ...] = (),
                 total: bool = False) -> Table | None:
    """Rows = outer keys, columns = scalar inner keys (preferred ones first); optional total row."""
    rows_data = {k: v for k, v in data.items() if isinstance(v, dict)}
    if not rows_data:
        return None
    keys: list[str] = [k for k in preferred if any(k in v for v in rows_data.values())]
    for values in rows_data.values():
        keys += [k for k, v in values.items() if k not in keys and _is_scalar(v)]
    rows = [[name] + [values.get(k) for k in keys] for name, values in rows_data.items()]
    emphasis = set()
    if total and len(rows) > 1:
        sums = []
        for i, key in enumerate(keys):
            column = [row[i + 1] for row in rows]
            summable = key in CORPUS_COLUMNS + ("target", "achieved") and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in column)
            sums.append(sum(column) if summable else None)
        rows.append(["total"] + sums)
        emphasis.add("total")
    return Table([first] + keys, rows, caption, emphasis)


def json_blocks(data: Any, title: str) -> list[Block]:
    """A JSON result of unknown shape as readable tables, falling back to the JSON text."""
    if not isinstance(data, dict):
        return [Code(title, json.dumps(data, indent=2, ensure_ascii=False), "json")]
    blocks: list[Block] = []
    if (table := scalar_table(data, title)) is not None:
        blocks.append(table)
    for key, value in data.items():
        if _is_scalar(value):
            continue
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            if (table := matrix_table(value, "", f"{title}: {key}")) is not None:
                blocks.append(table)
                continue
        if isinstance(value, dict) and value and all(_is_scalar(v) for v in value.values()):
            blocks.append(Table([key, "value"], [[k, v] for k, v in value.items()], f"{title}: {key}"))
            continue
        if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()) \
                and len({len(v) for v in value.values()}) == 1 and all(_is_scalar(x) for v in value.values() for x in v):
            columns = list(value)
            length = len(next(iter(value.values())))
            blocks.append(Table(["#"] + columns, [[i] + [value[c][i] for c in columns] for i in range(length)],
                                f"{title}: {key}"))
            continue
        if isinstance(value, list) and value and all(_is_scalar(v) for v in value):
            blocks.append(Text(f"{key}: " + ", ".join(format_value(v) for v in value)))
            continue
        blocks.append(Code(f"{title}: {key}", json.dumps(value, indent=2, ensure_ascii=False), "json"))
    return blocks


# ----------------------------------------------------------------------------- sections

def _overview(results: RunResults, highlights: list[list[Any]]) -> Section:
    rows = [[s.stage, str(s.path.relative_to(results.run_dir)), "complete" if s.complete else
             "incomplete (no completion manifest)"] for s in results.stages]
    blocks: list[Block] = [Table(["stage", "folder", "status"], rows, "Stages found in the run folder")]
    if highlights:
        blocks.append(Table(["figure", "value"], highlights, "Key figures"))
    return Section("Overview", blocks)


def _configuration(results: RunResults) -> Section | None:
    if not results.configs:
        return None
    blocks: list[Block] = [Text("Settings each stage was produced with (its resolved_config.toml).")]
    blocks += [Code(label, text, "toml") for label, text in results.configs.items()]
    return Section("Run configuration", blocks)


def _corpus(results: RunResults, settings: ReportSettings, highlights: list) -> Section | None:
    blocks: list[Block] = []
    if results.corpus is not None:
        languages = results.corpus.get("languages", {})
        blocks.append(Heading(f"Clean corpus ({len(languages)} languages)"))
        if (table := matrix_table(languages, "language", "corpus/clean/manifest.json", CORPUS_COLUMNS,
                                  total=True)) is not None:
            blocks.append(table)
        if (table := scalar_table(results.corpus, "Corpus settings", skip=("complete",))) is not None:
            blocks.append(table)
        highlights.append(["corpus languages", len(languages)])
        chars = sum(v.get("characters", 0) for v in languages.values() if isinstance(v, dict)
                    and isinstance(v.get("characters"), (int, float)))
        if chars:
            highlights.append(["corpus characters", int(chars)])
    if results.mixture is not None:
        mixture = results.mixture
        languages = mixture.get("languages", {})
        smoothing = mixture.get("smoothing")
        blocks.append(Heading("Sampled mixture"))
        blocks.append(Text(f"Exponential smoothing q_L ∝ p_L^S with S = {format_value(smoothing)}"
                           f" (unit: {mixture.get('unit', 'characters')}); ratio > 1 means a language is "
                           f"repeated (over-sampled), < 1 that it is under-sampled."))
        ordered = dict(sorted(languages.items(), key=lambda kv: -(kv[1].get("p") or 0)
                              if isinstance(kv[1], dict) and isinstance(kv[1].get("p"), (int, float)) else 0))
        if (table := matrix_table(ordered, "language", "corpus/mixture/manifest.json", MIXTURE_COLUMNS,
                                  total=True)) is not None:
            blocks.append(table)
        if (table := scalar_table(mixture, "Mixture settings", skip=("complete",))) is not None:
            blocks.append(table)
        highlights.append(["smoothing S", smoothing])
    if results.smoothing_png is not None:
        blocks.append(Figure("smoothing", results.smoothing_png.read_bytes(),
                             "p_L (corpus share) vs q_L (sampling share), from corpus/mixture/smoothing.png"))
    elif results.mixture is not None:
        png = plots.smoothing(results.mixture.get("languages", {}), results.mixture.get("smoothing"),
                              dpi=settings.figure_dpi)
        if png:
            blocks.append(Figure("smoothing", png, "p_L (corpus share) vs q_L (sampling share), log scale"))
    return Section("Corpus", blocks) if blocks else None


def _tokenizer(results: RunResults, highlights: list) -> Section | None:
    blocks: list[Block] = []
    if results.vocab_manifest is not None and (table := scalar_table(results.vocab_manifest, "vocab/manifest.json",
                                                                     skip=("complete",))) is not None:
        blocks.append(table)
        for key in ("vocab_size", "size"):
            if isinstance(results.vocab_manifest.get(key), int):
                highlights.append(["vocabulary size", results.vocab_manifest[key]])
                break
    if isinstance(results.vocab_report, dict):
        report = results.vocab_report
        if (table := matrix_table(report.get("languages", {}), "language",
                                  "Tokenizer quality per language (vocab/report/report.json)")) is not None:
            blocks.append(table)
        rest = {k: v for k, v in report.items() if k != "languages"}
        blocks += json_blocks(rest, "Tokenizer report") if rest else []
    if results.vocab_png is not None:
        blocks.append(Figure("tokenizer_report", results.vocab_png.read_bytes(), "vocab/report/report.png"))
    return Section("Tokenizer", blocks) if blocks else None


def _pretraining(results: RunResults, settings: ReportSettings, highlights: list) -> Section | None:
    if not results.pretrain:
        return None
    blocks: list[Block] = []
    png = plots.training_curves(results.pretrain, max_points=settings.max_curve_points, dpi=settings.figure_dpi)
    if png:
        blocks.append(Figure("training_curves", png, "Training curves from train_log.jsonl"
                             + (" (line style = model)" if len(results.pretrain) > 1 else "")))
    for log in results.pretrain:
        label = log.name if len(results.pretrain) > 1 else "model"
        if log.records:
            last: dict[str, float] = {}
            for row in log.records:
                last.update(row)
            step = next((last[k] for k in plots.STEP_KEYS if k in last), len(log.records))
            blocks.append(Table(["metric", "last value"], [[k, v] for k, v in last.items() if k not in plots.STEP_KEYS],
                                f"{label}: last logged values (step {format_value(step)}, {len(log.records)} log lines)"))
            if "loss" in last:
                highlights.append([f"final training loss ({label})", last["loss"]])
        else:
            blocks.append(Text(f"{label}: no train_log.jsonl lines yet."))
        if log.manifest:
            # settings are in the configuration section; the rest (tokens, held-out loss, ...) here
            shown = {k: v for k, v in log.manifest.items() if k not in ("complete", "settings", "stage")}
            blocks += json_blocks(shown, f"{label}: pretrain manifest")
    return Section("Pretraining", blocks)


def _task_table(summary: TaskSummary) -> Table:
    rows: list[list[Any]] = []
    for lang in summary.languages:
        score = summary.scores[lang]
        role = "source" if lang == summary.source else "target"
        rows.append([lang, role, score_text(score), score.n_seeds, ", ".join(f"{s:.1f}" for s in score.seeds)])
    rows.append(["average (targets)", "", "–" if summary.target_average is None else f"{summary.target_average:.1f}",
                 "", ""])
    if summary.gap is not None:
        rows.append([f"transfer gap ({summary.source} − average)", "", f"{summary.gap:.1f}", "", ""])
    else:
        rows.append(["transfer gap", "", f"– (no {summary.source_language} result)", "", ""])
    return Table(["language", "role", "score (mean ± std)", "seeds", "per-seed scores"], rows,
                 f"{summary.task}: zero-shot transfer, scores 0-100",
                 {summary.source or "", "average (targets)"} | {rows[-1][0]})


def _summary_table(summaries: list[TaskSummary], caption: str) -> Table:
    rows = [[s.task, s.source or "–", s.scores[s.source].mean if s.source else None, s.target_average, s.gap,
             len(s.targets)] for s in summaries]
    return Table(["task", "source", "source score", "target average", "transfer gap", "target languages"],
                 rows, caption)


def _heatmap_figure(name: str, summaries: list[TaskSummary], title: str, dpi: int) -> Figure:
    languages = all_languages(summaries)
    values = [[s.scores[lang].mean if lang in s.scores else None for lang in languages] for s in summaries]
    return Figure(name, heatmap([s.task for s in summaries], languages, values, title=title, dpi=dpi),
                  "Task × language scores (0-100); grey = not evaluated")


def _suite_blocks(suite: EvalSuite, source: str, settings: ReportSettings, highlights: list,
                  multi_suite: bool) -> list[Block]:
    prefix = f"{suite.name}_" if multi_suite else ""
    blocks: list[Block] = []
    if multi_suite:
        blocks.append(Heading(f"Suite {suite.name}"))
    blocks.append(Text(f"Fine-tuned on {source}, tested zero-shot on every language. Transfer gap = "
                       f"source score − average over target languages (lower is better)."))
    summaries = summarize(suite.metrics, source)
    if summaries:
        blocks.append(_summary_table(summaries, "All tasks"))
        blocks.append(_heatmap_figure(f"{prefix}heatmap", summaries, "score per task and language", settings.figure_dpi))
        for summary in summaries:
            blocks.append(Heading(f"Task {summary.task}"))
            blocks.append(_task_table(summary))
            blocks.append(Figure(f"{prefix}bars_{_slug(summary.task)}", plots.task_bars(summary, dpi=settings.figure_dpi),
                                 f"{summary.task}: source in red, dashed = target average, error bars = std over seeds"))
            if summary.target_average is not None:
                highlights.append([f"{suite.name} {summary.task}: target average", round(summary.target_average, 2)])
    if suite.summary_md:
        blocks.append(Code("summary.md written by the evaluate stage", suite.summary_md, "markdown"))
    return blocks


def _comparison_blocks(suite: EvalSuite, source: str, settings: ReportSettings, multi_suite: bool) -> list[Block]:
    prefix = f"{suite.name}_" if multi_suite else ""
    by_model = {name: summarize(metrics, source) for name, metrics in suite.models.items()}
    names = list(by_model)
    blocks: list[Block] = [Heading(f"Suite {suite.name}")] if multi_suite else []
    tasks = sorted({s.task for summaries in by_model.values() for s in summaries})
    rows = []
    for task in tasks:
        for kind in ("target average", "transfer gap"):
            row: list[Any] = [task, kind]
            for name in names:
                found = next((s for s in by_model[name] if s.task == task), None)
                value = None if found is None else found.target_average if kind == "target average" else found.gap
                row.append(value)
            rows.append(row)
    blocks.append(Table(["task", "figure"] + names, rows, "Average over target languages and transfer gap per model"))
    blocks.append(Figure(f"{prefix}model_comparison", plots.model_comparison(by_model, dpi=settings.figure_dpi),
                         "Average target-language score per task and model"))
    for task in tasks:
        per_model = {name: next((s for s in by_model[name] if s.task == task), None) for name in names}
        languages = all_languages([s for s in per_model.values() if s is not None])
        table_rows = [[lang] + [score_text(s.scores[lang]) if s is not None and lang in s.scores else "–"
                                for s in per_model.values()] for lang in languages]
        blocks.append(Table(["language"] + names, table_rows, f"{task}: score per language and model",
                            {source}))
    return blocks


def _suite_source(suite: EvalSuite, settings: ReportSettings) -> str:
    return suite.source_language or settings.source_language


def _evaluation(results: RunResults, settings: ReportSettings, highlights: list) -> list[Section]:
    sections = []
    multi = len(results.evals) > 1
    blocks: list[Block] = []
    for suite in results.evals:
        if suite.metrics:
            blocks += _suite_blocks(suite, _suite_source(suite, settings), settings, highlights, multi)
    if blocks:
        sections.append(Section("Zero-shot evaluation", blocks))
    compare: list[Block] = []
    for suite in results.evals:
        if len(suite.models) > 1:
            compare += _comparison_blocks(suite, _suite_source(suite, settings), settings, multi)
    if compare:
        sections.append(Section("Model comparison", compare))
    return sections


HEADLINE = "Headline: pretrained models against random initialisation"
NEUTRALITY_CAPTIONS = {
    "centroids.png": "Language centroids: mean-pooled sentence representations per language, PCA to 2-D",
    "retrieval_by_layer.png": "Tatoeba retrieval accuracy per layer, with and without subtracting each "
                              "language's mean vector (Libovický et al. 2019)"}


def _numbers(values: Any) -> list[float] | None:
    if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
        return [float(v) for v in values]
    return None


def neutrality_figures(data: Any) -> dict[str, Any]:
    """Headline numbers of language_neutrality.json (last-layer and best centred accuracy); {} if
    the file has another shape."""
    if not isinstance(data, dict) or not isinstance(data.get("accuracy"), dict):
        return {}
    raw, centered = _numbers(data["accuracy"].get("raw")), _numbers(data["accuracy"].get("centered"))
    layers = data.get("layers") if isinstance(data.get("layers"), list) else list(range(len(raw or centered or [])))
    figures: dict[str, Any] = {}
    if raw:
        figures["raw_last_layer"] = raw[-1]
    if centered:
        best = max(range(len(centered)), key=centered.__getitem__)
        figures.update(centered_last_layer=centered[-1], best_centered=centered[best],
                       best_centered_layer=layers[best] if best < len(layers) else best)
    return figures


def neutrality_blocks(data: Any) -> list[Block]:
    """language_neutrality.json as tables: accuracy by layer, per language, centroid coordinates."""
    accuracy = data.get("accuracy") if isinstance(data, dict) else None
    if not isinstance(accuracy, dict):
        return json_blocks(data, "language_neutrality.json")
    blocks: list[Block] = []
    if isinstance(data.get("metric"), str):
        blocks.append(Text(f"Metric: {data['metric']}."))
    raw, centered = _numbers(accuracy.get("raw")) or [], _numbers(accuracy.get("centered")) or []
    layers = data.get("layers") if isinstance(data.get("layers"), list) else list(range(max(len(raw), len(centered))))
    rows = []
    for i, layer in enumerate(layers):
        r = raw[i] if i < len(raw) else None
        c = centered[i] if i < len(centered) else None
        rows.append([layer, r, c, c - r if r is not None and c is not None else None])
    blocks.append(Table(["layer", "raw", "centred", "centred − raw"], rows,
                        "Retrieval accuracy by layer, averaged over languages"))
    per_language = data.get("per_language")
    if isinstance(per_language, dict) and per_language:
        lang_rows = []
        for lang, entry in per_language.items():
            if not isinstance(entry, dict):
                continue
            lang_raw, lang_centered = _numbers(entry.get("raw")) or [], _numbers(entry.get("centered")) or []
            best = max(range(len(lang_centered)), key=lang_centered.__getitem__) if lang_centered else None
            lang_rows.append([lang, entry.get("sentences"), lang_raw[-1] if lang_raw else None,
                              lang_centered[-1] if lang_centered else None,
                              None if best is None else layers[best] if best < len(layers) else best])
        blocks.append(Table(["language", "sentences", "raw (last layer)", "centred (last layer)",
                             "best centred layer"], lang_rows, "Retrieval accuracy per language (xx ↔ en)"))
    centroids = data.get("centroids_2d")
    if isinstance(centroids, dict) and centroids:
        variance = _numbers(data.get("pca_explained_variance"))
        caption = f"Centroid coordinates (PCA of layer {format_value(data.get('centroid_layer'))}"
        caption += f"; explained variance {', '.join(f'{v:.2f}' for v in variance)})" if variance else ")"
        blocks.append(Table(["language", "PC1", "PC2"],
                            [[lang, *xy] for lang, xy in centroids.items() if isinstance(xy, list) and len(xy) == 2],
                            caption))
    return blocks


def _neutrality(results: RunResults, multi: bool) -> Section | None:
    blocks: list[Block] = []
    for suite in results.evals:
        for analysis in suite.analyses:
            label = " ".join(x for x in (f"suite {suite.name}" if multi else "", analysis.model or "") if x)
            if label:
                blocks.append(Heading(label[0].upper() + label[1:]))
            for image in analysis.images:
                name = "_".join(x for x in (suite.name, analysis.model, "analysis", _slug(image.stem)) if x)
                blocks.append(Figure(name, image.read_bytes(), NEUTRALITY_CAPTIONS.get(image.name, f"analysis/{image.name}")))
            if analysis.neutrality is not None:
                blocks += neutrality_blocks(analysis.neutrality)
    return Section("Language neutrality", blocks) if blocks else None


def _seed_average(summary: TaskSummary) -> tuple[float, float | None] | None:
    """Mean and std over seeds of the per-seed average over target languages (None without targets
    or when the languages were scored with different seeds)."""
    runs = [summary.scores[lang].seeds for lang in summary.targets]
    if not runs or not runs[0] or any(len(r) != len(runs[0]) for r in runs):
        return None
    per_seed = np.mean(np.asarray(runs, dtype=float), axis=0)
    return float(per_seed.mean()), float(per_seed.std(ddof=1)) if len(per_seed) > 1 else None


def headline_table(by_model: dict[str, dict[str, TaskSummary]], tasks: list[str],
                   source: str) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the headline table: per task, each model's source score and target average."""
    rows = []
    for task in tasks:
        row = [task]
        for summaries in by_model.values():
            summary = summaries.get(task)
            average = _seed_average(summary) if summary is not None else None
            row += ["–" if summary is None or summary.source is None else score_text(summary.scores[summary.source]),
                    "–" if average is None else f"{average[0]:.1f}" if average[1] is None
                    else f"{average[0]:.1f} ± {average[1]:.1f}"]
        rows.append(row)
    return ["task"] + [f"{name}: {part}" for name in by_model for part in (source, "target avg")], rows


def _layer_curves(summaries: dict[str, TaskSummary]) -> dict[str, dict[str, dict[int, float]]]:
    """Per model, its retrieval curves by layer averaged over the task's languages."""
    curves: dict[str, dict[str, dict[int, float]]] = {}
    for name, summary in summaries.items():
        found = [score.by_layer for score in summary.scores.values() if score.by_layer]
        for kind in sorted({k for by_layer in found for k in by_layer}):
            layers = sorted({layer for by_layer in found for layer in by_layer.get(kind, {})})
            curves.setdefault(name, {})[kind] = {
                layer: float(np.mean([b[kind][layer] for b in found if layer in b.get(kind, {})])) for layer in layers}
    return curves


def _headline(results: RunResults, settings: ReportSettings) -> Section | None:
    """What the run shows first: every model (pretrained variants and the random initialisation) on the
    source and each target language, retrieval by layer, the language centroids."""
    blocks: list[Block] = []
    for suite in results.evals:
        if len(suite.models) < 2:
            continue
        source = _suite_source(suite, settings)
        by_model = {name: {s.task: s for s in summarize(metrics, source)} for name, metrics in suite.models.items()}
        tasks = list(dict.fromkeys(task for summaries in by_model.values() for task in summaries))
        if len(results.evals) > 1:
            blocks.append(Heading(f"Suite {suite.name}"))
        header, rows = headline_table(by_model, tasks, source)
        blocks.append(Table(header, rows, f"Mean ± std over fine-tuning seeds (target avg: the average over "
                                          f"target languages, per seed). Fine-tuned on {source}."))
        for task in tasks:
            per_model = {name: summaries[task] for name, summaries in by_model.items() if task in summaries}
            blocks.append(Figure(f"headline_{_slug(suite.name)}_{_slug(task)}",
                                 plots.models_by_language(task, per_model, dpi=settings.figure_dpi),
                                 f"{task}: every model per language, error bars = std over seeds"))
            curves = _layer_curves(per_model)
            if curves:
                blocks.append(Figure(f"headline_{_slug(suite.name)}_{_slug(task)}_layers",
                                     plots.retrieval_layers(task, curves, dpi=settings.figure_dpi),
                                     f"{task}: accuracy by layer per model, raw (solid) and centred (dashed), "
                                     "averaged over the task's languages"))
        for analysis in suite.analyses:
            for image in analysis.images:
                if image.name == "centroids.png":
                    blocks.append(Figure(f"headline_{_slug(suite.name)}_{_slug(analysis.model or 'model')}_centroids",
                                         image.read_bytes(), f"{analysis.model or 'model'}: "
                                         + NEUTRALITY_CAPTIONS["centroids.png"]))
    return Section(HEADLINE, blocks) if blocks else None


def build_document(results: RunResults, settings: ReportSettings) -> Document:
    highlights: list[list[Any]] = []
    body = [_configuration(results) if settings.include_configs else None,
            _corpus(results, settings, highlights), _tokenizer(results, highlights),
            _pretraining(results, settings, highlights), *_evaluation(results, settings, highlights),
            _neutrality(results, len(results.evals) > 1)]
    sections = [_overview(results, highlights), _headline(results, settings)] + body
    sections = [s for s in sections if s is not None]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Document(settings.title, f"Run folder {results.run_dir.resolve()} · generated {created}", sections)
