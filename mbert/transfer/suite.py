"""Evaluation suite files (`eval/*.toml`): tasks, languages, data paths, hyper-parameters, seeds.

A suite is validated up front with `mbert.config.build`, so a typo or an out-of-range value fails
before any model is loaded. `data` is relative to the suite file and may use `${MBERT_DATA:-...}`;
task file paths are relative to `data` and may contain `{lang}`. Example (see eval/default.toml):

    data = "${MBERT_DATA:-../../shared/data}"
    source = "en"
    seeds = [1, 2]
    [tasks.panx]
    kind = "ner"
    train = "panx/train-en.tsv.xz"
    test = "panx/dev-{lang}.tsv"
    languages = ["en", "de", "zh"]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import build, read_toml, setting
from ..errors import ConfigError
from ..fake import parse_fake_code

TaskKind = Literal["pos", "ner", "pair", "tatoeba", "bucc"]
TOKEN_KINDS = ("pos", "ner")
RETRIEVAL_KINDS = ("tatoeba", "bucc")
METRICS = {"tatoeba": ("xx->en", "en->xx", "mean"), "pos": ("accuracy", "f1")}  # the first is the default


@dataclass
class HyperParameters:
    """Fine-tuning settings; every task may override any of them in its own table."""

    epochs: int | None = setting(None, min=1, help="passes over the training data; the best epoch on "
                                                 "the source dev set is kept")
    learning_rate: float | None = setting(None, min=0.0, min_exclusive=True)
    learning_rates: list[float] | None = setting(
        None, min=0.0, min_exclusive=True,
        help="rates to try instead of one learning_rate: each is fine-tuned with the first seed and the "
             "best on the source dev set is used for every seed (chosen per model and task)")
    batch_size: int | None = setting(None, min=1)
    eval_batch_size: int | None = setting(None, min=1)
    max_length: int | None = setting(None, min=8, max=8192, help="sub-tokens per example incl. specials")
    warmup_ratio: float | None = setting(None, min=0.0, max=1.0)
    weight_decay: float | None = setting(None, min=0.0)
    freeze_embeddings: bool | None = setting(None, help="keep the embedding layer fixed (Wu & Dredze 2019)")
    freeze_layers: int | None = setting(None, min=0, help="keep the lowest k encoder layers fixed")
    keep_layers: int | None = setting(None, min=1, help="fine-tune on the lowest k encoder layers only: the "
                                      "upper ones are dropped and the classifier reads layer k (unset = all)")


DEFAULT_HYPER = HyperParameters(epochs=2, learning_rate=5e-5, batch_size=32, eval_batch_size=64,
                                max_length=128, warmup_ratio=0.1, weight_decay=0.0,
                                freeze_embeddings=False, freeze_layers=0)


@dataclass
class TaskSpec(HyperParameters):
    kind: TaskKind = setting("pos", help="pos (accuracy), ner (entity F1), pair (accuracy), "
                                        "tatoeba / bucc (retrieval without fine-tuning)")
    languages: list[str] = setting([], help="languages to evaluate; include the source to get the gap")
    train: str = setting("", help="training file (relative to data; {lang} = the source language)")
    dev: str = setting("", help="source dev file for picking the epoch; empty = hold out dev_fraction "
                                "of the training file")
    test: str = setting("", help="test file per language (relative to data, with {lang})")
    folder: str = setting("", help="retrieval tasks: the data folder (relative to data)")
    hub: str = setting("", help="load from the Hugging Face hub instead (panx, udpos, xnli, pawsx, wikiann)")
    split_by_index: bool = setting(False, help="the test files are parallel: train on the source's first "
                                               "part, evaluate every language on the rest")
    train_fraction: float = setting(0.5, min=0.0, max=1.0, min_exclusive=True)
    dev_fraction: float = setting(0.1, min=0.0, max=1.0)
    labels: list[str] = setting([], help="label set; empty = the labels of the training file")
    max_train_examples: int | None = setting(None, min=1)
    max_dev_examples: int | None = setting(None, min=1)
    max_eval_examples: int | None = setting(None, min=1, help="per language")
    metric: str = setting("", help="tatoeba: xx->en (default), en->xx or mean; pos: accuracy (default, UPOS "
                                   "accuracy) or f1 (XTREME's seqeval F1 over the tags, comparable to its tables)")
    layer: int | None = setting(None, min=0, help="retrieval: hidden layer to mean-pool (0 = embeddings; "
                                                   "unset = the last layer); the headline score")
    layers: list[int] | Literal["all"] = setting([], help="tatoeba: also score these layers (or \"all\"), raw "
                                                          "and centred, recorded beside the headline")
    text: str = setting("", help="tatoeba: sentences (CoNLL-U `# text`, or one per line; relative to data) "
                                 "retrieved against their fake copies; languages are then fake codes (en-fake)")
    center: bool = setting(False, help="tatoeba: subtract each language's mean vector first")

    @property
    def scored_metric(self) -> str:
        """The metric reported for this task ("" for kinds that have only one)."""
        return self.metric or METRICS.get(self.kind, ("",))[0]

    def validate(self) -> None:
        if not self.languages:
            raise ConfigError(f"task of kind {self.kind!r} lists no languages; add languages = [...]")
        if self.metric and self.metric not in METRICS.get(self.kind, ()):
            allowed = ", ".join(METRICS.get(self.kind, ())) or "none (leave metric out)"
            raise ConfigError(f"metric = {self.metric!r} does not apply to a {self.kind} task; allowed: {allowed}")
        if self.kind != "tatoeba" and (self.layers or self.text):
            raise ConfigError(f"layers and text apply to tatoeba tasks only, not to a {self.kind} task")
        if self.layers and self.layers != "all" and any(k < 0 for k in self.layers):
            raise ConfigError(f"layers = {self.layers} has a negative layer; use 0 (embeddings) and up")
        if self.kind == "tatoeba" and self.text:
            if self.folder:
                raise ConfigError("a tatoeba task takes folder = (Tatoeba pairs) or text = (sentences scored "
                                  "against their fake copies), not both")
            real = [lang for lang in self.languages if parse_fake_code(lang) is None]
            if real:
                raise ConfigError(f"a tatoeba task with text = scores sentences against their fake copies, so "
                                  f"its languages must be fake codes (e.g. en-fake), not {', '.join(real)}")
            return
        if self.kind in RETRIEVAL_KINDS:
            if not self.folder:
                raise ConfigError(f"a {self.kind} task needs folder = \"...\" (its data folder)"
                                  + (" or text = \"...\"" if self.kind == "tatoeba" else ""))
            return
        if self.hub:
            return
        if not self.test:
            raise ConfigError(f"a {self.kind} task needs test = \"...{{lang}}...\" (or hub = ...)")
        if "{lang}" not in self.test:
            raise ConfigError(f"test = {self.test!r} must contain {{lang}} so each language has its file")
        if not self.split_by_index and not self.train:
            raise ConfigError(f"a {self.kind} task needs train = \"...\" or split_by_index = true")
        if self.split_by_index and self.train_fraction + self.dev_fraction >= 1.0:
            raise ConfigError(f"train_fraction + dev_fraction = {self.train_fraction + self.dev_fraction} "
                              "leaves no test part; keep their sum below 1")


@dataclass
class AlignmentSpec:
    """Alignment fine-tuning before the tasks (Cao et al. 2020), done by mbert.transfer.alignment."""

    enabled: bool = setting(False)
    parallel: list[list[str]] = setting([], help="[[source_file, target_file], ...] line-aligned text, "
                                                 "relative to data")
    steps: int = setting(200, min=1)
    learning_rate: float = setting(5e-5, min=0.0, min_exclusive=True)
    batch_size: int = setting(16, min=1)
    regularize: bool = setting(True, help="keep the source language's representations in place")
    max_pairs: int | None = setting(None, min=1)

    def validate(self) -> None:
        if self.enabled and not self.parallel:
            raise ConfigError("alignment.enabled = true needs alignment.parallel = [[src, tgt], ...]")
        for pair in self.parallel:
            if len(pair) != 2:
                raise ConfigError(f"alignment.parallel entry {pair!r} must be [source_file, target_file]")


@dataclass
class AnalysisSpec:
    """Language-neutrality analysis (mbert.transfer.neutrality), written to OUT/analysis/."""

    enabled: bool = setting(False)
    folder: str = setting("", help="Tatoeba-layout folder it reads (relative to data); empty = the "
                                   "suite's tatoeba task's folder")
    languages: list[str] = setting([])
    max_sentences: int = setting(200, min=1)


@dataclass
class Suite(HyperParameters):
    data: Path = setting(Path("."), path="dir", help="root that task paths are relative to")
    source: str = setting("en", help="language fine-tuned on")
    seeds: list[int] = setting([1], help="one fine-tuning run per seed; reported as mean ± std")
    models: dict[str, Path] = setting({}, path="dir", help="name = checkpoint folder, compared in one report")
    random_init: bool = setting(False, help="also evaluate fresh weights of the first model's shape")
    tasks: dict[str, TaskSpec] = setting({})
    alignment: AlignmentSpec = setting(AlignmentSpec())
    analysis: AnalysisSpec = setting(AnalysisSpec())

    def validate(self) -> None:
        if not self.tasks:
            raise ConfigError("the suite has no [tasks.NAME] tables; add at least one task")
        if not self.seeds:
            raise ConfigError("seeds = [] is empty; give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds = {self.seeds} repeats a seed")

    def hyper(self, task: TaskSpec) -> HyperParameters:
        """The task's hyper-parameters: its own value, else the suite's, else the default."""
        resolved = {}
        for name in HyperParameters.__dataclass_fields__:
            for source in (task, self, DEFAULT_HYPER):
                value = getattr(source, name)
                if value is not None:
                    resolved[name] = value
                    break
        if task.learning_rate is not None and task.learning_rates is None:
            resolved.pop("learning_rates", None)  # a task's own single rate beats the suite's list
        return HyperParameters(**resolved)

    def task_path(self, template: str, lang: str) -> Path:
        path = Path(template.format(lang=lang)).expanduser()
        return path if path.is_absolute() else self.data / path


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file; relative paths resolve against its folder."""
    path = Path(path)
    return build(Suite, read_toml(path), where=f"{path}: ", base_dir=path.resolve().parent)
