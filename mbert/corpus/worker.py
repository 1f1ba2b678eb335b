"""The work done in worker processes: clean one unit into a staging shard, and merge a language's
staging shards into its final, de-duplicated `part-*.parquet` files."""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .segment import Segmenter
from .shards import RotatingWriter, ShardWriter, iter_rows
from .sources import Unit, read_unit
from .wikitext import Namespaces, WikitextCleaner, is_disambiguation


@dataclass(frozen=True)
class CleanOptions:
    wiki: str                       # Wikipedia code (sentencex language)
    min_sentence_chars: int = 2
    max_sentence_chars: int = 2000
    min_document_sentences: int = 1
    shard_bytes: int = 256 << 20


def process_unit(unit: Unit, options: CleanOptions, out_file: Path) -> dict:
    """Clean, segment and filter the documents of one unit into `out_file` (id, title, text)."""
    started = time.perf_counter()
    names = dict(unit.source.namespaces)
    cleaner = WikitextCleaner(Namespaces.from_siteinfo(names) if names else Namespaces())
    segmenter = Segmenter(options.wiki, options.min_sentence_chars, options.max_sentence_chars)
    wikitext = unit.source.kind in ("xml", "multistream")
    counts = {"pages": 0, "documents": 0, "namespace": 0, "redirect": 0, "disambiguation": 0, "short": 0}
    writer = ShardWriter(out_file)
    try:
        for page in read_unit(unit):
            counts["pages"] += 1
            if wikitext:
                if page.ns != 0:
                    counts["namespace"] += 1
                    continue
                if page.redirect:
                    counts["redirect"] += 1
                    continue
                if is_disambiguation(page.title, page.text):
                    counts["disambiguation"] += 1
                    continue
                sentences = [s for paragraph in cleaner.clean(page.text).split("\n")
                             for s in segmenter.split(paragraph)]
            elif unit.source.kind == "text":  # already one sentence per line
                sentences = [s for line in page.text.split("\n") if (s := segmenter.keep(line))]
            else:  # cleaned Wikipedia text: paragraphs, one per line
                sentences = [s for paragraph in page.text.split("\n") for s in segmenter.split(paragraph)]
            if len(sentences) < options.min_document_sentences:
                counts["short"] += 1
                continue
            writer.write(id=page.id, title=page.title, text="\n".join(sentences))
            counts["documents"] += 1
        writer.close()
    except BaseException:
        writer.abort()
        raise
    stats = asdict(segmenter.stats)
    return {"unit": unit.key, "source": unit.source.path, "seconds": time.perf_counter() - started,
            **counts, "sentence_filter": stats}


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class _HashSpill:
    """(hash, position) pairs spilled to disk in 2^bits buckets by the hash's top bits, so that
    finding repeats needs memory for one bucket at a time, not for the whole language."""

    BUFFER = 1 << 20  # values held in memory over all buckets (~40 MB of Python ints)

    def __init__(self, folder: Path, name: str, bits: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.bits = bits
        self.files = [folder / f"{name}-{b:05d}.u64" for b in range(1 << bits)]
        self.buffers: list[list[int]] = [[] for _ in self.files]
        # a share of one budget per bucket: more buckets (a larger language) must not mean more memory
        self.flush_at = max(256, self.BUFFER // len(self.files))

    def add(self, value: int, position: int) -> None:
        bucket = value >> (64 - self.bits) if self.bits else 0
        buffer = self.buffers[bucket]
        buffer.append(value)
        buffer.append(position)
        if len(buffer) >= self.flush_at:
            self._flush(bucket)

    def _flush(self, bucket: int) -> None:
        if self.buffers[bucket]:
            with open(self.files[bucket], "ab") as handle:
                np.asarray(self.buffers[bucket], dtype=np.uint64).tofile(handle)
            self.buffers[bucket] = []

    def repeats(self) -> np.ndarray:
        """Sorted positions whose hash already occurred at an earlier position."""
        found = [np.empty(0, dtype=np.uint64)]
        for bucket, path in enumerate(self.files):
            self._flush(bucket)
            if not path.exists():
                continue
            pairs = np.fromfile(path, dtype=np.uint64).reshape(-1, 2)
            path.unlink()
            order = np.lexsort((pairs[:, 1], pairs[:, 0]))
            values, positions = pairs[order, 0], pairs[order, 1]
            found.append(positions[1:][values[1:] == values[:-1]])
        return np.sort(np.concatenate(found))


class _Membership:
    """`position in sorted_array` for positions asked in increasing order."""

    def __init__(self, positions: np.ndarray) -> None:
        self.positions = positions.tolist()
        self.next = 0

    def __contains__(self, position: int) -> bool:
        while self.next < len(self.positions) and self.positions[self.next] < position:
            self.next += 1
        return self.next < len(self.positions) and self.positions[self.next] == position


def finalize_language(unit_files: list[Path], out_folder: Path, options: CleanOptions,
                      expected_sentences: int = 0, bucket_bits: int | None = None) -> dict:
    """Exact de-duplication over the whole language (documents, then sentences; 64-bit BLAKE2
    hashes) while copying the staging shards, in unit order, into `out_folder/part-*.parquet`.

    Pass 1 spills (hash, position) pairs to disk buckets; each bucket is then sorted on its own to
    find the positions that repeat an earlier one; pass 2 copies everything else. Memory holds
    one bucket (~4M pairs) plus the positions of duplicates."""
    work = out_folder.parent / "dedup"
    bits = bucket_bits if bucket_bits is not None else \
        max(0, min(12, math.ceil(math.log2(max(1, expected_sentences) / (4 << 20)))))
    doc_spill, sentence_spill = _HashSpill(work, "doc", bits), _HashSpill(work, "sentence", bits)
    doc_position = sentence_position = 0
    for path in unit_files:
        for row in iter_rows(path, ["text"]):
            doc_spill.add(_digest(row["text"]), doc_position)
            doc_position += 1
            for sentence in row["text"].split("\n"):
                sentence_spill.add(_digest(sentence), sentence_position)
                sentence_position += 1
    repeated_docs = _Membership(doc_spill.repeats())
    repeated_sentences = _Membership(sentence_spill.repeats())
    shutil.rmtree(work, ignore_errors=True)

    totals = {"documents": 0, "sentences": 0, "characters": 0, "bytes": 0,
              "duplicate_documents": 0, "duplicate_sentences": 0, "short_after_dedup": 0}
    writer = RotatingWriter(out_folder, shard_bytes=options.shard_bytes)
    doc_position = sentence_position = 0
    try:
        for path in unit_files:
            for row in iter_rows(path, ["id", "title", "text"]):
                sentences = row["text"].split("\n")
                first_sentence = sentence_position
                sentence_position += len(sentences)
                doc_position += 1
                if doc_position - 1 in repeated_docs:
                    totals["duplicate_documents"] += 1
                    continue
                kept = [s for offset, s in enumerate(sentences)
                        if first_sentence + offset not in repeated_sentences]
                totals["duplicate_sentences"] += len(sentences) - len(kept)
                if len(kept) < options.min_document_sentences:
                    totals["short_after_dedup"] += 1
                    continue
                text = "\n".join(kept)
                writer.write(id=row["id"], title=row["title"], text=text)
                totals["documents"] += 1
                totals["sentences"] += len(kept)
                totals["characters"] += len(text) - (len(kept) - 1)
                totals["bytes"] += len(text.encode("utf-8"))
        parts = writer.close()
    except BaseException:
        writer.abort()
        raise
    if not parts:  # an empty language still gets one (empty) shard so readers find the columns
        empty = ShardWriter(out_folder / "part-00000.parquet")
        parts = [empty.close()]
    totals["parts"] = [p.name for p in parts]
    return totals
