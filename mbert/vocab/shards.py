"""Streaming the sentences of a corpus folder (Parquet shards) in bounded-memory batches.

Two layouts are accepted, both written by the corpus stage:
- a mixture folder: `DIR/part-*.parquet` with columns lang, id, title, text;
- a clean folder: `DIR/<lang>/part-*.parquet` with columns id, title, text.
`text` holds one document, one sentence per line. Only the columns needed are read, one record
batch at a time, so memory does not grow with the corpus size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..corpus.layout import CorpusFolder, Shard
from ..errors import UserError

BATCH_ROWS = 512  # documents per record batch: a few MB of text at most


@dataclass
class ReadStats:
    """What was streamed so far: documents, non-empty lines, characters and UTF-8 bytes."""

    documents: int = 0
    documents_used: int = 0  # those kept by `keep` (all unless the corpus is sampled)
    lines: int = 0
    chars: int = 0
    bytes: int = 0
    read_seconds: float | None = None  # set by the trainer once the whole corpus was read


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"cannot read corpus shard {path} ({exc}); it is damaged or not Parquet: "
                        f"rebuild the corpus or remove the file") from None


def _columns(shard: Shard, pf: pq.ParquetFile) -> list[str]:
    names = set(pf.schema_arrow.names)
    wanted = ["text"] if shard.lang is not None else ["lang", "text"]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise UserError(f"corpus shard {shard.path} has no column {missing[0]!r} (it has: "
                        f"{', '.join(sorted(names))}); expected the corpus stage's layout")
    return wanted


def count_documents(folder: CorpusFolder) -> int:
    return sum(_open(s.path).metadata.num_rows for s in folder.shards)


def iter_line_batches(folder: CorpusFolder, stats: ReadStats | None = None, *, by_language: bool = False,
                      languages: set[str] | None = None, keep: float = 1.0,
                      seed: int = 0) -> Iterator[tuple[str | None, list[str]]]:
    """Yield (language, non-empty lines) per record batch.

    Mixture batches hold several languages: with `by_language` they are split per language,
    otherwise the language is None. `languages` keeps only those languages. `keep` < 1 keeps each
    document with that probability (seeded, in file order: the same sample every time). `stats` is
    updated as batches are read (characters and bytes are counted in Arrow, not in Python)."""
    by_language = by_language or languages is not None
    stats = stats if stats is not None else ReadStats()
    rng = np.random.default_rng(seed) if keep < 1.0 else None
    for shard in folder.shards:
        if languages is not None and shard.lang is not None and shard.lang not in languages:
            continue
        pf = _open(shard.path)
        columns = _columns(shard, pf)
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                stats.documents += batch.num_rows
                if rng is not None:
                    batch = batch.filter(pa.array(rng.random(batch.num_rows) < keep))
                stats.documents_used += batch.num_rows
                yield from _batch_lines(shard, batch, stats, by_language, languages)
        except (OSError, pa.ArrowException) as exc:
            raise UserError(f"cannot read corpus shard {shard.path} ({exc}); rebuild the corpus") from None


def _lines_of(texts: pa.Array, stats: ReadStats) -> list[str]:
    texts = texts.cast(pa.large_string()).fill_null("")
    lines = pc.list_flatten(pc.split_pattern(texts, "\n"))  # "\n" only: sentences may hold U+2028
    lines = lines.filter(pc.greater(pc.utf8_length(lines), 0))
    stats.lines += len(lines)
    stats.chars += pc.sum(pc.utf8_length(lines)).as_py() or 0
    stats.bytes += pc.sum(pc.binary_length(lines)).as_py() or 0
    return lines.to_pylist()


def _batch_lines(shard: Shard, batch: pa.RecordBatch, stats: ReadStats, by_language: bool,
                 languages: set[str] | None) -> Iterator[tuple[str | None, list[str]]]:
    texts = batch.column("text")
    if shard.lang is not None:
        lines = _lines_of(texts, stats)
        if lines:
            yield shard.lang, lines
        return
    if not by_language:
        lines = _lines_of(texts, stats)
        if lines:
            yield None, lines
        return
    langs = batch.column("lang").cast(pa.string())
    wanted = set(pc.unique(langs).to_pylist())
    if languages is not None:
        wanted &= languages
    for lang in sorted(l for l in wanted if l is not None):
        lines = _lines_of(texts.filter(pc.equal(langs, lang)), stats)
        if lines:
            yield lang, lines
