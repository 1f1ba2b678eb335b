"""Pretraining inputs: find the corpus shards (mixture or clean layout) and load the tokenizer.

A mixture folder holds `part-*.parquet` with a `lang` column; a clean folder holds
`<lang>/part-*.parquet`. Both carry `id, title, text` with one sentence per line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq

from ..corpus.layout import CorpusFolder, Shard, corpus_fingerprint, find_corpus
from ..artifact import fingerprint
from ..tokenizer_folder import load_tokenizer as shared_load_tokenizer
from ..errors import UserError


def find_shards(corpus_dir: Path) -> list[Shard]:
    return find_corpus(corpus_dir).shards


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


# ----------------------------------------------------------------------------- tokenizer

def load_tokenizer(vocab_dir: Path):
    """The vocab stage's tokenizer; it must define the special tokens BERT pretraining needs."""
    tokenizer = shared_load_tokenizer(vocab_dir, hint="pass the output of `mbert vocab train` with --vocab")
    missing = [name for name in ("pad", "cls", "sep", "mask", "unk")
               if getattr(tokenizer, f"{name}_token_id", None) is None]
    if missing:
        raise UserError(f"tokenizer in {vocab_dir} has no {', '.join(missing)} token(s); BERT "
                        f"pretraining needs [PAD] [UNK] [CLS] [SEP] [MASK]: rebuild the vocabulary")
    return tokenizer


def vocab_fingerprint(tokenizer) -> str:
    return fingerprint(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]))


def input_fingerprint(corpus: CorpusFolder, tokenizer) -> str:
    """What a token store and a pretraining run were made from: the corpus and the vocabulary."""
    return f"{corpus_fingerprint(corpus)}-{vocab_fingerprint(tokenizer)}"


def continuation_table(tokenizer) -> np.ndarray:
    """`table[id]` is True when the token continues the previous word (for whole-word masking).

    WordPiece marks continuations with `##`; SentencePiece marks word starts with `▁`."""
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    hashes = sum(1 for tok in vocab if tok.startswith("##"))
    spaces = sum(1 for tok in vocab if tok.startswith("▁"))
    table = np.zeros(size, dtype=bool)
    special = set(tokenizer.all_special_ids)
    for tok, idx in vocab.items():
        if idx in special:
            continue
        table[idx] = tok.startswith("##") if hashes >= spaces else not tok.startswith("▁")
    return table
