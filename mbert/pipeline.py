"""`mbert run`: every stage in order, through files in one run folder.

A stage is skipped when its output is complete *and* was produced with the same settings as now
(its own and those of every stage before it); otherwise it and everything after it are redone.
That makes an interrupted run resume, and an edited recipe redo only what it changed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .atomic import atomic_write_json
from .config import to_plain, write_resolved
from .errors import UserError
from .progress import info, summary
from .recipe import Recipe
from .report.tracking import Tracker

STAGES = ("corpus", "sample", "vocab", "pretrain", "evaluate", "report")
STATE_FILE = "run_state.json"


@dataclass
class RunLayout:
    """Where each stage writes inside the run folder (see the README's pipeline table)."""

    root: Path

    @property
    def clean(self) -> Path:
        return self.root / "corpus" / "clean"

    @property
    def mixture(self) -> Path:
        return self.root / "corpus" / "mixture"

    @property
    def vocab(self) -> Path:
        return self.root / "vocab"

    def pretrain(self, variant: str | None) -> Path:
        return self.root / "pretrain" if variant is None else self.root / "pretrain" / variant

    def evaluation(self, suite: Path) -> Path:
        return self.root / "eval" / suite.stem

    @property
    def report(self) -> Path:
        return self.root / "report"


def _stage_fingerprints(recipe: Recipe) -> dict[str, str]:
    """A hash per stage over its settings and those of all earlier stages."""
    sections = {"corpus": ["corpus"], "sample": ["sample"], "vocab": ["vocab"],
                "pretrain": ["pretrain", "variants"], "evaluate": ["evaluate"], "report": ["report"]}
    plain = to_plain(recipe)
    plain["run"].pop("wandb", None)  # logging mode does not change any artefact
    digest = hashlib.sha256(json.dumps(plain["run"], sort_keys=True).encode())
    prints = {}
    for stage in STAGES:
        for section in sections[stage]:
            digest.update(json.dumps(plain.get(section), sort_keys=True, default=str).encode())
        if stage == "evaluate":
            digest.update(Path(recipe.evaluate.suite).read_bytes())
        prints[stage] = digest.copy().hexdigest()[:16]
    return prints


def run_pipeline(recipe: Recipe, *, redo_from: str | None = None, until: str | None = None) -> Path:
    """Run the stages of `recipe` in order (up to `until`, inclusive); returns the report path."""
    layout = RunLayout(Path(recipe.run.out))
    layout.root.mkdir(parents=True, exist_ok=True)
    state_path = layout.root / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    prints = _stage_fingerprints(recipe)
    write_resolved(layout.root, to_plain(recipe), name="recipe.resolved.toml")

    from .corpus.extract import extract_corpus, is_complete as corpus_done
    from .corpus.sample import is_complete as sample_done, sample_mixture
    from .pretrain.train import finished_run_differences, is_complete as pretrain_done, pretrain
    from .report.build import build_report, is_complete as report_done
    from .transfer.evaluate import evaluate, is_complete as evaluate_done
    from .vocab.report import tokenizer_report
    from .vocab.train import is_complete as vocab_done, train_vocab

    variants = recipe.pretrain_variants()
    eval_dir = layout.evaluation(Path(recipe.evaluate.suite))
    model_dirs = {name: layout.pretrain(None if len(variants) == 1 else name) for name in variants}
    done_checks: dict[str, Callable[[], bool]] = {
        "corpus": lambda: corpus_done(layout.clean),
        "sample": lambda: sample_done(layout.mixture),
        "vocab": lambda: vocab_done(layout.vocab),
        "pretrain": lambda: all(pretrain_done(d) for d in model_dirs.values()),
        "evaluate": lambda: evaluate_done(eval_dir),
        "report": lambda: report_done(layout.report),
    }

    def tracker(stage: str) -> Tracker:
        return Tracker(mode=recipe.run.wandb, project=recipe.run.wandb_project, stage=stage,
                       run_dir=layout.root, config=to_plain(recipe), group=layout.root.resolve().name)

    def vocab_stage(t: Tracker) -> None:
        # the run already decided this stage must be redone: replace an older tokenizer
        train_vocab(layout.mixture, layout.vocab, dataclasses.replace(recipe.vocab, force=True), t)
        tokenizer_report(layout.vocab, layout.clean, layout.vocab / "report", t,
                         max_lines_per_language=recipe.run.report_lines_per_language)

    # A finished pretraining the run did not record (e.g. torchrun after `--until vocab`) is used when
    # it matches the recipe, and never replaced silently when it does not.
    asked_to_redo = redo_from is not None and STAGES.index(redo_from) <= STAGES.index("pretrain")
    may_replace = "pretrain" in state or asked_to_redo

    def pretrain_stage(t: Tracker) -> None:
        for name, settings in variants.items():
            info(f"[pretrain] variant {name!r}")
            differences = finished_run_differences(model_dirs[name], layout.mixture, layout.vocab, settings)
            if differences == [] and not asked_to_redo:
                summary(f"Pretraining: using the finished run in {model_dirs[name]} (same settings, corpus and "
                        f"vocabulary; made outside this run, e.g. with torchrun).")
                continue
            if differences and not may_replace:
                raise UserError(f"{model_dirs[name]} holds a finished pretraining that this run did not make "
                                f"and that differs from the recipe ({'; '.join(differences)}); move it away, "
                                f"make the recipe match it, or pass --from pretrain to replace it")
            if settings.token_store is None and len(variants) > 1:
                # variants read the same mixture with the same vocabulary: tokenize it once
                settings = dataclasses.replace(settings, token_store=layout.root / "pretrain" / "token_store")
            pretrain(layout.mixture, layout.vocab, model_dirs[name], settings, t)

    actions: dict[str, Callable[[Tracker], object]] = {
        "corpus": lambda t: extract_corpus(recipe.corpus, layout.clean, t),
        # a clean folder keeps every language ever extracted into it: mix only the recipe's
        "sample": lambda t: sample_mixture(layout.clean, layout.mixture, dataclasses.replace(
            recipe.sample, languages=recipe.sample.languages or [*recipe.corpus.sources, *recipe.corpus.fake]), t),
        "vocab": vocab_stage,
        "pretrain": pretrain_stage,
        "evaluate": lambda t: evaluate(model_dirs, Path(recipe.evaluate.suite), eval_dir, recipe.evaluate, t),
        "report": lambda t: build_report(layout.root, layout.report, recipe.report, t),
    }

    redo = False
    timings: dict[str, str] = {}
    for stage in STAGES[:STAGES.index(until) + 1] if until else STAGES:
        redo = redo or stage == redo_from
        reusable = not redo and state.get(stage) == prints[stage] and done_checks[stage]()
        if reusable:
            info(f"[{stage}] complete with the same settings, skipped")
            timings[stage] = "skipped"
            continue
        if state.get(stage) and state.get(stage) != prints[stage] and not redo:
            info(f"[{stage}] settings changed since the last run: redoing it and every later stage")
        redo = True  # once a stage is redone, everything downstream must be too
        for later in STAGES[STAGES.index(stage):]:
            state.pop(later, None)  # also when --until stops before them
        atomic_write_json(state_path, state)
        info(f"[{stage}] running")
        start = time.perf_counter()
        with tracker(stage) as t:
            actions[stage](t)
        timings[stage] = f"{time.perf_counter() - start:.0f}s"
        state[stage] = prints[stage]
        atomic_write_json(state_path, state)

    report = layout.report / "report.html"
    summary(f"mbert run finished: {layout.root} (" + ", ".join(f"{s} {t}" for s, t in timings.items()) + ")."
            + (f"\nReport: {report}" if "report" in timings else f"\nStopped after {until}."))
    return report


def default_recipe() -> Path:
    """The embedded demo recipe that ships in the repository."""
    path = Path(__file__).resolve().parent.parent / "corpora" / "demo.toml"
    if not path.is_file():
        raise UserError(f"the embedded demo recipe {path} is missing (install from a source checkout with "
                        "`pip install -e .`), or pass a recipe: mbert run RECIPE.toml")
    return path
