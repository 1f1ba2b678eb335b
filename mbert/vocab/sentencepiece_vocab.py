"""XLM-R-style SentencePiece vocabularies (unigram or BPE), trained with `sentencepiece` and
converted to an HF fast tokenizer so later stages use them exactly like the WordPiece one.

The model keeps the same five special tokens at the same ids as WordPiece ([PAD]=0 [UNK]=1
[CLS]=2 [SEP]=3 [MASK]=4) and the same `[CLS] A [SEP]` template. Words are split on whitespace
(Metaspace with split=True, as XLM-R's fast tokenizer does) so `word_ids()` gives real words;
SentencePiece itself never lets a piece cross a space either, so pieces are unchanged.
Training reads at most `sp_max_sentences` sentences, reservoir-sampled by SentencePiece, which
bounds its memory whatever the corpus size."""

from __future__ import annotations

import io
import os
import re
from typing import Iterator

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from ..errors import UserError
from .special import CLS, MASK, PAD, SEP, SPECIAL_IDS, UNK, add_bert_template, check_layout, \
    register_special_tokens

SPM_MODEL_FILE = "sentencepiece.model"
UNIGRAM, BPE = 1, 2  # ModelProto.TrainerSpec.ModelType
NORMAL_PIECE = 1


def train_sentencepiece(sentences: Iterator[str], *, size: int, model_type: str, uncased: bool,
                        character_coverage: float, max_sentences: int, verbose: bool) -> bytes:
    """Train and return the serialized SentencePiece model."""
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sentences, model_writer=model, model_type=model_type, vocab_size=size,
            character_coverage=character_coverage,
            normalization_rule_name="nmt_nfkc_cf" if uncased else "nmt_nfkc",
            pad_id=SPECIAL_IDS[PAD], unk_id=SPECIAL_IDS[UNK], bos_id=SPECIAL_IDS[CLS], eos_id=SPECIAL_IDS[SEP],
            pad_piece=PAD, unk_piece=UNK, bos_piece=CLS, eos_piece=SEP, user_defined_symbols=[MASK],
            input_sentence_size=max_sentences, shuffle_input_sentence=True,
            hard_vocab_limit=False,  # a small corpus yields a smaller vocabulary instead of an error
            num_threads=os.cpu_count() or 1, minloglevel=1 if verbose else 2)  # 0 logs every EM step
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
        if needed:
            raise UserError(f"--size {size} is smaller than the alphabet plus special tokens: this corpus "
                            f"needs at least {needed.group(1)} entries at character_coverage "
                            f"{character_coverage}; raise --size or lower --set vocab.character_coverage") from None
        raise UserError(f"SentencePiece training failed: {message}") from None
    return model.getvalue()


def to_fast_tokenizer(model_bytes: bytes) -> Tokenizer:
    """The SentencePiece model as an HF `tokenizers` pipeline that encodes like SentencePiece."""
    proto = sentencepiece_model_pb2.ModelProto.FromString(model_bytes)
    pieces = [(p.piece, p.score) for p in proto.pieces]
    if proto.trainer_spec.model_type == UNIGRAM:
        model = models.Unigram(pieces, unk_id=SPECIAL_IDS[UNK], byte_fallback=False)
    elif proto.trainer_spec.model_type == BPE:
        vocab = {piece: index for index, (piece, _) in enumerate(pieces)}
        model = models.BPE(vocab=vocab, merges=_bpe_merges(proto), unk_token=UNK, fuse_unk=True,
                           byte_fallback=False, dropout=None)
    else:
        raise RuntimeError(f"unsupported SentencePiece model type {proto.trainer_spec.model_type}")
    tokenizer = Tokenizer(model)
    steps = []
    if proto.normalizer_spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap))
    if proto.normalizer_spec.remove_extra_whitespaces:
        # SentencePiece trims and collapses spaces only (other whitespace is mapped to spaces first)
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    register_special_tokens(tokenizer)
    check_layout(tokenizer)
    add_bert_template(tokenizer)
    return tokenizer


def _bpe_merges(proto: sentencepiece_model_pb2.ModelProto) -> list[tuple[str, str]]:
    """SentencePiece BPE applies the best-scoring merge first; rebuild that order as a merge list."""
    normal = {p.piece: (p.score, i) for i, p in enumerate(proto.pieces) if p.type == NORMAL_PIECE}
    ranked = []
    for piece, (score, index) in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                ranked.append((-score, index, left, right))
    return [(left, right) for _, _, left, right in sorted(ranked)]
