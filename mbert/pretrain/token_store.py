"""Token store: the corpus tokenised once into memory-mapped arrays that keep sentence and
document boundaries and each document's language; training reads it and never re-tokenises.

Layout of a store folder (all little-endian, flat binary, read with `numpy.memmap`):
  tokens.bin            int32  every sentence's token ids, concatenated
  sentence_offsets.bin  int64  n_sentences + 1 offsets into tokens
  doc_offsets.bin       int64  n_documents + 1 offsets into sentences
  doc_lang.bin          int16  language index of each document (into store.json "languages")
  doc_key.bin           int64  hash of (lang, id): repeated documents of a mixture share a key
  store.json            counts, languages, UNK share, fingerprint; written last
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow.parquet as pq
from tokenizers import Tokenizer

from ..atomic import atomic_write_json, staging_dir
from ..corpus.layout import Shard
from ..errors import UserError
from ..progress import bar
from ..workers import process_pool

STORE_VERSION = 1
# above this share of [UNK] tokens the vocabulary was not built for this corpus
MAX_UNK_SHARE = 0.5
SMALL_CORPUS_BYTES = 16_000_000

_worker_encoder = None  # a worker process's Encoder, set once when it starts


@dataclass
class TokenStore:
    path: Path
    tokens: np.ndarray
    sentence_offsets: np.ndarray
    doc_offsets: np.ndarray
    doc_lang: np.ndarray
    doc_key: np.ndarray
    info: dict

    @property
    def languages(self) -> list[str]:
        return list(self.info["languages"])

    @property
    def n_documents(self) -> int:
        return len(self.doc_lang)

    @classmethod
    def open(cls, path: Path) -> "TokenStore":
        path = Path(path)
        info = json.loads((path / "store.json").read_text(encoding="utf-8"))

        def load(name: str, dtype: type) -> np.ndarray:
            file = path / name
            if file.stat().st_size == 0:
                return np.zeros(0, dtype=dtype)
            return np.memmap(file, dtype=dtype, mode="r")

        return cls(path, load("tokens.bin", np.int32), load("sentence_offsets.bin", np.int64),
                   load("doc_offsets.bin", np.int64), load("doc_lang.bin", np.int16),
                   load("doc_key.bin", np.int64), info)


def is_store_complete(path: Path, fingerprint: str) -> bool:
    meta = Path(path) / "store.json"
    if not meta.is_file():
        return False
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return info.get("complete") is True and info.get("fingerprint") == fingerprint \
        and info.get("version") == STORE_VERSION


def document_key(lang: str, doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{lang}\t{doc_id}".encode(), digest_size=8).digest(),
                          "little", signed=True)


class Encoder:
    """What the store needs of a tokenizer: token ids of sentences (no special tokens) and the [UNK] id.
    A fast tokenizer is reduced to a copy of its Rust backend (`tokenizers.Tokenizer`): it pickles as
    its JSON, so a worker rebuilds it without importing transformers (~3 CPU-seconds a worker), and
    `encode_batch_fast` skips offsets and per-sentence Python wrappers (~20 % less CPU than the
    transformers call, same ids). Truncation and padding are switched off on the copy, as the
    transformers call does, in case the tokenizer file was saved with them on."""

    def __init__(self, tokenizer) -> None:
        self.unk_id = tokenizer.unk_token_id
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None or not hasattr(backend, "encode_batch_fast"):  # a slow tokenizer, or tokenizers < 0.20
            self.backend, self.slow = None, tokenizer
            return
        self.backend, self.slow = Tokenizer.from_str(backend.to_str()), None
        self.backend.no_truncation()
        self.backend.no_padding()

    def ids(self, sentences: list[str]) -> list[list[int]]:
        if self.backend is None:
            return self.slow(sentences, add_special_tokens=False, verbose=False, return_attention_mask=False,
                             return_token_type_ids=False)["input_ids"]
        return [encoding.ids for encoding in self.backend.encode_batch_fast(sentences, add_special_tokens=False)]


def _init_worker(encoder: Encoder) -> None:
    global _worker_encoder
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _worker_encoder = encoder


SENTENCES_PER_CALL = 4096  # sentences per tokenizer call: bounds its Python lists (~5 MB at 30 tokens each)
BATCH_CHARACTERS = 1_000_000  # text per batch of documents: its lines, ids and the allocator's high-water
                              # mark follow this, not 256 documents of whatever length they have


def iter_documents(shard: Shard, batch_rows: int = 256) -> Iterator[list[tuple[str, str, str]]]:
    """Batches of (lang, id, text) rows of one shard."""
    try:
        handle = pq.ParquetFile(shard.path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise UserError(f"corpus shard {shard.path} is not a readable Parquet file ({exc}); "
                        f"rebuild the corpus") from None
    names = set(handle.schema_arrow.names)
    needed = {"id", "text"} | ({"lang"} if shard.lang is None else set())
    if not needed <= names:
        raise UserError(f"corpus shard {shard.path} lacks column(s) {sorted(needed - names)}; "
                        f"expected lang,id,title,text (mixture) or id,title,text (clean)")
    columns = sorted(needed)
    for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
        data = batch.to_pydict()
        langs = data["lang"] if shard.lang is None else [shard.lang] * batch.num_rows
        yield [(str(lang), str(doc_id), text or "") for lang, doc_id, text in
               zip(langs, data["id"], data["text"])]


def _tokenize_batch(rows: list[tuple[str, str, str]], encoder: Encoder | None = None) -> tuple:
    """(langs, keys, sentences-per-doc, sentence lengths, flat tokens, unk count) for one batch."""
    encoder = encoder or _worker_encoder
    langs, keys, doc_sizes, sentences = [], [], [], []
    for lang, doc_id, text in rows:
        lines = [line.strip() for line in text.split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            continue
        langs.append(lang)
        keys.append(document_key(lang, doc_id))
        doc_sizes.append(len(lines))
        sentences.extend(lines)
    if not sentences:
        return langs, keys, doc_sizes, np.zeros(0, np.int64), np.zeros(0, np.int32), 0
    # The tokenizer returns Python lists (~36 bytes per token): ask for ids only (attention masks and
    # type ids would triple them) and a bounded number of sentences per call, so memory does not
    # grow with the length of a batch's documents.
    all_lengths, all_flat = [], []
    for start in range(0, len(sentences), SENTENCES_PER_CALL):
        ids = encoder.ids(sentences[start:start + SENTENCES_PER_CALL])
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        all_lengths.append(lengths)
        all_flat.append(np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum())))
        del ids
    flat = np.concatenate(all_flat)
    unk = int(np.count_nonzero(flat == encoder.unk_id))
    return langs, keys, doc_sizes, np.concatenate(all_lengths), flat, unk


def _batches(shards: list[Shard]) -> Iterator[list[tuple[str, str, str]]]:
    """Runs of consecutive documents in corpus order, each at most BATCH_CHARACTERS of text (or one
    longer document): the tokenising process's memory then does not grow with document length."""
    for shard in shards:
        for rows in iter_documents(shard):
            batch, size = [], 0
            for row in rows:
                if batch and size + len(row[2]) > BATCH_CHARACTERS:
                    yield batch
                    batch, size = [], 0
                batch.append(row)
                size += len(row[2])
            if batch:
                yield batch


def _ordered_results(shards: list[Shard], encoder: Encoder, workers: int) -> Iterable[tuple]:
    if workers <= 1:
        for rows in _batches(shards):
            yield _tokenize_batch(rows, encoder)
        return
    # a bounded window of batches in flight keeps memory flat and the output in corpus order
    with process_pool(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                      initargs=(encoder,)) as pool:
        pending = []
        for rows in _batches(shards):
            pending.append(pool.submit(_tokenize_batch, rows))
            if len(pending) >= 4 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def build_token_store(shards: list[Shard], tokenizer, store_dir: Path, fingerprint: str,
                      workers: int = 0) -> TokenStore:
    """Tokenise every document of `shards` into `store_dir` (replaced atomically)."""
    total_bytes = sum(s.path.stat().st_size for s in shards)
    if workers == 0:  # auto: starting worker processes costs more than a small corpus takes
        workers = 1 if total_bytes < SMALL_CORPUS_BYTES else os.cpu_count() or 1
    languages: dict[str, int] = {}
    lang_tokens: dict[str, int] = {}
    n_tokens = n_sentences = n_docs = unk = 0
    with staging_dir(store_dir) as tmp, \
            open(tmp / "tokens.bin", "wb") as f_tokens, \
            open(tmp / "sentence_offsets.bin", "wb") as f_sent, \
            open(tmp / "doc_offsets.bin", "wb") as f_doc, \
            open(tmp / "doc_lang.bin", "wb") as f_lang, \
            open(tmp / "doc_key.bin", "wb") as f_key:
        f_sent.write(np.zeros(1, np.int64).tobytes())
        f_doc.write(np.zeros(1, np.int64).tobytes())
        progress = bar(desc=f"tokenizing {total_bytes / 1e6:.1f} MB ({workers} worker(s))",
                       unit="batch")
        for langs, keys, doc_sizes, lengths, flat, batch_unk in \
                _ordered_results(shards, Encoder(tokenizer), workers):
            progress.update(1)
            f_tokens.write(flat.tobytes())
            f_sent.write((n_tokens + np.cumsum(lengths)).astype(np.int64).tobytes())
            f_doc.write((n_sentences + np.cumsum(doc_sizes, dtype=np.int64)).tobytes())
            lang_ids = []
            start = 0
            for lang, size in zip(langs, doc_sizes):
                lang_ids.append(languages.setdefault(lang, len(languages)))
                lang_tokens[lang] = lang_tokens.get(lang, 0) + int(lengths[start:start + size].sum())
                start += size
            f_lang.write(np.asarray(lang_ids, np.int16).tobytes())
            f_key.write(np.asarray(keys, np.int64).tobytes())
            n_tokens += len(flat)
            n_sentences += len(lengths)
            n_docs += len(langs)
            unk += batch_unk
            progress.set_postfix_str(f"{n_docs} docs, {n_tokens} tokens")
        progress.close()
        if n_docs == 0:
            raise UserError(f"the corpus ({shards[0].path.parent}) holds no non-empty document; "
                            f"rebuild it")
        unk_share = unk / max(1, n_tokens)
        if unk_share > MAX_UNK_SHARE:
            raise UserError(f"the vocabulary does not match the corpus: {unk_share:.0%} of the tokens "
                            f"are [UNK]; train the vocabulary on this corpus (`mbert vocab`)")
        for handle in (f_tokens, f_sent, f_doc, f_lang, f_key):
            handle.flush()
        info = {"version": STORE_VERSION, "fingerprint": fingerprint, "languages": list(languages),
                "n_tokens": n_tokens, "n_sentences": n_sentences, "n_documents": n_docs,
                "unk_share": unk_share, "tokens_per_language": lang_tokens, "complete": True}
        atomic_write_json(tmp / "store.json", info)
    return TokenStore.open(store_dir)
