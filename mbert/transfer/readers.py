"""Readers for the task data layouts: CoNLL-U, XTREME `token<TAB>tag`, UNER `.iob2`, XTREME sentence pairs.

Every reader returns plain examples (`TaggedSentence` or `SentencePair`) and raises `UserError` naming
the file and line when the layout is wrong. `.xz`/`.bz2`/`.gz` files are read transparently. Lines are
split on "\\n" only: real sentences contain U+2028 and other characters `str.splitlines()` breaks on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..textfiles import read_lines


@dataclass(frozen=True)
class TaggedSentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class SentencePair:
    first: str
    second: str
    label: str


def read_conllu(path: Path) -> list[TaggedSentence]:
    """UD CoNLL-U: FORM and UPOS of each syntactic word. Multiword-token lines (`1-2`) and empty
    nodes (`1.1`) are skipped, so the words are the ones UPOS is annotated on."""
    return _read_columns(path, form_column=1, tag_column=3, columns=10, layout="CoNLL-U")


def read_iob2(path: Path) -> list[TaggedSentence]:
    """Universal NER `.iob2`: `ID FORM TAG - annotator`, comment lines as in UD."""
    return _read_columns(path, form_column=1, tag_column=2, columns=None, layout="UNER IOB2")


def _read_columns(path: Path, *, form_column: int, tag_column: int, columns: int | None,
                  layout: str) -> list[TaggedSentence]:
    sentences: list[TaggedSentence] = []
    for block in _sentence_blocks(path):
        words: list[str] = []
        tags: list[str] = []
        for number, line in block:
            if line.startswith("#"):
                continue
            fields = line.split("\t")
            if (columns is not None and len(fields) != columns) or len(fields) <= max(form_column, tag_column):
                raise UserError(f"{path}:{number}: expected {columns or 'at least ' + str(tag_column + 1)} "
                                f"tab-separated columns of {layout}, found {len(fields)}")
            token_id = fields[0]
            if "-" in token_id or "." in token_id:
                continue  # multiword token range or empty node: not a tagged word
            words.append(fields[form_column])
            tags.append(fields[tag_column])
        if words:
            sentences.append(TaggedSentence(tuple(words), tuple(tags)))
    return sentences


def _sentence_blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """(line number, line) groups separated by blank lines: one sentence each."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(read_lines(path), start=1):
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def read_xtreme_tags(path: Path) -> list[TaggedSentence]:
    """XTREME token layout (UD-POS, PAN-X): `token<TAB>tag`, blank line between sentences.
    A language prefix on the token (`en:Paris`, as in some XTREME copies) is kept as is."""
    sentences: list[TaggedSentence] = []
    for block in _sentence_blocks(path):
        words: list[str] = []
        tags: list[str] = []
        for number, line in block:
            fields = line.split("\t")
            if len(fields) != 2 or not fields[1]:
                raise UserError(f"{path}:{number}: expected `token<TAB>tag` (XTREME layout), found "
                                f"{len(fields)} column(s); unlabelled test files cannot be scored")
            words.append(fields[0])
            tags.append(fields[1])
        sentences.append(TaggedSentence(tuple(words), tuple(tags)))
    return sentences


def read_pairs(path: Path) -> list[SentencePair]:
    """XNLI / PAWS-X in XTREME layout: `sentence1<TAB>sentence2<TAB>label`, no header."""
    pairs: list[SentencePair] = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise UserError(f"{path}:{number}: expected `sentence1<TAB>sentence2<TAB>label`, "
                            f"found {len(fields)} column(s)")
        pairs.append(SentencePair(fields[0], fields[1], fields[2].strip()))
    return pairs


def token_format(path: Path) -> str:
    """Which token-task reader a file needs, from its name (compression suffixes ignored)."""
    name = Path(path).name
    for suffix in (".xz", ".bz2", ".gz"):
        name = name.removesuffix(suffix)
    if name.endswith(".conllu"):
        return "conllu"
    if name.endswith(".iob2"):
        return "iob2"
    return "xtreme"


def read_tagged(path: Path) -> list[TaggedSentence]:
    """A token-task file in whichever layout its name says."""
    reader = {"conllu": read_conllu, "iob2": read_iob2, "xtreme": read_xtreme_tags}[token_format(path)]
    sentences = reader(path)
    if not sentences:
        raise UserError(f"{path} holds no sentences; check the file")
    return sentences


# ----------------------------------------------------------------------------- optional: HF hub

HUB_NAMES = {"panx": ("xtreme", "PAN-X.{lang}"), "udpos": ("xtreme", "udpos.{lang}"),
             "xnli": ("xnli", "{lang}"), "pawsx": ("xtreme", "PAWS-X.{lang}"),
             "wikiann": ("wikiann", "{lang}")}


def load_hub(dataset: str, lang: str, split: str, kind: str) -> list[TaggedSentence] | list[SentencePair]:
    """The same tasks from the Hugging Face hub (`datasets.load_dataset`), when online.

    `dataset` is one of HUB_NAMES; the result has the same shape as the local readers' so the rest
    of the pipeline does not care where data came from."""
    if dataset not in HUB_NAMES:
        raise UserError(f"hub dataset {dataset!r} is not supported; use one of {', '.join(HUB_NAMES)}")
    import datasets

    name, config = HUB_NAMES[dataset]
    try:
        data = datasets.load_dataset(name, config.format(lang=lang), split=split)
    except Exception as exc:  # offline, unknown config, ...: the library raises many types
        raise UserError(f"cannot load {name}/{config.format(lang=lang)} split {split} from the hub "
                        f"({type(exc).__name__}: {exc}); use local files when offline") from None
    if kind == "pair":
        labels = data.features["label"].names if hasattr(data.features["label"], "names") else None
        first = "premise" if "premise" in data.column_names else "sentence1"
        second = "hypothesis" if "hypothesis" in data.column_names else "sentence2"
        return [SentencePair(row[first], row[second],
                             labels[row["label"]] if labels else str(row["label"])) for row in data]
    tag_column = "ner_tags" if "ner_tags" in data.column_names else "pos_tags"
    names = data.features[tag_column].feature.names
    return [TaggedSentence(tuple(row["tokens"]), tuple(names[t] for t in row[tag_column])) for row in data]
