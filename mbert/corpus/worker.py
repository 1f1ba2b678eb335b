"""The work done in worker processes: clean one unit into a staging shard, and merge a language's
staging shards into its final, de-duplicated `part-*.parquet` files."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

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


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


def finalize_language(unit_files: list[Path], out_folder: Path, options: CleanOptions) -> dict:
    """Exact de-duplication (documents, then sentences, 64-bit BLAKE2 hashes over the whole
    language) while copying staging shards, in unit order, into `out_folder/part-*.parquet`."""
    seen_docs: set[bytes] = set()
    seen_sentences: set[bytes] = set()
    totals = {"documents": 0, "sentences": 0, "characters": 0, "bytes": 0,
              "duplicate_documents": 0, "duplicate_sentences": 0, "short_after_dedup": 0}
    writer = RotatingWriter(out_folder, shard_bytes=options.shard_bytes)
    try:
        for path in unit_files:
            for row in iter_rows(path, ["id", "title", "text"]):
                doc_hash = _digest(row["text"])
                if doc_hash in seen_docs:
                    totals["duplicate_documents"] += 1
                    continue
                seen_docs.add(doc_hash)
                kept = []
                for sentence in row["text"].split("\n"):
                    sentence_hash = _digest(sentence)
                    if sentence_hash in seen_sentences:
                        totals["duplicate_sentences"] += 1
                        continue
                    seen_sentences.add(sentence_hash)
                    kept.append(sentence)
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
