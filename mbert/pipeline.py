"""`mbert run`: every stage in order, through files in one run folder.

A stage is skipped when its output is complete *and* was produced with the same settings as now
(its own and those of every stage before it); otherwise it and everything after it are redone.
That makes an interrupted run resume, and an edited recipe redo only what it changed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .artifact import differences, fingerprint, output_settings, writing
from .atomic import atomic_write_json
from .config import to_plain, write_resolved
from .errors import UserError
from .progress import info, summary
from .recipe import Recipe
from .tracking import Tracker

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


# the recipe sections each stage's output depends on, besides everything the stages before it depend on
STAGE_SECTIONS = {"corpus": ("corpus",), "sample": ("sample",), "vocab": ("vocab", "run"),
                  "pretrain": ("pretrain", "variants"), "evaluate": ("evaluate",), "report": ("report",)}


def stage_fingerprints(recipe: Recipe) -> dict[str, str]:
    """A hash per stage over its output settings and those of all earlier stages (runtime-only
    settings such as workers, device or the W&B project never enter it)."""
    plain = output_settings(recipe)
    chain: list = []
    prints = {}
    for stage in STAGES:
        chain += [{section: plain[section] for section in STAGE_SECTIONS[stage]}]
        if stage == "evaluate":
            chain.append(hashlib.sha256(Path(recipe.evaluate.suite).read_bytes()).hexdigest())
        prints[stage] = fingerprint(*chain)
    return prints


def _changes(previous: dict, recipe: Recipe, stage: str) -> str:
    """The output settings of `stage` that differ from the previous run's recipe, for messages."""
    plain = output_settings(recipe)
    found = [change for section in STAGE_SECTIONS[stage]
             for change in differences(previous.get(section, {}), plain[section], f"{section}.")]
    return "; ".join(found) or "its inputs or the way mbert fingerprints them changed"


def run_pipeline(recipe: Recipe, *, redo_from: str | None = None, until: str | None = None) -> Path:
    """Run the stages of `recipe` in order (up to `until`, inclusive); returns the report path."""
    layout = RunLayout(Path(recipe.run.out))
    _check_corpus_sources(recipe, layout, redo_from)
    with writing(layout.root):  # one `mbert run` per run folder: they share run_state.json
        return _run_stages(recipe, layout, redo_from, until)


def _check_corpus_sources(recipe: Recipe, layout: RunLayout, redo_from: str | None) -> None:
    """A missing corpus source is an invalid setting: when the corpus stage will run, it stops the
    run before any work (before the run folder is made)."""
    from .corpus.extract import is_complete as corpus_done
    from .corpus.sources import check_sources

    state_path = layout.root / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if redo_from == "corpus" or state.get("corpus") != stage_fingerprints(recipe)["corpus"] \
            or not corpus_done(layout.clean):
        check_sources(recipe.corpus.sources)


def _run_stages(recipe: Recipe, layout: RunLayout, redo_from: str | None, until: str | None) -> Path:
    layout.root.mkdir(parents=True, exist_ok=True)
    state_path = layout.root / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    resolved = layout.root / "recipe.resolved.toml"
    previous = tomllib.loads(resolved.read_text(encoding="utf-8")) if resolved.is_file() else {}
    prints = stage_fingerprints(recipe)

    from .corpus.extract import extract_corpus, is_complete as corpus_done
    from .corpus.sample import is_complete as sample_done, sample_mixture
    from .pretrain.run_folder import holds_run, is_complete as pretrain_done, run_differences
    from .pretrain.train import pretrain
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

    # Pretraining is never replaced implicitly (it may hold days of GPU work): a finished run or
    # checkpoints with the recipe's output settings and inputs are used or resumed, anything else
    # stops the run with the differences named, unless `--from` asks to redo it.
    replace = redo_from is not None and STAGES.index(redo_from) <= STAGES.index("pretrain")

    def pretrain_stage(t: Tracker) -> None:
        for name, settings in variants.items():
            info(f"[pretrain] variant {name!r}")
            if not replace and pretrain_done(model_dirs[name]) \
                    and run_differences(model_dirs[name], layout.mixture, layout.vocab, settings) == []:
                summary(f"Pretraining: using the finished run in {model_dirs[name]} (same settings, corpus and "
                        f"vocabulary; made by an earlier run, or outside it, e.g. with torchrun).")
                continue
            if settings.token_store is None and len(variants) > 1:
                # variants read the same mixture with the same vocabulary: tokenize it once
                settings = dataclasses.replace(settings, token_store=layout.root / "pretrain" / "token_store")
            # W&B keys: `pretrain/loss`, or `pretrain/<variant>/loss` when variants train side by side
            pretrain(layout.mixture, layout.vocab, model_dirs[name], settings, t, replace=replace,
                     redo_hint="--from pretrain",
                     metric_prefix="pretrain" if len(variants) == 1 else f"pretrain/{name}")

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

    redo = recorded = False
    timings: dict[str, str] = {}
    for stage in STAGES[:STAGES.index(until) + 1] if until else STAGES:
        redo = redo or stage == redo_from
        reusable = not redo and state.get(stage) == prints[stage] and done_checks[stage]()
        if reusable:
            info(f"[{stage}] complete with the same settings, skipped")
            timings[stage] = "skipped"
            continue
        if state.get(stage) and state.get(stage) != prints[stage] and not redo:
            changes = _changes(previous, recipe, stage)
            kept = [d for d in model_dirs.values() if holds_run(d)]
            if not replace and kept and STAGES.index(stage) < STAGES.index("pretrain"):
                # check before redoing anything: the pretraining would be trained on other inputs
                raise UserError(f"the {stage} settings changed since the last run ({changes}), and redoing "
                                f"{stage} would replace the pretraining in {kept[0]}; pass --from {stage} to "
                                f"redo it and everything after it, or move the pretraining away first")
            info(f"[{stage}] settings changed since the last run ({changes}): redoing it and every later stage")
        if not recorded:  # the first stage that runs: from here on the outputs follow this recipe
            write_resolved(layout.root, to_plain(recipe), name=resolved.name)
            recorded = True
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

    if not recorded:  # every stage skipped: runtime settings may still have changed
        write_resolved(layout.root, to_plain(recipe), name=resolved.name)
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
