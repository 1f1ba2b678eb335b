"""The special tokens and their fixed ids, shared by the WordPiece and the SentencePiece vocabularies.

Every vocabulary this stage writes starts with these five entries, in this order, so later stages
(and users) can rely on the ids whatever the kind of vocabulary."""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, processors

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]  # ids 0, 1, 2, 3, 4
SPECIAL_IDS = {token: index for index, token in enumerate(SPECIAL_TOKENS)}


def add_bert_template(tokenizer: Tokenizer) -> None:
    """`[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` (segment ids 0 / 1), as BERT expects."""
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, SPECIAL_IDS[CLS]), (SEP, SPECIAL_IDS[SEP])])


def register_special_tokens(tokenizer: Tokenizer) -> None:
    """Mark the five tokens as special so they are never split and are skipped when decoding."""
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])


def check_layout(tokenizer: Tokenizer) -> None:
    """The trained vocabulary must hold the special tokens at their fixed ids."""
    for token, index in SPECIAL_IDS.items():
        found = tokenizer.token_to_id(token)
        if found != index:
            raise RuntimeError(f"special token {token} has id {found}, expected {index}")
