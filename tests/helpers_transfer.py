"""Tiny test models: deterministic WordPiece vocabularies on kit text and random small BERTs."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_LANGUAGES = ["en", "de", "fr", "zh"]


def write_test_vocab(folder: Path, texts: list[Path], size: int) -> Path:
    """`folder/vocab.txt`: a cased WordPiece trained on kit text files, deterministically, so every
    run tests the same vocabulary."""
    from mbert.vocab.wordpiece import train_wordpiece, vocab_lines

    lines = [line for path in texts for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    wordpiece = train_wordpiece([lines], size=size, uncased=False, min_frequency=2,
                                show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("".join(entry + "\n" for entry in vocab_lines(wordpiece)), encoding="utf-8")
    return folder / "vocab.txt"


def build_tiny_bert(out: Path, corpus_dir: Path):
    """A tiny cased WordPiece vocabulary trained on real kit text, and a random 2-layer BERT."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    write_test_vocab(out, [corpus_dir / f"{lang}.txt" for lang in TINY_LANGUAGES], 4000)
    tokenizer = BertTokenizerFast.from_pretrained(str(out), do_lower_case=False, strip_accents=False)
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    model = BertModel(config).eval()
    model.save_pretrained(out)
    return model, tokenizer


def tiny_mlm_checkpoint(folder: Path, corpus: list[Path], vocab_size: int) -> Path:
    """A random 2-layer `BertForMaskedLM` checkpoint folder with a WordPiece tokenizer trained on `corpus`."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    tokenizer = BertTokenizer(vocab=str(write_test_vocab(folder, corpus, vocab_size)), do_lower_case=False)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ----------------------------------------------------------------------------- evaluation suites
# Task tables on data-kit files that the evaluation tests combine; each test adds its languages and
# the caps that keep its fine-tuning to seconds.
XNLI = {"kind": "pair", "split_by_index": True, "test": "xnli/dev-{lang}.tsv"}
TATOEBA = {"kind": "tatoeba", "folder": "tatoeba"}
UDPOS = {"kind": "pos", "train": "udpos_xtreme/dev-en.tsv", "dev": "ud/en_lines-ud-train.conllu",
         "test": "ud/pud/{lang}_pud-ud-test.conllu"}


def task(base: dict, languages: list[str], **caps) -> dict:
    return {**base, "languages": languages, **caps}


def write_suite(path: Path, data_dir: Path, tasks: dict[str, dict], **top) -> Path:
    """A suite file: `data`, the top-level keys and tables in `top` (seeds, epochs, [alignment] ...),
    one `[tasks.NAME]` table per task."""
    import tomli_w

    path.write_text(tomli_w.dumps({"data": str(data_dir), **top, "tasks": tasks}), encoding="utf-8")
    return path
