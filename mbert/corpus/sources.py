"""Source files: what kind each is (detected from its bytes), how it is cut into work units, and
reading one unit as a stream of raw documents.

Kinds: `xml` (MediaWiki dump, any compression), `multistream` (bz2 dump with its `-index.txt.bz2`),
`parquet` (`text` column, optional `id`/`title`: the wikimedia/wikipedia layout), `arrow`
(the same columns in an Arrow IPC file, e.g. a `datasets` cache), `text` (one sentence per line,
blank line between documents), `hf` (`hf:NAME[:CONFIG]` loaded with `datasets.load_dataset`).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError, UserError
from ..unicode_scripts import ISO_15924, letter_scripts
from . import dump
from .dump import Page
from .languages import Language

_INDEX_LINE = re.compile(r"^\d+:\d+:")


@dataclass(frozen=True)
class Source:
    path: str
    kind: str
    index: str | None = None       # multistream index
    encoding: str = "utf-8"
    language: str | None = None    # from <siteinfo> (dumps only)
    namespaces: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Unit:
    """One task for one worker: a whole file, or a byte/row-group range of one."""

    lang: str
    source: Source
    key: str              # unique within the language; names the unit's output file
    start: int = 0
    end: int = 0


def expand(patterns: list[str], lang: str) -> list[Path]:
    """Source paths from paths and globs; an `hf:` name passes through. A missing path is an
    invalid setting (exit 2), found before any work."""
    paths: list[Path] = []
    for pattern in patterns:
        if pattern.startswith("hf:"):
            paths.append(Path(pattern))
            continue
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise ConfigError(f"corpus source {pattern!r} of {lang!r} matches no file; check the path or "
                              f"pattern (--source or [corpus.sources])")
        for match in matches:
            path = Path(match)
            if not path.exists():
                raise ConfigError(f"corpus source {str(path)!r} of {lang!r} does not exist; check the path "
                                  f"(--source or [corpus.sources])")
            if path.is_dir():
                paths.extend(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")))
            else:
                paths.append(path)
    return list(dict.fromkeys(paths))


def check_sources(sources: dict[str, list[str]]) -> None:
    """Refuse missing source paths up front, like every other missing input."""
    for lang, patterns in sources.items():
        expand(list(patterns), lang)


def detect(path: Path) -> Source:
    """What kind of source `path` is, from its first bytes (after decompression)."""
    if str(path).startswith("hf:"):
        return Source(path=str(path), kind="hf")
    if not os.access(path, os.R_OK):
        raise UserError(f"source {path} is not readable; fix its permissions")
    if path.stat().st_size == 0:
        raise UserError(f"source {path} is empty; remove it from the sources or re-download it")
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic.startswith(b"PAR1"):
        return Source(path=str(path), kind="parquet")
    if magic.startswith(b"ARROW1") or magic.startswith(b"\xff\xff\xff\xff"):
        return Source(path=str(path), kind="arrow")
    try:
        with dump.open_compressed(path) as stream:
            head = stream.read(4096)
    except (OSError, EOFError) as exc:
        raise UserError(f"source {path}: the compressed file is corrupt or truncated ({exc}); "
                        f"re-download it") from None
    if not head.strip():
        raise UserError(f"source {path} holds no data; remove it from the sources or re-download it")
    text = dump.decode_head(head).lstrip()
    if text.startswith("<") and "<mediawiki" in text[:2000]:
        index = dump.index_for(path) if magic.startswith(b"BZh") else None
        return Source(path=str(path), kind="multistream" if index else "xml",
                      index=str(index) if index else None)
    if _INDEX_LINE.match(text):
        return Source(path=str(path), kind="index")
    compressed = dump.is_compressed(path)
    if compressed:  # a flipped bit garbles the start of a dump before any checksum is read
        dump.check_compressed(path)
    if text.startswith("<"):
        raise UserError(f"source {path} is XML but not a MediaWiki dump (no <mediawiki> element)")
    if compressed:
        raise UserError(f"source {path} is compressed but is not a MediaWiki dump; plain text sources "
                        f"are read uncompressed: decompress it first")
    return Source(path=str(path), kind="text")


def with_siteinfo(source: Source, expected_wiki: str, lang: str) -> Source:
    """Read a dump's <siteinfo>; refuse a dump of another language."""
    info = dump.read_siteinfo(Path(source.path))
    if info.language and info.language.lower() != expected_wiki.lower():
        raise UserError(f"{source.path} is a {info.language!r} Wikipedia dump (<siteinfo>) but it is listed "
                        f"for language {lang!r} (wiki {expected_wiki!r}); fix --lang or the source list")
    return Source(path=source.path, kind=source.kind, index=source.index, encoding=info.encoding,
                  language=info.language, namespaces=tuple(sorted(info.namespaces.items())))


def resolve(lang: str, wiki: str, patterns: list[str]) -> list[Source]:
    """Classify every source of one language; a multistream index given next to its dump is used
    with the dump, not read as text."""
    paths = expand(patterns, lang)
    if not paths:
        raise UserError(f"[{lang}] has no source files; give at least one --source")
    sources = [detect(p) for p in paths]
    indexes = {s.index for s in sources if s.index}
    resolved = []
    for source in sources:
        if source.kind == "index":
            if source.path in indexes:
                continue
            raise UserError(f"{source.path} is a multistream index, not a corpus; pass the dump it belongs "
                            f"to (it is found next to it)")
        if source.kind in ("xml", "multistream"):
            source = with_siteinfo(source, wiki, lang)
        resolved.append(source)
    return resolved


SCRIPT_SAMPLE_BYTES = 1 << 20
MIN_SCRIPT_SHARE = 0.5  # a language's own scripts hold >= 97% of the letters of every kit text


def check_text_script(source: Source, lang: Language) -> None:
    """Refuse plain text whose letters are mostly in scripts `lang` is not written in (e.g. Japanese
    text given as English); the language is judged from the start of the file."""
    codes = (lang.script, *lang.other_scripts)
    if source.kind != "text" or not all(code in ISO_15924 for code in codes):
        return
    expected = {name for code in codes for name in ISO_15924[code]}
    with open(source.path, "rb") as handle:
        raw = handle.read(SCRIPT_SAMPLE_BYTES)
    counts = letter_scripts(raw.decode(dump.detect_encoding(raw[:4]), errors="ignore"))
    letters = sum(counts.values())
    share = sum(n for script, n in counts.items() if script in expected) / max(1, letters)
    if letters >= 100 and share < MIN_SCRIPT_SHARE:
        found = ", ".join(f"{script} {n / letters:.0%}" for script, n in counts.most_common(2) if n / letters >= 0.01)
        raise UserError(f"source {source.path} does not look like {lang.name}: its letters are {found}, but "
                        f"{lang.code!r} is written in {' or '.join(sorted(expected))}; check --lang, or pass "
                        f"--set corpus.check_script=false to take it anyway")


def plan_units(lang: str, sources: list[Source], pieces: int, max_bytes: int) -> list[Unit]:
    """Cut sources into units: multistream dumps by stream offsets, Parquet by row groups."""
    units = []
    for number, source in enumerate(sources):
        if source.kind == "multistream":
            size = os.path.getsize(source.path)
            offsets = dump.read_index_offsets(Path(source.index), size)
            for start, end in dump.plan_ranges(offsets, size, pieces, max_bytes):
                units.append(Unit(lang, source, f"{number:04d}-{start:015d}", start, end))
        elif source.kind == "parquet":
            metadata = pq.ParquetFile(source.path).metadata
            groups = metadata.num_row_groups
            size = max(1, os.path.getsize(source.path))
            per_unit = max(1, min(groups, int(groups * max_bytes / size) or 1, -(-groups // pieces)))
            for start in range(0, max(groups, 1), per_unit):
                units.append(Unit(lang, source, f"{number:04d}-{start:015d}", start,
                                  min(groups, start + per_unit)))
        else:
            units.append(Unit(lang, source, f"{number:04d}-{0:015d}"))
    return units


# ----------------------------------------------------------------------------- reading one unit

def read_unit(unit: Unit) -> Iterator[Page]:
    """Raw documents of a unit. Dumps give wikitext pages; other kinds give plain text."""
    source, path = unit.source, Path(unit.source.path)
    if source.kind == "multistream":
        yield from dump.iter_range_pages(path, unit.start, unit.end, source.encoding,
                                         os.path.getsize(path))
    elif source.kind == "xml":
        yield from dump.iter_pages(path)
    elif source.kind == "parquet":
        yield from _parquet_pages(path, unit.start, unit.end)
    elif source.kind == "arrow":
        yield from _arrow_pages(path)
    elif source.kind == "text":
        yield from _text_documents(path)
    elif source.kind == "hf":
        yield from _hf_pages(source.path)
    else:
        raise UserError(f"{path}: unsupported source kind {source.kind!r}")


def _rows_to_pages(batch: pa.RecordBatch | pa.Table, path: Path, first_row: int) -> Iterator[Page]:
    names = batch.schema.names
    if "text" not in names:
        raise UserError(f"{path} has no `text` column (columns: {', '.join(names)}); expected the "
                        f"wikimedia/wikipedia layout id, url, title, text")
    texts = batch.column("text").to_pylist()
    ids = batch.column("id").to_pylist() if "id" in names else [None] * len(texts)
    titles = batch.column("title").to_pylist() if "title" in names else [None] * len(texts)
    for offset, (doc_id, title, text) in enumerate(zip(ids, titles, texts)):
        yield Page(id=str(doc_id) if doc_id is not None else f"{path.stem}-{first_row + offset}",
                   title=title or "", ns=0, redirect=False, text=text or "")


def _parquet_pages(path: Path, first_group: int, end_group: int) -> Iterator[Page]:
    try:
        reader = pq.ParquetFile(path)
        columns = [c for c in ("id", "title", "text") if c in reader.schema_arrow.names]
        row = sum(reader.metadata.row_group(g).num_rows for g in range(first_group))
        for group in range(first_group, end_group):
            for batch in reader.iter_batches(batch_size=1000, row_groups=[group], columns=columns or None):
                yield from _rows_to_pages(batch, path, row)
                row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: unreadable Parquet file ({exc}); re-download it") from None


def _arrow_pages(path: Path) -> Iterator[Page]:
    try:
        with pa.memory_map(str(path)) as mapped:
            try:
                reader = pa.ipc.open_file(mapped)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:
                mapped.seek(0)
                batches = iter(pa.ipc.open_stream(mapped))
            row = 0
            for batch in batches:
                yield from _rows_to_pages(batch, path, row)
                row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: unreadable Arrow file ({exc})") from None


def _text_documents(path: Path) -> Iterator[Page]:
    """Blank-line separated documents; the body keeps one sentence per line. Lines end at "\\n" only."""
    with open(path, "rb") as handle:
        encoding = dump.detect_encoding(handle.read(4))
    if encoding == "utf-8":
        encoding = "utf-8-sig"
    lines: list[str] = []
    number = 0
    try:
        with open(path, encoding=encoding, newline="\n") as handle:
            for line in handle:
                line = line.rstrip("\n").rstrip("\r")
                if line.strip():
                    lines.append(line)
                elif lines:
                    yield Page(id=f"{path.stem}-{number}", title="", ns=0, redirect=False, text="\n".join(lines))
                    number, lines = number + 1, []
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not {encoding} text ({exc}); convert it to UTF-8") from None
    if lines:
        yield Page(id=f"{path.stem}-{number}", title="", ns=0, redirect=False, text="\n".join(lines))


def _hf_pages(name: str) -> Iterator[Page]:
    """`hf:wikimedia/wikipedia:20231101.en` -> datasets.load_dataset(name, config, streaming=True)."""
    spec = name[len("hf:"):]
    dataset, _, config = spec.partition(":")
    try:
        import datasets
        stream = datasets.load_dataset(dataset, config or None, split="train", streaming=True)
    except Exception as exc:  # offline, unknown name, ...: all are the user's to fix
        raise UserError(f"cannot load {spec!r} with datasets.load_dataset ({exc}); download the Parquet "
                        f"files and pass their paths (or hf:FOLDER) instead") from None
    for number, row in enumerate(stream):
        yield Page(id=str(row.get("id", number)), title=row.get("title") or "", ns=0, redirect=False,
                   text=row.get("text") or "")
