"""Task data: read a suite task's files into train / dev / per-language test examples, check them.

Everything a user can get wrong (a missing file or language, a label the training data never
shows, parallel files of different lengths) is collected and reported in one error before any
model is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..fake import base_language, fake_text, parse_fake_code
from .readers import SentencePair, TaggedSentence, load_hub, read_pairs, read_tagged
from .suite import RETRIEVAL_KINDS, TOKEN_KINDS, Suite, TaskSpec

Example = TaggedSentence | SentencePair


@dataclass
class TaskData:
    name: str
    kind: str
    source: str
    labels: list[str]
    train: list[Example]
    dev: list[Example]
    test: dict[str, list[Example]]
    metric: str = ""  # "" = the kind's own (see suite.METRICS); pos may use "f1"

    @property
    def is_token_task(self) -> bool:
        return self.kind in TOKEN_KINDS


def _read(path: Path, kind: str) -> list[Example]:
    examples = read_tagged(path) if kind in TOKEN_KINDS else read_pairs(path)
    if not examples:
        raise UserError(f"{path} holds no examples; check the file")
    return examples


def fake_examples(examples: list[Example], code: str) -> list[Example]:
    """The examples in the fake language `code` (mbert.fake, the mapping of the corpus copies): each
    word or sentence mapped on its own, labels unchanged."""
    if examples and isinstance(examples[0], TaggedSentence):
        return [TaggedSentence(tuple(fake_text(word, code) for word in s.words), s.tags) for s in examples]
    return [SentencePair(fake_text(p.first, code), fake_text(p.second, code), p.label) for p in examples]


def _read_language(suite: Suite, template: str, lang: str, kind: str) -> list[Example]:
    """A language's file; a fake language (`en-fake`) reads its base language's file and maps it."""
    examples = _read(suite.task_path(template, base_language(lang)), kind)
    return fake_examples(examples, lang) if parse_fake_code(lang) else examples


def _labels_of(examples: list[Example]) -> set[str]:
    if examples and isinstance(examples[0], TaggedSentence):
        return {tag for sentence in examples for tag in sentence.tags}
    return {pair.label for pair in examples}


def required_files(suite: Suite, spec: TaskSpec) -> list[Path]:
    """Every local file a task reads (empty for hub and retrieval tasks)."""
    if spec.hub or spec.kind in RETRIEVAL_KINDS:
        return []
    files = [suite.task_path(spec.test, base_language(lang)) for lang in spec.languages]
    if spec.split_by_index:
        files.append(suite.task_path(spec.test, suite.source))
    else:
        files.append(suite.task_path(spec.train, suite.source))
        if spec.dev:
            files.append(suite.task_path(spec.dev, suite.source))
    return list(dict.fromkeys(files))


def load_task(suite: Suite, name: str, spec: TaskSpec, *, max_train: int | None = None,
              max_eval: int | None = None) -> TaskData:
    """Train / dev / test examples of one fine-tuning task, with caps applied and labels checked."""
    max_train = max_train or spec.max_train_examples
    max_eval = max_eval or spec.max_eval_examples
    missing = [str(p) for p in required_files(suite, spec) if not p.is_file()]
    if missing:
        raise UserError(f"task {name}: missing data file(s): {', '.join(missing)}; fix the paths or "
                        f"languages in the suite")
    if spec.hub:
        kind = "token" if spec.kind in TOKEN_KINDS else "pair"
        full_train = load_hub(spec.hub, suite.source, "train", kind)
        dev = load_hub(spec.hub, suite.source, "validation", kind)
        test = {lang: load_hub(spec.hub, base_language(lang), "test", kind) for lang in spec.languages}
        test = {lang: fake_examples(examples, lang) if parse_fake_code(lang) else examples
                for lang, examples in test.items()}
    elif spec.split_by_index:
        full_train, dev, test = _split_parallel(suite, name, spec)
    else:
        full_train = _read(suite.task_path(spec.train, suite.source), spec.kind)
        if spec.dev:
            dev = _read(suite.task_path(spec.dev, suite.source), spec.kind)
        else:
            held = max(1, int(len(full_train) * spec.dev_fraction))
            if held >= len(full_train):
                raise UserError(f"task {name}: the training file has {len(full_train)} examples, too few "
                                "to hold out a dev set; give dev = \"...\"")
            full_train, dev = full_train[:-held], full_train[-held:]
        test = {lang: _read_language(suite, spec.test, lang, spec.kind) for lang in spec.languages}
    labels = list(spec.labels) or sorted(_labels_of(full_train))
    _check_labels(name, labels, dev, test, suite.source)
    if len(labels) < 2:
        raise UserError(f"task {name}: the training data has only the label(s) {labels}; nothing to learn")
    return TaskData(name=name, kind=spec.kind, source=suite.source, labels=labels,
                    train=full_train[:max_train], dev=dev[:spec.max_dev_examples],
                    test={lang: examples[:max_eval] for lang, examples in test.items()},
                    metric=spec.scored_metric)


def _split_parallel(suite: Suite, name: str, spec: TaskSpec
                    ) -> tuple[list[Example], list[Example], dict[str, list[Example]]]:
    """Parallel files split by example index into contiguous train / dev / test blocks, so no
    translation of a training example is ever scored (XNLI keeps a premise's three hypotheses
    together, so contiguous blocks also keep premises apart)."""
    languages = list(dict.fromkeys([suite.source, *spec.languages]))
    files = {lang: _read_language(suite, spec.test, lang, spec.kind) for lang in languages}
    sizes = {lang: len(examples) for lang, examples in files.items()}
    if len(set(sizes.values())) != 1:
        listing = ", ".join(f"{lang}: {n}" for lang, n in sizes.items())
        raise UserError(f"task {name}: split_by_index needs parallel files of equal length, found {listing}")
    total = sizes[suite.source]
    n_train = int(total * spec.train_fraction)
    n_dev = int(total * spec.dev_fraction)
    if n_train < 1 or n_dev < 1 or n_train + n_dev >= total:
        raise UserError(f"task {name}: {total} examples cannot be split into train {spec.train_fraction} "
                        f"/ dev {spec.dev_fraction} / test parts; change the fractions")
    source = files[suite.source]
    test = {lang: files[lang][n_train + n_dev:] for lang in spec.languages}
    return source[:n_train], source[n_train:n_train + n_dev], test


def _check_labels(name: str, labels: list[str], dev: list[Example], test: dict[str, list[Example]],
                  source: str) -> None:
    known = set(labels)
    problems = []
    for where, examples in [(f"{source} dev", dev), *test.items()]:
        unknown = sorted(_labels_of(examples) - known)
        if unknown:
            problems.append(f"{where}: {', '.join(unknown)}")
    if problems:
        raise UserError(f"task {name}: labels that the training data does not have ({sorted(known)}) "
                        f"appear in {'; '.join(problems)}; map them to the training label set or list "
                        "them under labels = [...]")
