"""Per-language text for the tokenizer report, from whatever the user has.

Accepted: a clean corpus folder (`DIR/<lang>/part-*.parquet`), a mixture folder
(`DIR/part-*.parquet` with a `lang` column), a folder of `<lang>.txt` files, or a mapping
language -> files (`.txt`: one sentence per line; `.parquet`: a `text` column, one sentence per
line; a folder of `part-*.parquet`). Lines are split on "\\n" only and read lazily, so a cap on
lines per language also caps what is read."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..corpus.layout import CorpusFolder, Shard, find_corpus
from .shards import iter_line_batches

TextSource = dict[str, list[Path]] | Path


def parse_text_args(values: list[str]) -> TextSource:
    """CLI `--text`: one folder, or `lang=path` items (repeat a language for several files)."""
    if len(values) == 1 and "=" not in values[0]:
        return Path(values[0])
    mapping: dict[str, list[Path]] = {}
    for value in values:
        lang, sep, path = value.partition("=")
        if not sep or not lang or not path:
            raise UserError(f"--text {value!r}: give one folder, or items like en=path/en.txt")
        mapping.setdefault(lang.strip(), []).append(Path(path))
    return mapping


def read_languages(texts: TextSource, max_lines: int | None) -> dict[str, list[str]]:
    """Language -> its non-empty lines (at most `max_lines` each), in a stable language order."""
    if isinstance(texts, (str, Path)):
        return _read_folder(Path(texts), max_lines)
    result = {}
    for lang, paths in texts.items():
        lines: list[str] = []
        for path in paths:
            lines.extend(islice(_file_lines(Path(path)), None if max_lines is None else max_lines - len(lines)))
        if not lines:
            raise UserError(f"no text for language {lang!r} in {', '.join(map(str, paths))}; give non-empty files")
        result[lang] = lines
    return result


def _read_folder(root: Path, max_lines: int | None) -> dict[str, list[str]]:
    if not root.is_dir():
        raise UserError(f"text {root} is not a folder; give a corpus folder, a folder of <lang>.txt files, "
                        f"or lang=path items")
    txt = sorted(root.glob("*.txt"))
    if txt and not any(root.glob("part-*.parquet")) and not any(root.glob("*/part-*.parquet")):
        return read_languages({p.stem: [p] for p in txt}, max_lines)
    folder = find_corpus(root)
    result: dict[str, list[str]] = {}
    if folder.layout == "clean":  # one language at a time: reading stops at the cap
        for lang in sorted({s.lang for s in folder.shards}):
            subset = CorpusFolder(root, "clean", [s for s in folder.shards if s.lang == lang])
            lines = _take(iter_line_batches(subset), max_lines)
            if lines:
                result[lang] = lines
    else:
        for lang, lines in iter_line_batches(folder, by_language=True):
            kept = result.setdefault(lang, [])
            room = len(lines) if max_lines is None else max_lines - len(kept)
            kept.extend(lines[:max(room, 0)])
    if not result:
        raise UserError(f"corpus {root} holds no text; rebuild it with `mbert corpus`")
    return dict(sorted(result.items()))


def _take(batches: Iterator[tuple[str | None, list[str]]], max_lines: int | None) -> list[str]:
    lines: list[str] = []
    for _, batch in batches:
        lines.extend(batch)
        if max_lines is not None and len(lines) >= max_lines:
            return lines[:max_lines]
    return lines


def _file_lines(path: Path) -> Iterator[str]:
    if path.is_dir() or path.suffix == ".parquet":
        folder = CorpusFolder(path, "clean", [Shard(p, "?") for p in sorted(path.glob("part-*.parquet"))]
                              if path.is_dir() else [Shard(path, "?")])
        if not folder.shards:
            raise UserError(f"folder {path} holds no part-*.parquet files")
        for _, lines in iter_line_batches(folder):
            yield from lines
        return
    try:
        # newline="\n": split on "\n" only (sentences may contain U+2028 and other separators)
        with open(path, encoding="utf-8", newline="\n") as handle:
            for line in handle:
                line = line.rstrip("\n").rstrip("\r")
                if line.strip():
                    yield line
    except FileNotFoundError:
        raise UserError(f"text file {path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError(f"text file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"cannot read text file {path}: {exc.strerror}") from None
