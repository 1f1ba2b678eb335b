"""Settings of the vocabulary stage (`[vocab]` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import setting


@dataclass
class VocabSettings:
    kind: Literal["wordpiece", "sentencepiece"] = setting(
        "wordpiece", help="WordPiece like mBERT, or SentencePiece like XLM-R")
    size: int = setting(119547, min=10, help="vocabulary size (released mBERT cased: 119,547)")
    uncased: bool = setting(False, help="lower-case and strip accents like the original uncased model")
    sp_model_type: Literal["unigram", "bpe"] = setting("unigram", help="SentencePiece algorithm")
    min_frequency: int = setting(2, min=0, help="WordPiece: a merge must occur at least this often")
    limit_alphabet: int = setting(0, min=0, help="WordPiece: keep only the N most frequent characters "
                                                 "(ties by code point; one more pass over the corpus); the "
                                                 "others become [UNK] (0 = every character seen)")
    max_documents: int = setting(0, min=0, help="train on a uniform random sample of about this many "
                                 "documents of the corpus (0 = all of them): bounds the trainer's memory, "
                                 "which grows with the distinct words it sees")
    character_coverage: float = setting(0.9995, min=0.9, max=1.0,
                                        help="SentencePiece: share of characters the vocabulary covers")
    sp_max_sentences: int = setting(10_000_000, min=1000,
                                    help="SentencePiece: sentences sampled (reservoir) for training; "
                                         "bounds its memory")
    force: bool = setting(False, runtime=True, help="replace a different tokenizer already in the output folder")
