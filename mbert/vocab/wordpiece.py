"""mBERT-style WordPiece: the tokenizer pipeline and its training with HF `tokenizers` (Rust, parallel).

Normalisation follows BERT's BasicTokenizer exactly, so the fast tokenizer and the slow Python
`BertTokenizer` reading `vocab.txt` agree token for token:
- control characters removed, every whitespace character turned into a space, a space put around
  every CJK ideograph (BertNormalizer with clean_text and handle_chinese_chars);
- then NFC, which the slow tokenizer applies and `BertNormalizer` alone does not;
- uncased only: lower-case, then strip accents (NFD and drop non-spacing marks), in the slow
  tokenizer's order, removing only non-spacing marks (Mn) as BERT does.
Pre-tokenisation splits on whitespace and punctuation (BertPreTokenizer); continuation pieces
carry the `##` prefix."""

from __future__ import annotations

from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .special import SPECIAL_TOKENS, UNK, add_bert_template, check_layout

MAX_WORD_CHARS = 100  # same limit as the slow WordpieceTokenizer: longer words become [UNK]


def bert_normalizer(uncased: bool) -> normalizers.Normalizer:
    steps = [normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                        strip_accents=False, lowercase=False),
             normalizers.NFC()]
    if uncased:
        # StripAccents (and BertNormalizer's strip_accents) also drop spacing marks (Mc), e.g. Hindi
        # vowel signs; BERT strips non-spacing marks (Mn) only
        steps += [normalizers.Lowercase(), normalizers.NFD(), normalizers.Replace(Regex(r"\p{Mn}"), "")]
    return normalizers.Sequence(steps)


def new_wordpiece_tokenizer(uncased: bool) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##",
                                           max_input_chars_per_word=MAX_WORD_CHARS))
    tokenizer.normalizer = bert_normalizer(uncased)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def train_wordpiece(batches: Iterable[list[str]], *, size: int, uncased: bool, min_frequency: int,
                    limit_alphabet: int, show_progress: bool) -> Tokenizer:
    """Train on batches of sentences. The special tokens take ids 0-4 (see `special.py`)."""
    tokenizer = new_wordpiece_tokenizer(uncased)
    options = {"limit_alphabet": limit_alphabet} if limit_alphabet else {}  # absent: no limit
    trainer = trainers.WordPieceTrainer(
        vocab_size=size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##", show_progress=show_progress, **options)
    tokenizer.train_from_iterator(batches, trainer=trainer)
    check_layout(tokenizer)
    add_bert_template(tokenizer)
    return tokenizer


def vocab_lines(tokenizer: Tokenizer) -> list[str]:
    """The vocabulary ordered by id: the lines of `vocab.txt`."""
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    if [i for _, i in ordered] != list(range(len(ordered))):
        raise RuntimeError("WordPiece ids are not contiguous; vocab.txt would misnumber them")
    return [token for token, _ in ordered]
