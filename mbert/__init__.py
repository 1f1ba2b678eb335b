"""mbert: multilingual BERT pipeline — corpus, vocabulary, pretraining, zero-shot transfer, reports."""

__version__ = "0.1.0"
