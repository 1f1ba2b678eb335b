"""`train_vocab`: a shared vocabulary trained on a corpus folder, written as a tokenizer folder.

The output folder is built in a temporary sibling and renamed into place when complete, with
`manifest.json` ("complete": true) inside it, so an interrupted run never leaves a folder that looks
finished. An output folder that already holds a tokenizer is kept as is when it was trained with the
same settings on the same corpus, and refused otherwise unless `force` is set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

from .. import __version__
from ..artifact import differences, is_complete as artifact_complete, output_settings, read_manifest, \
    write_manifest, writing
from ..atomic import staging_dir
from ..config import write_resolved
from ..diskspace import reported_as_disk_full
from ..errors import ConfigError, UserError
from ..fake import parse_fake_code
from ..progress import bar, bars_shown, info, summary
from .sentencepiece_vocab import SPM_MODEL_FILE, to_fast_tokenizer, train_sentencepiece
from .settings import VocabSettings
from ..corpus.layout import CorpusFolder, corpus_fingerprint, find_corpus
from .shards import ReadStats, count_documents, iter_line_batches
from .special import SPECIAL_IDS
from .tokenizer_files import save_tokenizer_folder
from .wordpiece import frequent_characters, train_wordpiece

def is_complete(out_dir: Path) -> bool:
    """True when `out_dir` holds a finished vocabulary written by this stage."""
    return artifact_complete(out_dir, "tokenizer.json")


def _refuse_fake_languages(folder: CorpusFolder) -> None:
    """Lower-casing and accent stripping change a real text but not its fake copy (fake letters have
    no case), so with an uncased vocabulary the two would stop being the same language."""
    if folder.layout == "clean":
        languages = {shard.lang for shard in folder.shards}
    else:
        # a mixture made elsewhere has no manifest: nothing to check against
        languages = set(read_manifest(folder.root).get("languages", {}))
    fakes = sorted(lang for lang in languages if lang and parse_fake_code(lang))
    if fakes:
        raise ConfigError(f"vocab.uncased = true, but {folder.root} holds the fake language(s) {', '.join(fakes)}: "
                          f"lower-casing changes the real text and not its fake copy, so they would no longer "
                          f"match; train a cased vocabulary (drop --uncased)")


def train_vocab(corpus_dir: Path, out_dir: Path, settings: VocabSettings, tracker=None) -> dict:
    """Train the vocabulary described by `settings` on `corpus_dir`; returns the manifest."""
    with writing(out_dir):
        return _train_vocab(Path(corpus_dir), Path(out_dir), settings, tracker)


def _train_vocab(corpus_dir: Path, out_dir: Path, settings: VocabSettings, tracker) -> dict:
    if out_dir.resolve() == corpus_dir.resolve() or out_dir.resolve() in corpus_dir.resolve().parents:
        # the output folder is replaced whole: it must never hold the corpus
        raise UserError(f"output folder {out_dir} contains the corpus {corpus_dir}; choose another --out")
    folder = find_corpus(corpus_dir)
    if settings.uncased:
        _refuse_fake_languages(folder)
    fingerprint = corpus_fingerprint(folder)
    existing = _check_output(out_dir, settings, fingerprint)
    if existing is not None:
        summary(f"Vocabulary in {out_dir} is already complete (same settings, same corpus): kept as is.")
        return existing

    stats = ReadStats()
    start = time.perf_counter()
    # tokenizer.json and vocab.txt take ~26 bytes per entry (measured); SentencePiece adds its model
    with reported_as_disk_full(out_dir, 32 * settings.size + (32 << 10), "the vocabulary"), \
            staging_dir(out_dir) as stage:
        tokenizer = _train(folder, settings, stats, stage)
        seconds = time.perf_counter() - start
        if stats.chars == 0:
            raise _empty_corpus(corpus_dir)
        _check_size(tokenizer.get_vocab_size(), settings)
        save_tokenizer_folder(tokenizer, stage, kind=settings.kind, uncased=settings.uncased)
        write_resolved(stage, {"vocab": settings, "corpus": {"path": corpus_dir}})
        manifest = {
            "kind": settings.kind,
            "size": settings.size,
            "vocab_size": tokenizer.get_vocab_size(),
            "uncased": settings.uncased,
            "settings": output_settings(settings),
            "special_tokens": SPECIAL_IDS,
            "corpus": str(corpus_dir.resolve()),
            "corpus_layout": folder.layout,
            "corpus_fingerprint": fingerprint,
            "documents_read": stats.documents,
            "documents_used": stats.documents_used,
            "lines_read": stats.lines,
            "chars_read": stats.chars,
            "bytes_read": stats.bytes,
            "seconds": round(seconds, 2),
            "mb_per_s": round(stats.bytes / 1e6 / seconds, 3) if seconds > 0 else None,
            # reading and counting only (the part that grows with the corpus; merges do not)
            "read_seconds": round(stats.read_seconds or 0.0, 2),
            "mbert_version": __version__,
            "complete": True,
        }
        write_manifest(stage, manifest)  # last: marks the folder complete

    if manifest["vocab_size"] < settings.size:
        info(f"note: the corpus supports only {manifest['vocab_size']:,} entries (asked for {settings.size:,}); "
             "a larger corpus or a lower --min-frequency gives more")
    if tracker is not None:
        tracker.log({f"vocab/{k}": manifest[k] for k in ("vocab_size", "chars_read", "bytes_read", "seconds",
                                                          "mb_per_s")})
        tracker.summary({"vocab/vocab_size": manifest["vocab_size"], "vocab/kind": settings.kind})
    summary(f"Trained a {settings.kind} vocabulary of {manifest['vocab_size']:,} entries "
            f"({'uncased' if settings.uncased else 'cased'}) on {stats.bytes / 1e6:,.1f} MB of text "
            f"({stats.lines:,} sentences) from {corpus_dir} in {seconds:,.1f}s "
            f"({manifest['mb_per_s'] or 0:,.2f} MB/s). Tokenizer folder: {out_dir} "
            f"(AutoTokenizer.from_pretrained loads it).")
    return manifest


def _train(folder: CorpusFolder, settings: VocabSettings, stats: ReadStats, stage: Path):
    show = bars_shown()
    documents = count_documents(folder)
    keep = min(1.0, settings.max_documents / documents) if settings.max_documents and documents else 1.0
    if keep < 1.0:
        info(f"vocab: training on a sample of ~{settings.max_documents:,} of the corpus's {documents:,} "
             f"documents (vocab.max_documents)")
    alphabet = None
    if settings.kind == "wordpiece" and settings.limit_alphabet:
        # a pass of its own: the trainer must be given the alphabet before it reads the text
        with bar(total=documents, desc="vocab: counting characters", unit="doc") as progress:
            counted = ReadStats()

            def batches() -> Iterator[list[str]]:
                for _, lines in iter_line_batches(folder, counted, keep=keep):
                    progress.update(counted.documents - progress.n)
                    yield lines
            alphabet = frequent_characters(batches(), settings.limit_alphabet, uncased=settings.uncased)
    with bar(total=documents, desc="vocab: reading corpus", unit="doc") as progress:
        source = _GuardedBatches(iter_line_batches(folder, stats, keep=keep), stats, progress)
        if settings.kind == "wordpiece":
            tokenizer = train_wordpiece(source, size=settings.size, uncased=settings.uncased,
                                        min_frequency=settings.min_frequency, alphabet=alphabet,
                                        show_progress=show)
        else:
            try:
                model = train_sentencepiece(
                    source.sentences(), size=settings.size, model_type=settings.sp_model_type,
                    uncased=settings.uncased, character_coverage=settings.character_coverage,
                    max_sentences=settings.sp_max_sentences, verbose=show)
            except UserError:
                source.raise_if_failed()
                if stats.chars == 0:
                    raise _empty_corpus(folder.root) from None
                raise
            source.raise_if_failed()
            (stage / SPM_MODEL_FILE).write_bytes(model)
            tokenizer = to_fast_tokenizer(model)
    source.raise_if_failed()
    stats.read_seconds = source.read_seconds
    return tokenizer


class _GuardedBatches:
    """Feeds the trainers; an error while reading the corpus (raised inside the trainer's native
    loop, which would swallow or rewrap it) is kept and re-raised once the trainer returns."""

    def __init__(self, batches: Iterator[tuple[str | None, list[str]]], stats: ReadStats, progress) -> None:
        self._batches = batches
        self._stats = stats
        self._progress = progress
        self._seen_docs = 0
        self._started = time.perf_counter()
        self.read_seconds: float | None = None  # until the trainer had read the whole corpus
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[list[str]]:
        try:
            for _, lines in self._batches:
                self._progress.update(self._stats.documents - self._seen_docs)
                self._seen_docs = self._stats.documents
                yield lines
        except (UserError, KeyboardInterrupt) as exc:
            self.error = exc
        self.read_seconds = time.perf_counter() - self._started
        if self.error is None and self._stats.bytes:
            info(f"vocab: read {self._stats.bytes / 1e6:,.1f} MB in {self.read_seconds:,.1f}s; "
                 "computing the vocabulary (the longest part for large sizes)")

    def sentences(self) -> Iterator[str]:
        for lines in self:
            yield from lines

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


def _empty_corpus(corpus_dir: Path) -> UserError:
    return UserError(f"corpus {corpus_dir} holds no text (its shards have no non-empty lines); rebuild it "
                     "with `mbert corpus` and check its sources")


def _check_size(vocab_size: int, settings: VocabSettings) -> None:
    """WordPiece keeps every character of the alphabet (and its ## form) whatever the size asked."""
    if vocab_size > settings.size:
        raise UserError(f"--size {settings.size} is smaller than the alphabet plus special tokens: this corpus "
                        f"needs at least {vocab_size} entries (its characters, their ## continuation forms and "
                        f"{len(SPECIAL_IDS)} special tokens); raise --size or set --limit-alphabet")


def _check_output(out_dir: Path, settings: VocabSettings, fingerprint: str) -> dict | None:
    """The existing manifest when `out_dir` already holds this very vocabulary; None when training
    may go ahead; a UserError when it holds something else and `force` is not set."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output {out_dir} is a file; give a folder for the tokenizer")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return None
    manifest = read_manifest(out_dir)
    if is_complete(out_dir):
        changed = differences(manifest.get("settings", {}), output_settings(settings))
        if manifest.get("corpus_fingerprint") != fingerprint:
            changed.append(f"trained on another corpus ({manifest.get('corpus')})")
        if not changed:
            return manifest
        what = f"a different tokenizer ({'; '.join(changed)})"
    else:
        what = "files that are not a complete mbert vocabulary"
    if settings.force:
        info(f"replacing {what} in {out_dir} (--force)")
        return None
    raise UserError(f"output folder {out_dir} already holds {what}; choose another --out, or pass --force "
                    "to replace it")
