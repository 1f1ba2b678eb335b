"""A tiny random BERT for the retrieval, alignment and neutrality tests (fixture `tiny_bert`)."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_LANGUAGES = ["en", "de", "fr", "zh"]


def build_tiny_bert(out: Path, corpus_dir: Path):
    """A tiny cased WordPiece vocabulary trained on real kit text, and a random 2-layer BERT."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=False, strip_accents=False, handle_chinese_chars=True)
    wordpiece.train([str(corpus_dir / f"{lang}.txt") for lang in TINY_LANGUAGES], vocab_size=2000,
                    min_frequency=2, show_progress=False)
    wordpiece.save_model(str(out))
    tokenizer = BertTokenizerFast.from_pretrained(str(out), do_lower_case=False, strip_accents=False)
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    model = BertModel(config).eval()
    model.save_pretrained(out)
    return model, tokenizer
