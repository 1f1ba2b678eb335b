"""`corpus extract`: sources -> clean per-language Parquet shards + manifest.json.

Work is cut into units (whole files; multistream dumps by stream offsets; Parquet by row groups)
run by a process pool; each finished unit leaves a staging shard, so an interrupted language
resumes from its finished units. When all units of a language are done, one more task merges them
with exact de-duplication into `DIR/<lang>/part-*.parquet`, the folder is renamed into place and
the manifest is rewritten (atomically) with the language marked complete. The manifest's
top-level `complete` is true only when every language in it is complete.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..artifact import MANIFEST, fingerprint, is_complete as artifact_complete, output_settings, read_manifest, \
    write_manifest, writing
from ..atomic import atomic_write_json
from ..config import to_plain, write_resolved
from ..diskspace import reported_as_disk_full
from ..errors import ConfigError, UserError
from ..progress import bar, info, summary
from ..workers import process_pool
from . import dump
from .fake_copy import make_fake_copy
from .languages import language
from .settings import CorpusSettings
from .sources import Source, Unit, check_sources, check_text_script, plan_units, resolve
from .worker import CleanOptions, finalize_language, process_unit

STAGING = ".staging"
FORMAT = 1  # bump when the output or cleaning changes in a way that should invalidate old output


class InlineExecutor(cf.Executor):
    """Runs tasks in this process, for workers = 1 (simpler tracebacks, no start-up cost)."""

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except UserError as exc:
            future.set_exception(exc)
        return future


def is_complete(out_dir: Path) -> bool:
    """True when `out_dir` holds a finished `corpus extract` output."""
    languages = read_manifest(out_dir).get("languages", {})
    return artifact_complete(out_dir) and bool(languages) and all(
        entry.get("complete") and (Path(out_dir) / code).is_dir() for code, entry in languages.items())


def sha256_file(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to output folder {out_dir} ({exc.strerror or exc}); "
                        f"choose another --out or fix its permissions") from None


def _fingerprint(code: str, sources: list[Source], settings: CorpusSettings) -> str:
    """Identity of a language's inputs and output settings: a change invalidates finished work."""
    files = []
    for source in sources:
        stat = os.stat(source.path) if source.kind != "hf" else None
        files.append([source.path, source.kind, stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0])
    # sources and declared languages count for their own language only; fake copies for theirs
    cleaning = {k: v for k, v in output_settings(settings).items()
                if k not in ("sources", "languages", "fake", "fake_word_order")}
    return fingerprint(FORMAT, code, files, cleaning, output_settings(settings.languages.get(code)))


class _Language:
    """Book-keeping of one language during a run."""

    def __init__(self, code: str, sources: list[Source], options: CleanOptions, fingerprint: str,
                 staging: Path) -> None:
        self.code, self.sources, self.options, self.fingerprint = code, sources, options, fingerprint
        self.staging = staging
        self.units: list[Unit] = []
        self.pending: set[str] = set()
        self.unit_stats: dict[str, dict] = {}
        self.reused = 0
        self.started = time.perf_counter()

    @property
    def unit_dir(self) -> Path:
        return self.staging / "units"

    def prepare(self, force: bool) -> None:
        """Keep finished units of an interrupted run with the same inputs; otherwise start clean."""
        stamp = self.staging / "fingerprint"
        if force or not stamp.is_file() or stamp.read_text().strip() != self.fingerprint:
            shutil.rmtree(self.staging, ignore_errors=True)
        self.unit_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(self.fingerprint)
        for unit in self.units:
            stats_file = self.unit_dir / f"{unit.key}.json"
            if stats_file.is_file() and (self.unit_dir / f"{unit.key}.parquet").is_file():
                self.unit_stats[unit.key] = json.loads(stats_file.read_text())
                self.reused += 1
            else:
                self.pending.add(unit.key)


def extract_corpus(settings: CorpusSettings, out_dir: Path, tracker=None) -> dict:
    """Build `out_dir/<lang>/part-*.parquet` for every language in `settings.sources`; returns the manifest."""
    out_dir = Path(out_dir)
    if not settings.sources:
        raise ConfigError("corpus.sources is empty; give --lang CODE --source PATH, or list "
                          "[corpus] sources = {en = [\"...\"]} in the recipe")
    started = time.perf_counter()
    declared = settings.declared_languages()
    langs = {code: language(code, declared) for code in settings.sources}  # unknown codes fail here, before any work
    check_sources(settings.sources)
    with writing(out_dir):  # languages accumulate in one manifest: one writer at a time
        _check_writable(out_dir)
        return _extract(settings, out_dir, langs, started, tracker)


def _extract(settings: CorpusSettings, out_dir: Path, langs: dict, started: float, tracker) -> dict:
    workers = settings.workers or os.cpu_count() or 1
    manifest = read_manifest(out_dir)
    entries: dict = manifest.get("languages", {}) if isinstance(manifest.get("languages"), dict) else {}
    for code in settings.fake:
        base = language(code).fake_of
        if base not in settings.sources and not entries.get(base, {}).get("complete"):
            raise ConfigError(f"corpus.fake lists {code}, but {base}, whose text it copies, is neither in "
                              f"corpus.sources nor extracted in {out_dir}; add {base} to corpus.sources")

    todo: list[_Language] = []
    for code, lang in langs.items():
        sources = resolve(code, lang.wiki, list(settings.sources[code]))
        if settings.check_script:
            for source in sources:
                check_text_script(source, lang)
        options = CleanOptions(wiki=lang.wiki, min_sentence_chars=settings.min_sentence_chars,
                               max_sentence_chars=settings.max_sentence_chars,
                               min_document_sentences=settings.min_document_sentences,
                               shard_bytes=int(settings.shard_mb * (1 << 20)))
        identity = _fingerprint(code, sources, settings)
        entry = entries.get(code, {})
        if (not settings.force and entry.get("complete") and entry.get("fingerprint") == identity
                and (out_dir / code).is_dir()):
            info(f"corpus: {code} is already complete in {out_dir} (use --force to redo it)")
            continue
        state = _Language(code, sources, options, identity, out_dir / STAGING / code)
        state.units = plan_units(code, sources, workers * 2, int(settings.chunk_mb * (1 << 20)))
        todo.append(state)

    needed = sum(_space_needed(source) for state in todo for source in state.sources)
    with reported_as_disk_full(out_dir, needed, "the clean corpus"):
        if todo:
            for state in todo:  # from here until its merge ends, the language is not complete
                entries[state.code] = {**entries.get(state.code, {}), "complete": False}
            _write_manifest(out_dir, entries, to_plain(settings))
            _run(todo, entries, out_dir, settings, workers)
        for code in settings.fake:  # made from their base's clean text, once that is complete
            entries[code] = make_fake_copy(out_dir, code, settings.fake_word_order, entries,
                                           int(settings.shard_mb * (1 << 20)), force=settings.force)
        shutil.rmtree(out_dir / STAGING, ignore_errors=True)
        manifest = _write_manifest(out_dir, entries, to_plain(settings))
        write_resolved(out_dir, {"corpus": settings})
    _report(manifest, out_dir, time.perf_counter() - started, tracker)
    return manifest


def _space_needed(source: Source) -> int:
    """Rough peak disk use for one source: its staging units plus its final shards, each about 0.7x
    the size of a compressed dump or 0.35x that of plain text (Parquet, measured on the kit)."""
    if source.kind == "hf":
        return 0
    size = os.path.getsize(source.path)
    return int(size * (1.4 if source.kind in ("xml", "multistream") and dump.is_compressed(Path(source.path))
                       else 0.7))


def _run(todo: list[_Language], entries: dict, out_dir: Path, settings: CorpusSettings, workers: int) -> None:
    by_code = {state.code: state for state in todo}
    for state in todo:
        state.prepare(settings.force)
    total_units = sum(len(s.units) for s in todo)
    executor: cf.Executor = process_pool(workers) if workers > 1 else InlineExecutor()
    futures: dict[cf.Future, tuple[str, str, object]] = {}

    def submit_merge(state: _Language) -> None:
        files = [state.unit_dir / f"{u.key}.parquet" for u in sorted(state.units, key=lambda u: u.key)]
        final = state.staging / "final"
        shutil.rmtree(final, ignore_errors=True)
        expected = sum(u["sentence_filter"]["kept"] for u in state.unit_stats.values())
        futures[executor.submit(finalize_language, files, final, state.options, expected)] = \
            ("merge", state.code, None)

    try:
        with bar(total=total_units, desc="corpus extract", unit="unit") as progress:
            progress.update(sum(s.reused for s in todo))
            hashes: dict[str, str] = {}
            for path in {src.path for s in todo for src in s.sources if src.kind != "hf"}:
                futures[executor.submit(sha256_file, path)] = ("sha", path, None)
            for state in todo:
                for unit in state.units:
                    if unit.key in state.pending:
                        out_file = state.unit_dir / f"{unit.key}.parquet"
                        futures[executor.submit(process_unit, unit, state.options, out_file)] = \
                            ("unit", state.code, unit)
                if not state.pending:
                    submit_merge(state)
            while futures:
                done, _ = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)
                for future in done:
                    kind, key, unit = futures.pop(future)
                    result = future.result()  # a worker's UserError is raised here
                    if kind == "sha":
                        hashes[key] = result
                    elif kind == "unit":
                        state = by_code[key]
                        atomic_write_json(state.unit_dir / f"{unit.key}.json", result)
                        state.unit_stats[unit.key] = result
                        state.pending.discard(unit.key)
                        progress.update(1)
                        if not state.pending:
                            submit_merge(state)
                    else:
                        state = by_code[key]
                        # merges may finish before hashes: wait for this language's hashes
                        for src in state.sources:
                            if src.kind != "hf" and src.path not in hashes:
                                hashes[src.path] = sha256_file(src.path)
                        _publish(state, result, hashes, entries, out_dir, settings)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _publish(state: _Language, merged: dict, hashes: dict, entries: dict, out_dir: Path,
             settings: CorpusSettings) -> None:
    """Move the merged shards into place, then mark the language complete in the manifest."""
    final, target = state.staging / "final", out_dir / state.code
    old = out_dir / STAGING / f"{state.code}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(final, target)
    shutil.rmtree(old, ignore_errors=True)
    lang = language(state.code, settings.declared_languages())
    units = list(state.unit_stats.values())
    skipped = {k: sum(u[k] for u in units) for k in ("namespace", "redirect", "disambiguation", "short")}
    filters = {k: sum(u["sentence_filter"][k] for u in units) for k in ("too_short", "too_long", "residue")}
    sources = []
    for source in state.sources:
        row = {"path": source.path, "kind": source.kind}
        if source.kind != "hf":
            row.update(size=os.path.getsize(source.path), sha256=hashes[source.path])
        if source.index:
            row["index"] = source.index
        if source.language:
            row["wiki_language"] = source.language
        sources.append(row)
    entries[state.code] = {
        "name": lang.name, "wiki": lang.wiki, "script": lang.script,
        "documents": merged["documents"], "sentences": merged["sentences"],
        "characters": merged["characters"], "bytes": merged["bytes"],
        "parts": [f"{state.code}/{name}" for name in merged["parts"]],
        "pages_read": sum(u["pages"] for u in units),
        "skipped_pages": skipped, "dropped_sentences": filters,
        "duplicates": {"documents": merged["duplicate_documents"], "sentences": merged["duplicate_sentences"]},
        "sources": sources, "units": len(state.units), "units_reused": state.reused,
        "worker_seconds": round(sum(u["seconds"] for u in units), 3),
        "seconds": round(time.perf_counter() - state.started, 3),
        "fingerprint": state.fingerprint, "complete": True,
    }
    shutil.rmtree(state.staging, ignore_errors=True)
    _write_manifest(out_dir, entries, to_plain(settings))


def add_fake_languages(clean_dir: Path, codes: list[str], word_order: str, force: bool = False) -> dict:
    """`mbert corpus fake`: add fake copies to a finished clean folder; returns the manifest."""
    with writing(clean_dir):
        return _add_fake_languages(Path(clean_dir), codes, word_order, force)


def _add_fake_languages(clean_dir: Path, codes: list[str], word_order: str, force: bool) -> dict:
    if not is_complete(clean_dir):
        raise UserError(f"{clean_dir} is not a complete `corpus extract` output (no complete manifest.json); "
                        f"run `mbert corpus extract --out {clean_dir}` first")
    started = time.perf_counter()
    manifest = read_manifest(clean_dir)
    entries, recorded = manifest["languages"], dict(manifest.get("settings", {}))
    for code in codes:
        language(code)  # unknown codes fail before any work
    for code in codes:
        entries[code] = make_fake_copy(clean_dir, code, word_order, entries,
                                       int(recorded.get("shard_mb", 256.0) * (1 << 20)), force=force)
    recorded["fake"] = sorted(set(recorded.get("fake", [])) | set(codes))
    manifest = _write_manifest(clean_dir, entries, recorded)
    _report(manifest, clean_dir, time.perf_counter() - started, None)
    return manifest


def _write_manifest(out_dir: Path, entries: dict, settings: dict) -> dict:
    done = [e for e in entries.values() if e.get("complete")]
    manifest = {
        "stage": "corpus-extract",
        "format": FORMAT,
        "languages": dict(sorted(entries.items())),
        "totals": {key: sum(e.get(key, 0) for e in done) for key in ("documents", "sentences", "characters", "bytes")},
        "settings": settings,
        "complete": bool(entries) and len(done) == len(entries),
    }
    return write_manifest(out_dir, manifest)


def _report(manifest: dict, out_dir: Path, seconds: float, tracker) -> None:
    rows = [[code, e.get("documents", 0), e.get("sentences", 0), e.get("characters", 0), e.get("bytes", 0),
             e.get("seconds", 0.0)] for code, e in manifest["languages"].items()]
    totals = manifest["totals"]
    if tracker is not None:
        tracker.table("corpus/languages", ["lang", "documents", "sentences", "characters", "bytes", "seconds"], rows)
        tracker.summary({f"corpus/{k}": v for k, v in totals.items()})
    summary(f"corpus extract: {len(rows)} language(s) in {out_dir} ({', '.join(r[0] for r in rows)}): "
            f"{totals['documents']:,} documents, {totals['sentences']:,} sentences, "
            f"{totals['characters']:,} characters in {seconds:.1f}s. Shards: {out_dir}/<lang>/part-*.parquet; "
            f"details in {out_dir / MANIFEST}.")
