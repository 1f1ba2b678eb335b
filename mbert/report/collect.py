"""Read whatever a run folder holds (any subset of stages) into one `RunResults`.

Stage folders follow the pipeline contract (README, "pipeline"): corpus/clean, corpus/mixture,
vocab (+ vocab/report), pretrain (or pretrain/<variant>/ for several models), eval/<suite>.
A stage that is absent is simply `None`/empty here; a stage without its completion manifest is
still read (a training in progress has useful curves) and marked incomplete."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifact import is_complete
from ..errors import UserError
from ..transfer.results import Metrics, parse_metrics

SOURCE_KEYS = ("source_language", "source_lang", "source", "train_language")


@dataclass
class StageStatus:
    stage: str
    path: Path
    complete: bool


@dataclass
class TrainLog:
    name: str
    path: Path
    records: list[dict[str, float]]
    manifest: dict | None


@dataclass
class Analysis:
    """Language-neutrality output: `analysis/` (one model) or `analysis/<model>/` (several)."""

    model: str | None
    path: Path
    images: list[Path]
    neutrality: dict | None


@dataclass
class EvalSuite:
    name: str
    path: Path
    metrics: Metrics
    models: dict[str, Metrics]
    source_language: str | None
    manifest: dict | None
    summary_md: str | None
    analyses: list[Analysis]


@dataclass
class RunResults:
    run_dir: Path
    stages: list[StageStatus] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)
    corpus: dict | None = None
    mixture: dict | None = None
    smoothing_png: Path | None = None
    vocab_manifest: dict | None = None
    vocab_report: dict | None = None
    vocab_png: Path | None = None
    pretrain: list[TrainLog] = field(default_factory=list)
    evals: list[EvalSuite] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.stages


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); re-run the stage that wrote it") from None


def _json_if(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def flatten_numbers(record: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (nested) JSON object, nested keys joined with '/' (ints stay ints)."""
    flat: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_numbers(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = value
    return flat


def read_train_log(path: Path) -> list[dict[str, float]]:
    """Rows of train_log.jsonl; a torn last line (training still writing) is ignored."""
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            rows.append(flatten_numbers(record))
    return rows


def _read_suite(folder: Path) -> EvalSuite | None:
    raw = _json_if(folder / "metrics.json")
    metrics = parse_metrics(raw)
    models: dict[str, Metrics] = {}
    for model_metrics in sorted((folder / "models").glob("*/metrics.json")):
        parsed = parse_metrics(read_json(model_metrics))
        if parsed:
            models[model_metrics.parent.name] = parsed
    if not metrics and not models and isinstance(raw, dict):
        # also accept one metrics.json keyed by model name first: model -> task -> lang -> score
        models = {name: parsed for name, v in raw.items() if (parsed := parse_metrics(v))}
    if not metrics and len(models) == 1:
        metrics = next(iter(models.values()))
    manifest = _json_if(folder / "manifest.json")
    analysis = folder / "analysis"
    if not metrics and not models and not analysis.is_dir():
        return None
    source = None
    for holder in (manifest, raw):
        if isinstance(holder, dict):
            source = source or next((holder[k] for k in SOURCE_KEYS if isinstance(holder.get(k), str)), None)
    summary = folder / "summary.md"
    return EvalSuite(name=folder.name, path=folder, metrics=metrics, models=models, source_language=source,
                     manifest=manifest if isinstance(manifest, dict) else None,
                     summary_md=summary.read_text(encoding="utf-8") if summary.is_file() else None,
                     analyses=_read_analyses(analysis))


def _read_analyses(analysis: Path) -> list[Analysis]:
    preferred = {"centroids.png": 0, "retrieval_by_layer.png": 1}
    found = []
    folders = [(None, analysis)] + [(p.name, p) for p in subfolders(analysis)] if analysis.is_dir() else []
    for model, folder in folders:
        images = sorted(folder.glob("*.png"), key=lambda p: (preferred.get(p.name, 2), p.name))
        neutrality = _json_if(folder / "language_neutrality.json")
        if images or neutrality is not None:
            found.append(Analysis(model, folder, images, neutrality))
    return found


def subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted: hidden ones are a stage's staging folders (`.name.*.partial`)."""
    return sorted(p for p in folder.glob("*") if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []


def _config_files(run: Path) -> dict[str, Path]:
    candidates = [("recipe", run / "recipe.resolved.toml"), ("run", run / "resolved_config.toml"),
                  ("corpus", run / "corpus" / "clean" / "resolved_config.toml"),
                  ("sample", run / "corpus" / "mixture" / "resolved_config.toml"),
                  ("vocab", run / "vocab" / "resolved_config.toml"),
                  ("vocab report", run / "vocab" / "report" / "resolved_config.toml"),
                  ("pretrain", run / "pretrain" / "resolved_config.toml")]
    candidates += [(f"pretrain {p.name}", p / "resolved_config.toml") for p in subfolders(run / "pretrain")
                   if p.name not in ("model", "checkpoints")]
    candidates += [(f"evaluate {p.name}", p / "resolved_config.toml") for p in subfolders(run / "eval")]
    return {label: path for label, path in candidates if path.is_file()}


def collect_run(run_dir: Path) -> RunResults:
    """Everything the report shows, from a run folder; raises UserError if it does not exist."""
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"run folder {run} does not exist; pass the folder a run wrote into "
                        f"(run.out in the recipe, e.g. runs/default)")
    results = RunResults(run_dir=run)
    status = results.stages.append

    clean = run / "corpus" / "clean"
    corpus = _json_if(clean / "manifest.json")
    if isinstance(corpus, dict):
        results.corpus = corpus
        status(StageStatus("corpus", clean, is_complete(clean)))

    mixture_dir = run / "corpus" / "mixture"
    mixture = _json_if(mixture_dir / "manifest.json")
    if isinstance(mixture, dict):
        results.mixture = mixture
        status(StageStatus("sample", mixture_dir, is_complete(mixture_dir)))
    if (mixture_dir / "smoothing.png").is_file():
        results.smoothing_png = mixture_dir / "smoothing.png"

    vocab = run / "vocab"
    results.vocab_manifest = _json_if(vocab / "manifest.json")
    results.vocab_report = _json_if(vocab / "report" / "report.json")
    if (vocab / "report" / "report.png").is_file():
        results.vocab_png = vocab / "report" / "report.png"
    if results.vocab_manifest is not None or results.vocab_report is not None:
        status(StageStatus("vocab", vocab, is_complete(vocab)))

    pretrain = run / "pretrain"
    logs = [("model", pretrain)] + [(p.name, p) for p in subfolders(pretrain)
                                     if p.name not in ("model", "checkpoints")]
    for name, folder in logs:
        log_path = folder / "train_log.jsonl"
        manifest = _json_if(folder / "manifest.json")
        if log_path.is_file() or isinstance(manifest, dict):
            records = read_train_log(log_path) if log_path.is_file() else []
            results.pretrain.append(TrainLog(name, folder, records, manifest if isinstance(manifest, dict) else None))
            status(StageStatus("pretrain" if folder == pretrain else f"pretrain {name}", folder, is_complete(folder)))

    for folder in subfolders(run / "eval"):
        suite = _read_suite(folder)
        if suite is not None:
            results.evals.append(suite)
            status(StageStatus(f"evaluate {suite.name}", folder, is_complete(folder)))

    results.configs = {label: path.read_text(encoding="utf-8") for label, path in _config_files(run).items()}
    return results
