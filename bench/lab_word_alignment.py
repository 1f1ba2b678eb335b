"""Word-level alignment of a fake-language lab model, by layer: are a word and its fake copy neighbours?

Sentence retrieval (bench/lab_retrieval_curve.py) asks whether whole sentences align; zero-shot
tagging needs more: each *word* of Fake English must sit where its English original sits, in
context. This script measures that directly (issue #12 §3: why does POS transfer stay low when
retrieval is high?). For each of the `--words` commonest words of `--text` (a word is a
whitespace-separated token; the fake copy maps characters one to one, so words correspond by
position), it averages the word's contextual vectors (mean of its sub-words) over its occurrences
in the English sentences and, separately, over the same occurrences in their fake copies, at every
layer; then it reports the share of fake words whose nearest English word (cosine, after
subtracting each language's mean word vector, and raw) is their original. Layer 0 is the embedding layer's
output. Chance is 1 / --words.

    python bench/lab_word_alignment.py runs/lab-fake-long/pretrain/model \
        --text ../shared/data/ud/en_lines-ud-train.conllu --json words.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def word_vectors(model, tokenizer, sentences: list[list[str]], layers: list[int], batch_size: int = 64,
                 max_length: int = 128) -> tuple[list[dict[str, np.ndarray]], Counter]:
    """Per layer, word -> its mean contextual vector over its occurrences (each occurrence the mean of
    its sub-words); and the occurrence counts. Words cut off by max_length are not counted."""
    import torch

    sums: list[dict[str, np.ndarray]] = [{} for _ in layers]
    counts: Counter = Counter()
    model.eval()
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start:start + batch_size]
            batch = tokenizer(chunk, is_split_into_words=True, padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            hidden = model(**batch, output_hidden_states=True).hidden_states
            for row, words in enumerate(chunk):
                positions_of: dict[int, list[int]] = {}  # word index -> its sub-word positions
                for position, owner in enumerate(batch.word_ids(row)):
                    if owner is not None:
                        positions_of.setdefault(owner, []).append(position)
                for index, word in enumerate(words):
                    positions = positions_of.get(index)
                    if not positions:
                        continue
                    counts[word] += 1
                    for slot, layer in enumerate(layers):
                        vector = hidden[layer][row, positions].mean(0).numpy()
                        if word in sums[slot]:
                            sums[slot][word] += vector
                        else:
                            sums[slot][word] = vector.copy()
    return [{word: total / counts[word] for word, total in layer.items()} for layer in sums], counts


def nearest_accuracy(fake: np.ndarray, english: np.ndarray, *, center: bool = True) -> float:
    """Share of rows of `fake` whose nearest row of `english` (cosine; with `center`, after
    subtracting each side's mean) is the same row."""
    def unit(vectors: np.ndarray) -> np.ndarray:
        if center:
            vectors = vectors - vectors.mean(0, keepdims=True)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return float((np.argmax(unit(fake) @ unit(english).T, axis=1) == np.arange(len(fake))).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a model folder (config.json, weights, tokenizer), e.g. "
                                                 "RUN/pretrain/model")
    parser.add_argument("--text", type=Path, required=True,
                        help="English sentences: CoNLL-U (`# text =` lines) or one per line")
    parser.add_argument("--fake", default="en-fake", help="the fake language code (default en-fake)")
    parser.add_argument("--sentences", type=int, default=2000, help="the first N sentences (default 2000)")
    parser.add_argument("--words", type=int, default=500, help="the N commonest words are scored (default 500)")
    parser.add_argument("--random-init", action="store_true",
                        help="score fresh weights of the model's shape instead (seed 0): the baseline")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoConfig, AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    from mbert.fake import fake_text
    from mbert.transfer.retrieval import read_sentences

    hf_logging.set_verbosity_error()  # the MLM head in the weights is expected, not news
    if not (args.model / "config.json").is_file():
        print(f"error: {args.model} holds no model (config.json)", file=sys.stderr)
        return 1
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if args.random_init:
        torch.manual_seed(0)
        model = BertModel(AutoConfig.from_pretrained(args.model), add_pooling_layer=False)
    else:
        model = BertModel.from_pretrained(args.model, add_pooling_layer=False)
    english = [s.split() for s in read_sentences(args.text)[:args.sentences]]
    english = [words for words in english if words]
    fake = [[fake_text(word, args.fake) for word in words] for words in english]
    layers = list(range(model.config.num_hidden_layers + 1))
    en_means, en_counts = word_vectors(model, tokenizer, english, layers)
    fake_means, _ = word_vectors(model, tokenizer, fake, layers)
    words = [word for word, _ in en_counts.most_common(args.words)]
    fake_words = [fake_text(word, args.fake) for word in words]
    by_layer, raw = {}, {}
    for slot, layer in enumerate(layers):
        en = np.stack([en_means[slot][w] for w in words])
        xx = np.stack([fake_means[slot][w] for w in fake_words])
        by_layer[layer] = round(100 * nearest_accuracy(xx, en), 1)
        raw[layer] = round(100 * nearest_accuracy(xx, en, center=False), 1)
    best = max(by_layer, key=by_layer.get)
    print(f"{args.model}{' (random init)' if args.random_init else ''}: {len(words)} commonest words of "
          f"{len(english)} sentences; fake word -> its English original, % by layer, centred: "
          f"{' '.join(f'L{k} {v}' for k, v in by_layer.items())} (best L{best} {by_layer[best]}); raw: "
          f"{' '.join(f'L{k} {v}' for k, v in raw.items())} (chance {100 / len(words):.1f})")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "random_init": args.random_init,
                                         "text": str(args.text), "sentences": len(english),
                                         "words": len(words), "by_layer": by_layer, "raw_by_layer": raw},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
