"""Zero-shot cross-lingual transfer evaluation: the stage's entry point (`mbert evaluate`, `mbert run`).

For every model and task: fine-tune on the source language once per seed (keeping the epoch best
on the source dev set), predict every target language, score; retrieval tasks run on the encoder
without fine-tuning. Everything is checked before the first model trains. The output folder is
built in a staging folder and appears complete or not at all; `manifest.json` is written last.

    OUT/metrics.json                     task -> language -> {"mean", "std", "seeds"} (0-100), first model
    OUT/summary.md                       table per task: languages, target average, transfer gap
    OUT/predictions/<task>/test-<lang>.tsv   XTREME layout (first seed of the first model)
    OUT/labels/<task>/test-<lang>.tsv        gold answers in the same layout
    OUT/models/<name>/{metrics.json,summary.md,predictions/}   when several models are compared
    OUT/comparison.json                  model -> metrics (all models)
    OUT/analysis/                        language-neutrality analysis (when enabled)
    OUT/resolved_config.toml, OUT/manifest.json
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections import Counter
from concurrent.futures import as_completed
from multiprocessing import get_context
from pathlib import Path

import torch

from ..artifact import is_complete as artifact_complete, write_manifest, writing
from ..atomic import atomic_write_json, atomic_write_text, staging_dir
from ..config import write_resolved
from ..devices import resolve_device
from ..errors import ConfigError, UserError
from ..progress import info, set_quiet, summary
from ..workers import process_pool
from .checkpoints import (RANDOM_INIT, Checkpoint, check_checkpoint, load_encoder, make_aligned,
                          make_random_init, name_models)
from .finetune import encode, fine_tune, gold_labels, predict, to_labels
from .predictions import write_xtreme
from .results import MetricsJson, parse_metrics
from .scoring import aggregate, score
from .settings import EvaluateSettings
from .suite import RETRIEVAL_KINDS, Suite, TaskSpec, load_suite
from .summary import TaskSummary, markdown, metric_name, summarize
from .tasks import TaskData, load_task
from .units import Units, checkpoint_print, choice_key, examples_print, run_key, units_folder
from .wandb_metrics import log_eval_metrics

def is_complete(out_dir: Path) -> bool:
    """True when `out_dir` holds a finished evaluation (its manifest says so)."""
    return artifact_complete(out_dir, "metrics.json")


def _wants_random_init(settings: EvaluateSettings, suite: Suite) -> bool:
    """Whether the random-initialisation baseline is evaluated (asked for by either)."""
    return settings.random_init or suite.random_init


def _select_tasks(suite: Suite, settings: EvaluateSettings) -> dict[str, TaskSpec]:
    unknown = [t for t in settings.tasks if t not in suite.tasks]
    if unknown:
        raise ConfigError(f"task(s) {', '.join(unknown)} are not in the suite; it has: {', '.join(suite.tasks)}")
    return {name: suite.tasks[name] for name in (settings.tasks or suite.tasks)}


def evaluate(model_dirs: dict[str, Path] | Path | list | None, suite_path: Path, out_dir: Path,
             settings: EvaluateSettings | None = None, tracker=None) -> dict:
    """Evaluate one or more checkpoints on a suite; returns {"metrics", "models", "summary", "out"}
    ("summary": model -> its `TaskSummary`s: target average and transfer gap per task).

    `model_dirs`: a folder, or {name: folder}; a folder may be a pretrain output (its `model/` is
    used). Empty/None takes the suite's `models`. `settings` overrides seeds, tasks, device, caps."""
    with writing(out_dir):
        return _evaluate(model_dirs, Path(suite_path), Path(out_dir), settings, tracker)


def _evaluate(model_dirs: dict[str, Path] | Path | list | None, suite_path: Path, out_dir: Path,
              settings: EvaluateSettings | None, tracker) -> dict:
    started = time.perf_counter()
    settings = settings or EvaluateSettings(suite=Path(suite_path))
    suite_path = Path(suite_path)
    suite = load_suite(suite_path)
    seeds = list(settings.seeds or suite.seeds)
    specs = _select_tasks(suite, settings)
    if not model_dirs:
        model_dirs = dict(suite.models)
    if not model_dirs and not settings.compare:
        raise ConfigError("no model to evaluate: pass --model DIR or list models in the suite's [models]")
    checkpoints = name_models(model_dirs) if model_dirs else []
    for reference in name_models(settings.compare):  # e.g. Google's mBERT beside the run's models
        if any(c.name == reference.name for c in checkpoints):
            raise ConfigError(f"evaluate.compare names {reference.name!r}, which is already a model's name; "
                              f"rename the reference")
        checkpoints.append(reference)
    tokenizers = {c.name: check_checkpoint(c) for c in checkpoints}
    device = resolve_device(settings.device, "evaluate.device")
    _check_depth(checkpoints, suite, specs)
    data = _load_all(suite, specs, settings)
    _check_unseen(checkpoints, suite, specs, settings.max_eval_examples)
    analysis = suite.analysis.enabled if settings.analysis is None else settings.analysis
    if analysis:  # fail before any training
        _analysis_languages(suite)
        if not _analysis_folder(suite).is_dir():
            raise ConfigError(f"analysis data folder {_analysis_folder(suite)} does not exist; set analysis.folder")
    if _wants_random_init(settings, suite) and any(c.name == RANDOM_INIT for c in checkpoints):
        raise UserError(f"a model is already named {RANDOM_INIT!r}; rename it to add the random baseline")
    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        report = _run(checkpoints, tokenizers, suite, suite_path, specs, data, seeds, device, analysis,
                      out_dir, settings, tracker, started)
    finally:
        torch.set_num_threads(threads)
    _print_summary(out_dir, report["summary"], report["units"], time.perf_counter() - started)
    return {"metrics": report["metrics"], "models": report["models"], "summary": report["summary"],
            "out": str(out_dir)}


def _run(checkpoints: list[Checkpoint], tokenizers: dict, suite: Suite, suite_path: Path,
         specs: dict[str, TaskSpec], data: dict[str, TaskData], seeds: list[int], device: str, analysis: bool,
         out_dir: Path, settings: EvaluateSettings, tracker, started: float) -> dict:
    """Evaluate every checkpoint and write the output folder (staged, then renamed into place)."""
    with staging_dir(out_dir) as stage:
        work = stage / ".work"
        fresh = {RANDOM_INIT} if _wants_random_init(settings, suite) else set()
        if fresh:
            checkpoints.append(make_random_init(checkpoints[0], work / RANDOM_INIT, seed=seeds[0]))
            tokenizers[RANDOM_INIT] = tokenizers[checkpoints[0].name]
        originals = {c.name: f"fresh weights shaped like {checkpoints[0].name}" if c.name in fresh
                     else str(c.path) for c in checkpoints}
        alignment_stats: dict[str, dict] = {}
        units = Units(units_folder(out_dir), reuse=settings.reuse)
        data_prints = {name: examples_print(task.kind, task.metric, task.labels, task.train, task.dev, task.test)
                       for name, task in data.items()}
        results: dict[str, MetricsJson] = {}
        details: dict[str, dict] = {}
        if suite.alignment.enabled:
            for position, checkpoint in enumerate(checkpoints):
                checkpoints[position], alignment_stats[checkpoint.name] = _align(suite, checkpoint, work, device,
                                                                                  seeds[0])
        if settings.workers > 1:
            _fine_tune_in_workers(checkpoints, tokenizers, suite, specs, data, seeds, device, settings, units,
                                  data_prints)
        for position, checkpoint in enumerate(checkpoints):
            info(f"[evaluate] model {checkpoint.name} ({originals[checkpoint.name]})")
            prediction_dirs = [stage / "predictions"] if position == 0 else []
            if len(checkpoints) > 1:
                prediction_dirs.append(stage / "models" / checkpoint.name / "predictions")
            results[checkpoint.name], details[checkpoint.name] = _evaluate_model(
                checkpoint, tokenizers[checkpoint.name], suite, specs, data, seeds, device, prediction_dirs,
                stage / "labels", settings, units, data_prints)
            if analysis:
                _analyse(suite, checkpoint, tokenizers[checkpoint.name], device,
                         stage / "analysis" / (checkpoint.name if len(checkpoints) > 1 else ""))
            if tracker is not None:  # per task a table and a bar chart, a heat-map, summary scores
                log_eval_metrics(tracker, results[checkpoint.name], source_language=suite.source,
                                 prefix=f"eval/{checkpoint.name}" if len(checkpoints) > 1 else "eval")
        shutil.rmtree(work, ignore_errors=True)
        for task in data.values():
            for lang, examples in task.test.items():
                write_xtreme(stage / "labels", task.name, lang, gold_labels(task, examples),
                             token_task=task.is_token_task)
        report = _write_outputs(stage, suite, specs, seeds, results, checkpoints)
        write_resolved(stage, {"evaluate": settings, "suite": suite, "seeds": seeds, "device": device,
                               "models": originals})
        write_manifest(stage, {
            "complete": True, "stage": "evaluate", "suite": str(suite_path.resolve()),
            "source": suite.source, "seeds": seeds, "device": device, "models": originals,
            "tasks": {name: spec.kind for name, spec in specs.items()},
            "details": details, "alignment": alignment_stats or None, "analysis": bool(analysis),
            "units": {"folder": str(units.folder), "reused": units.reused, "computed": units.computed},
            "seconds": round(time.perf_counter() - started, 1)})
    return {"metrics": results[checkpoints[0].name], "models": results, "summary": report, "units": units}


# ----------------------------------------------------------------------------- steps

def _load_all(suite: Suite, specs: dict[str, TaskSpec], settings: EvaluateSettings) -> dict[str, TaskData]:
    data, problems = {}, []
    for name, spec in specs.items():
        if spec.kind in RETRIEVAL_KINDS:
            problems += _check_retrieval(suite, name, spec)
            continue
        try:
            data[name] = load_task(suite, name, spec, max_train=settings.max_train_examples,
                                   max_eval=settings.max_eval_examples)
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise UserError("; ".join(problems))
    return data


def _check_depth(checkpoints: list[Checkpoint], suite: Suite, specs: dict[str, TaskSpec]) -> None:
    """Refuse freeze_layers, keep_layers or retrieval layers deeper than a model before any training
    starts."""
    wanted = {}  # task -> the deepest layer it fixes or keeps
    for name, spec in specs.items():
        if spec.kind in RETRIEVAL_KINDS:
            continue
        frozen, kept = suite.hyper(spec).freeze_layers or 0, suite.hyper(spec).keep_layers
        if kept and frozen > kept:
            raise ConfigError(f"task {name}: freeze_layers = {frozen} but keep_layers = {kept} keeps fewer "
                              f"layers; freeze at most {kept}")
        wanted[name] = max(frozen, kept or 0)
    pooled = {name: [spec.layer] * (spec.layer is not None) + ([] if spec.layers == "all" else list(spec.layers))
              for name, spec in specs.items() if spec.kind in RETRIEVAL_KINDS}
    for checkpoint in checkpoints:
        config = json.loads((checkpoint.path / "config.json").read_text(encoding="utf-8"))
        depth = config.get("num_hidden_layers")
        too_deep = [f"{task} ({k})" for task, k in wanted.items() if isinstance(depth, int) and k > depth]
        if too_deep:
            raise ConfigError(f"freeze_layers or keep_layers exceeds the {depth} layers of model "
                              f"{checkpoint.name} for task(s) {', '.join(too_deep)}; use at most {depth}")
        missing = [f"{task} (layer {k})" for task, ks in pooled.items() for k in ks
                   if isinstance(depth, int) and k > depth]
        if missing:
            raise ConfigError(f"model {checkpoint.name} has layers 0 (embeddings) to {depth}; retrieval task(s) "
                              f"{', '.join(missing)} ask for more")


def _check_retrieval(suite: Suite, name: str, spec: TaskSpec) -> list[str]:
    """Every language of a retrieval task has its files (read one sentence of each, up front)."""
    from . import retrieval

    if spec.text:
        try:
            retrieval.fake_pairs(suite.task_path(spec.text, suite.source), list(spec.languages), 1)
        except UserError as exc:
            return [f"task {name}: {exc}"]
        return []
    folder = suite.data / spec.folder
    if not folder.is_dir():
        return [f"task {name}: data folder {folder} does not exist"]
    problems = []
    for lang in spec.languages:
        try:
            if spec.kind == "tatoeba":
                retrieval.read_tatoeba(folder, lang, 1)
            else:
                retrieval.read_bucc(folder, f"{lang}-{suite.source}", "dev", 1)
        except UserError as exc:
            problems.append(f"task {name}: {exc}")
    return problems


def _check_unseen(checkpoints: list[Checkpoint], suite: Suite, specs: dict[str, TaskSpec],
                  max_eval: int | None) -> None:
    """Sentences retrieved against their fake copies must not be pretraining text, or the score
    measures memory. Checked against the corpus that a pretraining output records (its
    manifest.json beside model/); other checkpoints record none and are not checked."""
    from .retrieval import read_sentences

    wanted: dict[str, str] = {}
    for name, spec in specs.items():
        if spec.kind == "tatoeba" and spec.text:
            sentences = read_sentences(suite.task_path(spec.text, suite.source))
            wanted.update((s.strip(), name) for s in sentences[:max_eval or spec.max_eval_examples])
    if not wanted:
        return
    corpora = {}
    for checkpoint in checkpoints:
        try:
            manifest = json.loads((checkpoint.path.parent / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("stage") == "pretrain" and manifest.get("corpus"):
            corpora.setdefault(Path(manifest["corpus"]), []).append(checkpoint.name)
    for corpus, models in corpora.items():
        if not corpus.is_dir():
            continue
        seen = _lines_in_corpus(corpus, set(wanted))
        if seen:
            first = sorted(seen)[0]
            raise UserError(f"{len(seen)} sentence(s) of retrieval task {wanted[first]} occur verbatim in "
                            f"{corpus}, the pretraining text of {', '.join(models)} (e.g. {first[:80]!r}); "
                            f"retrieve sentences from outside the corpus (text = another file)")


def _lines_in_corpus(corpus: Path, wanted: set[str]) -> set[str]:
    import pyarrow.parquet as pq

    from ..corpus.layout import find_corpus

    found: set[str] = set()
    for shard in find_corpus(corpus).shards:
        for batch in pq.ParquetFile(shard.path).iter_batches(columns=["text"]):
            for text in batch.column("text").to_pylist():
                found.update(line.strip() for line in text.split("\n") if line.strip() in wanted)
    return found


def _fallback(task: TaskData) -> str:
    """Label for words cut off by max_length: "O" for NER, else the commonest training label."""
    if "O" in task.labels:
        return "O"
    counts = Counter(label for labels in gold_labels(task, task.train)
                     for label in (labels if task.is_token_task else [labels]))
    return counts.most_common(1)[0][0]


def _evaluate_model(checkpoint: Checkpoint, tokenizer, suite: Suite, specs: dict[str, TaskSpec],
                    data: dict[str, TaskData], seeds: list[int], device: str, prediction_dirs: list[Path],
                    label_dir: Path, settings: EvaluateSettings, units: Units,
                    data_prints: dict[str, str]) -> tuple[MetricsJson, dict]:
    metrics: MetricsJson = {}
    details: dict[str, dict] = {}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model_print = checkpoint_print(checkpoint.path)
    for name, spec in specs.items():
        hyper = suite.hyper(spec)
        if spec.kind in RETRIEVAL_KINDS:
            info(f"[evaluate] {checkpoint.name} / {name}: retrieval on {len(spec.languages)} language(s)")
            metrics[name] = _retrieval(checkpoint, tokenizer, suite, name, spec, hyper, device,
                                       settings.max_eval_examples or spec.max_eval_examples,
                                       prediction_dirs, label_dir)
            continue
        task = data[name]
        info(f"[evaluate] {checkpoint.name} / {name}: fine-tune on {len(task.train)} {suite.source} examples, "
             f"test {len(spec.languages)} language(s), seeds {seeds}")
        fallback = _fallback(task)
        encoded: dict = {}  # the test sets, encoded when a run is not found among the units
        scores: dict[str, list[float]] = {lang: [] for lang in spec.languages}
        details[name] = {}
        tuned_first, tried = None, {}
        if hyper.learning_rates:
            key = choice_key(model_print, data_prints[name], hyper, seeds[0])
            chosen = units.get(key)
            if chosen is None:
                hyper, tried, tuned_first = _choose_learning_rate(checkpoint, task, tokenizer, hyper, seeds[0],
                                                                  device, fallback, name)
                units.put(key, {"learning_rate": hyper.learning_rate, "tried": list(tried.items())})
            else:
                hyper = dataclasses.replace(hyper, learning_rate=chosen["learning_rate"])
                tried = {rate: dev for rate, dev in chosen["tried"]}
            info(f"[evaluate] {checkpoint.name} / {name}: learning rate {hyper.learning_rate:g} "
                 f"(source dev {', '.join(f'{lr:g}: {dev:.4f}' for lr, dev in tried.items())})")
        for seed_index, seed in enumerate(seeds):
            key = run_key(model_print, data_prints[name], hyper, seed)
            run = units.get(key, needs="predicted" if seed_index == 0 else None)
            if run is None:
                tuned = tuned_first if seed_index == 0 and tuned_first is not None else fine_tune(
                    checkpoint.path, task, tokenizer, hyper, seed=seed, device=device, fallback=fallback,
                    desc=f"{name} seed {seed}")
                run = {"scores": {}, "predicted": {},
                       "details": {"best_epoch": tuned.best_epoch, "dev_scores": tuned.dev_scores,
                                   "frozen_parameters": len(tuned.frozen), "learning_rate": hyper.learning_rate}}
                encoded = encoded or {lang: encode(task, tokenizer, task.test[lang], hyper.max_length)
                                      for lang in spec.languages}
                for lang in spec.languages:
                    ids = predict(tuned.model, encoded[lang], batch_size=hyper.eval_batch_size, pad_id=pad_id,
                                  device=device, desc=f"{name} {lang}")
                    predicted = to_labels(task, task.test[lang], ids, fallback)
                    run["scores"][lang] = score(task.kind, gold_labels(task, task.test[lang]), predicted,
                                                task.metric)
                    run["predicted"][lang] = predicted
                if seed_index > 0:
                    del run["predicted"]  # only the first seed's predictions are written out
                units.put(key, run)
                del tuned
            details[name][str(seed)] = {**run["details"], **(
                {"learning_rate_dev_scores": {f"{lr:g}": dev for lr, dev in tried.items()}} if tried else {})}
            for lang in spec.languages:
                scores[lang].append(run["scores"][lang])
                if seed_index == 0:
                    for folder in prediction_dirs:
                        write_xtreme(folder, name, lang, run["predicted"][lang], token_task=task.is_token_task)
        metrics[name] = {lang: aggregate(values) for lang, values in scores.items()}
    return metrics, details


def _fine_tune_in_workers(checkpoints: list[Checkpoint], tokenizers: dict, suite: Suite,
                          specs: dict[str, TaskSpec], data: dict[str, TaskData], seeds: list[int], device: str,
                          settings: EvaluateSettings, units: Units, data_prints: dict[str, str]) -> None:
    """Compute the missing fine-tuning units in `settings.workers` processes; the pass over the models
    then reads them back like units of an earlier run (retrieval, predictions and the analysis stay
    in this process). A job is one seed of a (model, task), or all seeds of one whose learning rate
    is chosen first (the choice feeds every seed)."""
    jobs = []
    for checkpoint in checkpoints:
        model_print = checkpoint_print(checkpoint.path)
        for name, spec in specs.items():
            if spec.kind in RETRIEVAL_KINDS:
                continue
            hyper = suite.hyper(spec)
            per_seed = [[seed] for seed in seeds] if hyper.learning_rates is None else [seeds]
            jobs += [(checkpoint, name, job_seeds) for job_seeds in per_seed
                     if not _job_done(units, model_print, data_prints[name], hyper, job_seeds, seeds[0])]
    if len(jobs) < 2:  # one job runs as fast in this process, without starting workers
        return
    jobs.sort(key=lambda job: -len(job[2]))  # the longest (a rate choice and every seed) first: less idle at the end
    workers = min(settings.workers, len(jobs))
    threads = settings.threads or max(1, (os.cpu_count() or 1) // workers)
    info(f"[evaluate] fine-tuning in {workers} worker processes ({threads} thread(s) each): {len(jobs)} job(s), "
         f"finished units reused")
    with process_pool(workers, mp_context=get_context("spawn"), initializer=_start_fine_tune_worker,
                      initargs=(threads,)) as pool:
        futures = {pool.submit(_fine_tune_job, checkpoint, tokenizers[checkpoint.name], suite, name, specs[name],
                               data[name], job_seeds, device, settings, units.folder, data_prints[name]):
                   (checkpoint.name, name, job_seeds) for checkpoint, name, job_seeds in jobs}
        for done, future in enumerate(as_completed(futures), 1):
            units.adopt(future.result())
            model, name, job_seeds = futures[future]
            info(f"[evaluate] {done}/{len(jobs)} fine-tuned: {model} / {name}, seed(s) {job_seeds}")


def _job_done(units: Units, model_print: str, data_print: str, hyper, job_seeds: list[int], first_seed: int) -> bool:
    """Whether every unit of a job is stored already (the pass over the models then reads them)."""
    if hyper.learning_rates:
        chosen = units.peek(choice_key(model_print, data_print, hyper, first_seed))
        if chosen is None:
            return False
        hyper = dataclasses.replace(hyper, learning_rate=chosen["learning_rate"])
    return all(units.peek(run_key(model_print, data_print, hyper, seed),
                          needs="predicted" if seed == first_seed else None) is not None for seed in job_seeds)


def _start_fine_tune_worker(threads: int) -> None:
    set_quiet(True)  # the parent reports each finished job; bars of parallel workers would interleave
    torch.set_num_threads(threads)


def _fine_tune_job(checkpoint: Checkpoint, tokenizer, suite: Suite, name: str, spec: TaskSpec, task: TaskData,
                   seeds: list[int], device: str, settings: EvaluateSettings, folder: Path,
                   data_print: str) -> list[str]:
    """One worker job: the units of `seeds` of one (model, task), written to `folder`; returns their keys."""
    units = Units(folder, reuse=settings.reuse)
    _evaluate_model(checkpoint, tokenizer, suite, {name: spec}, {name: task}, seeds, device, [], None,
                    settings, units, {name: data_print})  # no prediction or label files: the parent writes them
    return units.written


def _choose_learning_rate(checkpoint: Checkpoint, task: TaskData, tokenizer, hyper, seed: int, device: str,
                          fallback: str, name: str):
    """Fine-tune with each of `hyper.learning_rates` (first seed); the best source-dev score wins.
    Returns (hyper with that rate, {rate: best dev score}, the winning fine-tuned model)."""
    tried: dict[float, float] = {}
    best = None
    for rate in hyper.learning_rates:
        trial = dataclasses.replace(hyper, learning_rate=rate)
        tuned = fine_tune(checkpoint.path, task, tokenizer, trial, seed=seed, device=device, fallback=fallback,
                          desc=f"{name} lr {rate:g}")
        tried[rate] = max(tuned.dev_scores)
        if best is None or tried[rate] > tried[best[0].learning_rate]:  # ties keep the earlier rate
            best = (trial, tuned)
        del tuned
    return best[0], tried, best[1]


def _retrieval(checkpoint: Checkpoint, tokenizer, suite: Suite, name: str, spec: TaskSpec, hyper, device: str,
               max_sentences: int | None, prediction_dirs: list[Path], label_dir: Path) -> dict[str, dict]:
    """Retrieval scores per language; prediction and gold files in XTREME's layout (Tatoeba: the
    retrieved English index per line, xx->en; BUCC: `source id<TAB>target id` per mined pair)."""
    from . import retrieval

    model = load_encoder(checkpoint.path, device)
    common = dict(layer=spec.layer, batch_size=hyper.eval_batch_size, max_length=hyper.max_length, device=device)
    folder = suite.data / spec.folder
    if spec.kind == "tatoeba":
        if spec.text:  # held-out sentences against their fake copies: exact gold
            pairs = retrieval.fake_pairs(suite.task_path(spec.text, suite.source), list(spec.languages),
                                         max_sentences)
        else:
            pairs = {lang: retrieval.read_tatoeba(folder, lang, max_sentences) for lang in spec.languages}
        layers = range(retrieval.num_layers(model) + 1) if spec.layers == "all" else spec.layers
        retrieved: dict[str, list[int]] = {}
        found = retrieval.score_pairs(model, tokenizer, pairs, center=spec.center, predictions=retrieved,
                                      layers=layers, **common)
        for lang, indices in retrieved.items():
            for target in prediction_dirs:
                write_xtreme(target, name, lang, indices, token_task=False)
            write_xtreme(label_dir, name, lang, range(len(indices)), token_task=False)
        return {lang: {**aggregate([found[lang][spec.scored_metric]]),
                       **_layer_scores(found[lang], spec.scored_metric)} for lang in spec.languages}
    pairs = {lang: f"{lang}-{suite.source}" for lang in spec.languages}
    mined: dict[str, tuple[list, set]] = {}
    found = retrieval.evaluate_bucc(model, tokenizer, folder, list(pairs.values()), predictions=mined,
                                    max_sentences=max_sentences, **common)
    for lang, pair in pairs.items():
        predicted, gold = mined[pair]
        for target in prediction_dirs:
            write_xtreme(target, name, lang, [f"{s}\t{t}" for s, t in predicted], token_task=False)
        write_xtreme(label_dir, name, lang, [f"{s}\t{t}" for s, t in sorted(gold)], token_task=False)
    return {lang: aggregate([found[pair]["f1"]]) for lang, pair in pairs.items()}


def _layer_scores(found: dict, metric: str) -> dict:
    """Per-layer retrieval scores for metrics.json: {"by_layer": {"raw"|"centered": {layer: score}},
    "best_layer": {"raw"|"centered": {"layer", "score"}}}. The best layer is picked on these test
    scores (as Dufter & Schütze report it), so it is named as such and never replaces the headline."""
    if "by_layer" not in found:
        return {}
    by_layer = {kind: {str(k): round(v[metric], 4) for k, v in scores.items()}
                for kind, scores in found["by_layer"].items()}
    best = {kind: max(({"layer": int(k), "score": v} for k, v in scores.items()), key=lambda b: b["score"])
            for kind, scores in by_layer.items()}
    return {"by_layer": by_layer, "best_layer": best}


def _align(suite: Suite, checkpoint: Checkpoint, work: Path, device: str, seed: int) -> tuple[Checkpoint, dict]:
    spec = suite.alignment
    parallel = [(suite.task_path(a, suite.source), suite.task_path(b, suite.source)) for a, b in spec.parallel]
    info(f"[evaluate] {checkpoint.name}: alignment fine-tuning, {spec.steps} steps on {len(parallel)} corpus(es)")
    return make_aligned(checkpoint, work / f"aligned-{checkpoint.name}", parallel=parallel, steps=spec.steps,
                        learning_rate=spec.learning_rate, batch_size=spec.batch_size,
                        regularize=spec.regularize, max_pairs=spec.max_pairs, device=device, seed=seed)


def _analysis_languages(suite: Suite) -> list[str]:
    """The analysis languages: its own list, else those of the suite's first Tatoeba task."""
    tatoeba = [t.languages for t in suite.tasks.values() if t.kind == "tatoeba"]
    languages = list(suite.analysis.languages) or (list(tatoeba[0]) if tatoeba else [])
    if not languages:
        raise ConfigError("the language-neutrality analysis needs analysis.languages = [...] "
                          "(Tatoeba languages) or a tatoeba task in the suite")
    return languages


def _analysis_folder(suite: Suite) -> Path:
    """Where the analysis reads Tatoeba-style pairs: its own folder, else the Tatoeba task's."""
    folders = [t.folder for t in suite.tasks.values() if t.kind == "tatoeba"]
    return suite.data / (suite.analysis.folder or (folders[0] if folders else "tatoeba"))


def _analyse(suite: Suite, checkpoint: Checkpoint, tokenizer, device: str, out: Path) -> None:
    from .neutrality import analyse_language_neutrality

    spec = suite.analysis
    languages = _analysis_languages(suite)
    model = load_encoder(checkpoint.path, device)
    info(f"[evaluate] {checkpoint.name}: language-neutrality analysis on {len(languages)} language(s)")
    out.mkdir(parents=True, exist_ok=True)
    analyse_language_neutrality(model, tokenizer, _analysis_folder(suite), languages, out, device=device,
                                max_sentences=spec.max_sentences)


def _write_outputs(stage: Path, suite: Suite, specs: dict[str, TaskSpec], seeds: list[int],
                   results: dict[str, MetricsJson], checkpoints: list[Checkpoint]) -> dict[str, list[TaskSummary]]:
    names = {name: metric_name(spec.kind, spec.scored_metric) for name, spec in specs.items()}
    first = checkpoints[0].name
    atomic_write_json(stage / "metrics.json", results[first])
    atomic_write_json(stage / "comparison.json", results)
    title = "Zero-shot cross-lingual transfer" + (f": {first}" if len(checkpoints) == 1 else "")
    atomic_write_text(stage / "summary.md", markdown(results, names, suite.source, seeds, title))
    if len(checkpoints) > 1:
        for checkpoint in checkpoints:
            folder = stage / "models" / checkpoint.name
            atomic_write_json(folder / "metrics.json", results[checkpoint.name])
            atomic_write_text(folder / "summary.md", markdown({checkpoint.name: results[checkpoint.name]},
                                                              names, suite.source, seeds,
                                                              f"Zero-shot transfer: {checkpoint.name}"))
    return {model: summarize(parse_metrics(metrics), suite.source) for model, metrics in results.items()}


def _print_summary(out_dir: Path, report: dict[str, list[TaskSummary]], units: Units, seconds: float) -> None:
    parts = []
    for model, tasks in report.items():
        cells = []
        for task in tasks:
            gap = f", gap {task.gap:.1f}" if task.gap is not None else ""
            cells.append(f"{task.task} {task.target_average:.1f}{gap}" if task.target_average is not None
                         else f"{task.task} source only")
        parts.append(f"{model}: " + "; ".join(cells))
    summary(f"Evaluated {len(report)} model(s) in {seconds:.0f}s -> {out_dir} (metrics.json, summary.md, "
            f"predictions/). Target-language averages: " + " | ".join(parts)
            + (f". Reused {units.reused} finished fine-tuning unit(s) from {units.folder} (--no-reuse "
               f"recomputes them)" if units.reused else ""))
