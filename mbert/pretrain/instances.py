"""Training instances, built the way google-research/bert `create_pretraining_data.py` does.

Sentences of a document are packed until they reach the target length (`max_seq_length` minus
the special tokens; with probability `short_seq_prob` a random shorter target, so the model also
sees short inputs). With NSP the chunk is split into A and B, and half the time B is replaced by
sentences from another document.

Two choices differ from google-research/bert, so that the settings mean what they say: the target is
drawn per instance, not once per document (a document with a short target yields more, shorter
instances, which made the share of short instances up to twice `short_seq_prob`); and a chunk of a
single sentence that is to keep its actual next segment gets the document's next sentence as B (at
the document's end: the previous sentence as A) instead of always a random B, which made ~65% of
the B segments random instead of half. Consecutive sentences are contiguous in the token store, so an
instance is just two token ranges; nothing is copied.

Instance array columns: a_start, a_len, b_start, b_len, is_random_next, lang_a, lang_b.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from .token_store import TokenStore

A_START, A_LEN, B_START, B_LEN, RANDOM_NEXT, LANG_A, LANG_B = range(7)
COLUMNS = 7


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: np.random.Generator) -> None:
    """Shorten [start, length] ranges a and b in place, trimming the longer one first and each
    trimmed token from the front or back at random (as google-research/bert does)."""
    while a[1] + b[1] > max_tokens:
        longer = a if a[1] >= b[1] else b
        other = b if longer is a else a
        # trim the longer one down to the other's length (or the excess), in one go
        cut = min(a[1] + b[1] - max_tokens, max(1, longer[1] - other[1]))
        front = int(rng.binomial(cut, 0.5))
        longer[0] += front
        longer[1] -= cut


def _draw_target(max_tokens: int, short_seq_prob: float, rng: np.random.Generator) -> int:
    """Token target of the next instance: the maximum, or with `short_seq_prob` a random shorter one."""
    if rng.random() < short_seq_prob:
        return int(rng.integers(2, max_tokens + 1))
    return max_tokens


class _Rows:
    """Instance rows gathered in fixed-size int64 blocks (no Python object per instance); with a
    `sink`, full blocks are written out as they fill, so memory holds one block whatever the corpus."""

    BLOCK = 1 << 16

    def __init__(self, sink: BinaryIO | None = None) -> None:
        self.sink = sink
        self.kept: list[np.ndarray] = []
        self.written = 0
        self.block = np.empty((self.BLOCK, COLUMNS), np.int64)
        self.used = 0

    def append(self, row: tuple[int, ...]) -> None:
        if self.used == self.BLOCK:
            self.retire()
        self.block[self.used] = row
        self.used += 1

    def retire(self) -> None:
        """The current block is done: written to the sink, or kept."""
        done = self.block[:self.used]
        if self.sink is not None:
            self.sink.write(done.tobytes())
        else:
            self.kept.append(done)
        self.written += self.used
        self.block, self.used = np.empty((self.BLOCK, COLUMNS), np.int64), 0


def open_instances(path: Path, count: int) -> np.ndarray:
    """The `count` instances `write_instances` wrote to `path`, memory-mapped read-only."""
    if count == 0:
        return np.zeros((0, COLUMNS), np.int64)
    return np.memmap(path, dtype=np.int64, mode="r", shape=(count, COLUMNS))


def write_instances(sink: BinaryIO, store: TokenStore, documents: np.ndarray, max_seq_length: int,
                    short_seq_prob: float, nsp: bool, rng: np.random.Generator) -> int:
    """`build_instances` written to `sink` as raw int64 rows while they are made; returns their number."""
    rows = _Rows(sink)
    _fill(rows, store, documents, max_seq_length, short_seq_prob, nsp, rng)
    rows.retire()
    return rows.written


def build_instances(store: TokenStore, documents: np.ndarray, max_seq_length: int,
                    short_seq_prob: float, nsp: bool, rng: np.random.Generator) -> np.ndarray:
    """Instances of the given document indices (into `store`)."""
    rows = _Rows()
    _fill(rows, store, documents, max_seq_length, short_seq_prob, nsp, rng)
    rows.retire()
    return np.concatenate(rows.kept)


def _fill(rows: _Rows, store: TokenStore, documents: np.ndarray, max_seq_length: int,
          short_seq_prob: float, nsp: bool, rng: np.random.Generator) -> None:
    offsets = np.asarray(store.sentence_offsets)
    doc_offsets = np.asarray(store.doc_offsets)
    max_tokens = max_seq_length - (3 if nsp else 2)
    for doc in documents:
        doc = int(doc)
        lang = int(store.doc_lang[doc])
        first, last = int(doc_offsets[doc]), int(doc_offsets[doc + 1])
        target = _draw_target(max_tokens, short_seq_prob, rng)
        chunk_start, length = first, 0
        sent = first
        while sent < last:
            length += int(offsets[sent + 1] - offsets[sent])
            if sent == last - 1 or length >= target:
                n_sents = sent + 1 - chunk_start
                if not nsp:
                    a = [int(offsets[chunk_start]), int(offsets[sent + 1] - offsets[chunk_start])]
                    b = [0, 0]
                    _truncate_pair(a, b, max_tokens, rng)
                    if a[1] > 0:
                        rows.append((a[0], a[1], 0, 0, 0, lang, lang))
                else:
                    random_next = rng.random() < 0.5
                    a_first = chunk_start
                    if n_sents == 1 and not random_next:
                        # B must be the actual next sentence: take the document's next one, or at
                        # its end pair the previous sentence with this one
                        if sent + 1 < last:
                            sent += 1
                        elif chunk_start > first:
                            a_first = chunk_start - 1
                        else:
                            random_next = True  # a one-sentence document has no next sentence
                        n_sents = sent + 1 - a_first
                    a_end = a_first + (int(rng.integers(1, n_sents)) if n_sents >= 2 else 1)
                    a = [int(offsets[a_first]), int(offsets[a_end] - offsets[a_first])]
                    lang_b = lang
                    if random_next and len(documents) > 1:
                        target_b = max(1, target - a[1])
                        other = doc  # any training document but this one
                        while other == doc:
                            other = int(documents[rng.integers(len(documents))])
                        o_first, o_last = int(doc_offsets[other]), int(doc_offsets[other + 1])
                        o_start = int(rng.integers(o_first, o_last))
                        o_end = o_start
                        while o_end < o_last and offsets[o_end] - offsets[o_start] < target_b:
                            o_end += 1
                        b = [int(offsets[o_start]), int(offsets[o_end] - offsets[o_start])]
                        lang_b = int(store.doc_lang[other])
                        sent = a_end - 1  # the unused sentences go back for the next chunk
                    else:
                        random_next = False
                        b = [int(offsets[a_end]), int(offsets[sent + 1] - offsets[a_end])]
                    _truncate_pair(a, b, max_tokens, rng)
                    if a[1] > 0 and b[1] > 0:
                        rows.append((a[0], a[1], b[0], b[1], int(random_next), lang, lang_b))
                chunk_start, length = sent + 1, 0
                target = _draw_target(max_tokens, short_seq_prob, rng)
            sent += 1


def build_pair_instances(src_ranges: np.ndarray, tgt_ranges: np.ndarray, src_lang: int,
                         tgt_lang: int, max_seq_length: int, rng: np.random.Generator) -> np.ndarray:
    """TLM instances: sentence i of one language with its translation, trimmed to fit."""
    rows = []
    for (a_start, a_len), (b_start, b_len) in zip(src_ranges.tolist(), tgt_ranges.tolist()):
        a, b = [a_start, a_len], [b_start, b_len]
        _truncate_pair(a, b, max_seq_length - 3, rng)
        if a[1] > 0 and b[1] > 0:
            rows.append((a[0], a[1], b[0], b[1], 0, src_lang, tgt_lang))
    return np.asarray(rows, dtype=np.int64).reshape(-1, COLUMNS)


def split_heldout(store: TokenStore, per_language: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(training documents, held-out documents). Held out: `per_language` distinct documents of
    each language (never its only one); every repeat of a held-out document leaves training too."""
    keys = np.asarray(store.doc_key)
    langs = np.asarray(store.doc_lang)
    held_keys: set[int] = set()
    for lang in range(len(store.languages)):
        unique = np.unique(keys[langs == lang])
        take = min(per_language, len(unique) - 1)
        if take > 0:
            held_keys.update(int(k) for k in rng.choice(unique, size=take, replace=False))
    held = np.isin(keys, np.fromiter(held_keys, np.int64, len(held_keys)))
    return np.flatnonzero(~held), np.flatnonzero(held)


def padding_share(instances: np.ndarray, max_seq_length: int, specials: int) -> float:
    if len(instances) == 0:
        return 0.0
    used = instances[:, A_LEN] + instances[:, B_LEN] + specials
    return float(1.0 - used.sum() / (len(instances) * max_seq_length))
