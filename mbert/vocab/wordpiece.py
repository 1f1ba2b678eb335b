"""mBERT-style WordPiece: the tokenizer pipeline and its training with HF `tokenizers` (Rust, parallel).

Normalisation follows BERT's BasicTokenizer exactly, so the fast tokenizer and the slow Python
`BertTokenizer` reading `vocab.txt` agree token for token:
- control characters removed, every whitespace character turned into a space, a space put around
  every CJK ideograph (BertNormalizer with clean_text and handle_chinese_chars);
- then NFC, which the slow tokenizer applies and `BertNormalizer` alone does not;
- uncased only: lower-case, then strip accents (NFD and drop non-spacing marks), in the slow
  tokenizer's order, removing only non-spacing marks (Mn) as BERT does.
Pre-tokenisation splits on whitespace and punctuation (BertPreTokenizer); continuation pieces
carry the `##` prefix.

Training is deterministic: the same corpus and settings give the same `vocab.txt`, byte for byte.
HF's `WordPieceTrainer` does not (huggingface/tokenizers#1794): it numbers the `##` pieces in hash
order as it meets them, and merges of equal count are ordered by those numbers. We run the same
greedy merge algorithm (its `BpeTrainer`, which `WordPieceTrainer` wraps) on words whose start is
marked by one extra symbol, so that every initial symbol is a character of the alphabet, which the
trainer numbers in sorted order. A merged piece that begins with the mark is a word-initial piece,
any other one is a `##` piece. Its `limit_alphabet` is not deterministic either (characters of equal
count at the cut are dropped in hash order), so a limited alphabet is chosen here
(`frequent_characters`: by count, then code point) and handed to the trainer as its initial alphabet."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable, Iterator, Sequence

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .special import SPECIAL_TOKENS, UNK, add_bert_template, check_layout, register_special_tokens

MAX_WORD_CHARS = 100  # same limit as the slow WordpieceTokenizer: longer words become [UNK]
# marks word starts while training; a control character, so the normaliser removes it from the text
WORD_START = "\x01"
_FIRST_CHAR = re.compile(r"(?<!\S)\S")  # the first character of each whitespace-separated token


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


def frequent_characters(batches: Iterable[list[str]], limit: int, *, uncased: bool) -> list[str]:
    """The `limit` most frequent characters of the text as the tokenizer sees it (normalised,
    whitespace dropped), ties broken by code point: the alphabet `train_wordpiece` keeps."""
    normalizer = bert_normalizer(uncased)
    counts: Counter[str] = Counter()
    for lines in batches:
        counts.update(normalizer.normalize_str("\n".join(lines)))  # one call per batch: cheaper
    ranked = sorted((char for char in counts if not char.isspace()), key=lambda char: (-counts[char], char))
    return sorted(ranked[:limit])


def train_wordpiece(batches: Iterable[list[str]], *, size: int, uncased: bool, min_frequency: int,
                    show_progress: bool, alphabet: Sequence[str] | None = None) -> Tokenizer:
    """Train on batches of sentences (deterministically, see the module docstring). The special
    tokens take ids 0-4 (see `special.py`). `alphabet` (e.g. from `frequent_characters`): keep only
    these characters, the others are dropped from the words; None keeps every character seen."""
    inner_chars: set[str] = set()
    marked = Tokenizer(models.BPE(unk_token=UNK))
    marked.normalizer = bert_normalizer(uncased)
    marked.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.BertPreTokenizer(),
        pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="always", split=False)])
    # Merges that attach the mark to a first character add nothing to the WordPiece vocabulary (the
    # characters are in it anyway). How many there will be is unknown before training, so the
    # trainer may make up to twice the size; the first `size` useful entries are kept (merges are
    # greedy, so they are what a trainer stopped at exactly that point would give).
    # every character of the initial alphabet outranks every other one, so the trainer's cut to
    # `limit_alphabet` (one more, for the mark) drops exactly the others, whatever their counts
    options = ({"initial_alphabet": [*alphabet, WORD_START], "limit_alphabet": len(alphabet) + 1}
               if alphabet is not None else {})
    trainer = trainers.BpeTrainer(vocab_size=2 * size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=show_progress, **options)
    marked.train_from_iterator(_noting_inner_chars(batches, inner_chars), trainer=trainer)
    entries = _wordpiece_entries(marked, _continuing_chars(inner_chars, marked), size)
    tokenizer = new_wordpiece_tokenizer(uncased)
    tokenizer.model = models.WordPiece({token: i for i, token in enumerate(entries)}, unk_token=UNK,
                                       continuing_subword_prefix="##", max_input_chars_per_word=MAX_WORD_CHARS)
    register_special_tokens(tokenizer)
    check_layout(tokenizer)
    add_bert_template(tokenizer)
    return tokenizer


def _noting_inner_chars(batches: Iterable[list[str]], inner_chars: set[str]) -> Iterator[list[str]]:
    """Pass the batches on, noting every character that follows another one inside a
    whitespace-separated token: only those can need a `##` piece."""
    for lines in batches:
        inner_chars.update(_FIRST_CHAR.sub("", "\n".join(lines)))  # one call per batch: cheaper
        yield lines


def _continuing_chars(inner_chars: set[str], marked: Tokenizer) -> set[str]:
    """Characters that can continue a word after normalisation: seen inside a token, and not split
    off by the pre-tokenizer (punctuation, CJK ideographs). A character composed by NFC counts when
    its base character does."""
    normalised = set()
    for char in inner_chars:
        normalised.update(marked.normalizer.normalize_str(char))
    continuing = set()
    for char in marked.get_vocab():
        if len(char) != 1 or char == WORD_START:
            continue
        base = unicodedata.normalize("NFD", char)[0]
        word = marked.normalizer.normalize_str(f"a{char}a")  # the normaliser isolates CJK ideographs
        if (char in normalised or base in normalised) and len(marked.pre_tokenizer.pre_tokenize_str(word)) == 1:
            continuing.add(char)
    return continuing


def _wordpiece_entries(marked: Tokenizer, continuing: set[str], size: int) -> list[str]:
    """The WordPiece vocabulary in id order: special tokens, every character and `##` + every
    continuing character (all kept, as WordPieceTrainer does), then the merged pieces in the order
    the trainer made them, up to `size` entries."""
    ordered = [token for token, _ in sorted(marked.get_vocab().items(), key=lambda item: item[1])]
    chars = [t for t in ordered if len(t) == 1 and t != WORD_START]
    entries = list(SPECIAL_TOKENS) + chars + ["##" + c for c in chars if c in continuing]
    for token in ordered[len(SPECIAL_TOKENS):]:
        if len(entries) >= size:
            break
        if len(token) < 2 or (token[0] == WORD_START and len(token) == 2):
            continue  # a character, the mark, or the mark on a character: all placed above
        entries.append(token[1:] if token[0] == WORD_START else "##" + token)
    return entries


def vocab_lines(tokenizer: Tokenizer) -> list[str]:
    """The vocabulary ordered by id: the lines of `vocab.txt`."""
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    if [i for _, i in ordered] != list(range(len(ordered))):
        raise RuntimeError("WordPiece ids are not contiguous; vocab.txt would misnumber them")
    return [token for token, _ in ordered]
