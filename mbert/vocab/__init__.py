"""Vocabulary stage: WordPiece / SentencePiece training and the per-language tokenizer report."""
