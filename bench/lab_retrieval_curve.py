"""Multilinguality over training: retrieval of sentences by their fake copies at every checkpoint.

A learning curve for the fake-language lab (issue #12 §3): for each `checkpoints/step-N/` of a
pretraining run (and its final `model/`), mean-pooled sentence vectors of English sentences and their
fake copies at every layer, raw and with each language's mean vector subtracted, and the share of fake
sentences whose nearest English sentence is their original. Use sentences that are neither in the
pretraining text nor in the suite's test set (e.g. UD LinES for a dev curve; the lab's test set is PUD),
so a recipe can be planned on this curve without looking at test scores. Keep the checkpoints with
`--set pretrain.keep_checkpoints=...`.

    python bench/lab_retrieval_curve.py runs/lab-fake/pretrain/mlm \
        --text ../shared/data/ud/en_lines-ud-train.conllu --sentences 1000 --json curve.json

With `--mixture RUN/corpus/mixture --split held-out|seen`, the sentences are instead a seeded random
sample (`--seed`) of the lines of `--text` that are not / are in the English half of the pretraining
mixture (30-300 characters, each once): in-domain held-out text, or text the model was trained on.
Comparing the three (another domain, the same domain unseen, seen) tells a domain or generalisation
gap from a model that has not aligned its languages at all:

    python bench/lab_retrieval_curve.py runs/lab-fake/pretrain/mlm --text ../shared/data/lab/en.txt \
        --mixture runs/lab-fake/corpus/mixture --split seen
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path


SHORTEST, LONGEST = 30, 300  # characters: no headings or one-word lines, no paragraphs cut at 128 tokens


def mixture_sentences(mixture: Path, lang: str) -> set[str]:
    """Every non-blank line of `lang`'s documents in a mixture folder."""
    from mbert.corpus.layout import find_corpus
    from mbert.vocab.shards import iter_line_batches

    return {line.strip() for _, lines in iter_line_batches(find_corpus(mixture), languages={lang})
            for line in lines if line.strip()}


def split_sentences(sentences: list[str], trained: set[str], split: str, count: int, seed: int) -> list[str]:
    """A seeded sample of `count` distinct sentences of 30-300 characters that are in `trained`
    (split "seen") or not ("held-out")."""
    eligible = sorted({s for s in sentences if SHORTEST <= len(s) <= LONGEST
                       and (s in trained) == (split == "seen")})
    random.Random(seed).shuffle(eligible)
    return eligible[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an mbert pretraining folder (model/, checkpoints/)")
    parser.add_argument("--text", type=Path, required=True,
                        help="English sentences: CoNLL-U (`# text =` lines) or one per line")
    parser.add_argument("--fake", default="en-fake", help="the fake language code (default en-fake)")
    parser.add_argument("--sentences", type=int, default=1000,
                        help="N sentences: the first N, or with --mixture a sample of N (default 1000)")
    parser.add_argument("--json", type=Path, help="also write the curve here")
    parser.add_argument("--mixture", type=Path, help="the run's mixture folder: sample --text's lines by --split")
    parser.add_argument("--split", choices=["held-out", "seen"], default="held-out",
                        help="with --mixture: lines not in the mixture's English half, or lines in it")
    parser.add_argument("--seed", type=int, default=0, help="with --mixture: the sample's seed (default 0)")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoConfig, AutoTokenizer, BertModel

    from transformers.utils import logging as hf_logging

    from mbert.pretrain.checkpoint import checkpoint_dirs
    from mbert.fake import base_language, fake_text
    from mbert.transfer.retrieval import (center_vectors, encode_sentences, fake_pairs, read_sentences,
                                          tatoeba_scores)

    hf_logging.set_verbosity_error()  # the MLM head in the weights is expected, not news
    model_dir = args.run / "model"
    if not (model_dir / "config.json").is_file():
        print(f"error: {model_dir} holds no finished model (config.json)", file=sys.stderr)
        return 1
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    if args.mixture:
        trained = mixture_sentences(args.mixture, base_language(args.fake))
        english = split_sentences(read_sentences(args.text), trained, args.split, args.sentences, args.seed)
        if not english:
            print(f"error: no line of {args.text} is {args.split} for {args.mixture}", file=sys.stderr)
            return 1
        fake = [fake_text(sentence, args.fake) for sentence in english]
        print(f"{len(english)} {args.split} sentences of {args.text} ({len(trained):,} English lines in the mixture)")
    else:
        fake, english = fake_pairs(args.text, [args.fake], args.sentences)[args.fake]
    layers = list(range(config.num_hidden_layers + 1))

    points = [(step, path) for step, path in checkpoint_dirs(args.run / "checkpoints")]
    final_step = json.loads((args.run / "manifest.json").read_text())["settings"]["steps"]
    curve = []
    if not points or points[-1][0] != final_step:  # the final model, unless a checkpoint holds it
        points.append((final_step, None))
    for step, path in points:
        started = time.time()
        if path is None:
            model = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
        else:
            state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)["model"]
            prefix = "hf.bert."
            weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            model = BertModel(config, add_pooling_layer=False)
            missing, _ = model.load_state_dict(weights, strict=False)
            if [k for k in missing if "pooler" not in k]:
                print(f"error: {path} lacks encoder weights {missing[:3]}", file=sys.stderr)
                return 1
        xx = encode_sentences(model, tokenizer, fake, layers=layers, desc=f"step {step} fake")
        en = encode_sentences(model, tokenizer, english, layers=layers, desc=f"step {step} en")
        raw = {k: round(tatoeba_scores(xx[k], en[k])["mean"], 1) for k in layers}
        centred = {k: round(tatoeba_scores(center_vectors(xx[k]), center_vectors(en[k]))["mean"], 1)
                   for k in layers}
        curve.append({"step": step, "checkpoint": str(path or model_dir), "raw": raw, "centered": centred})
        best_raw = max(raw, key=raw.get)
        best_c = max(centred, key=centred.get)
        print(f"step {step}: best raw {raw[best_raw]:.1f} (L{best_raw}), best centred {centred[best_c]:.1f} "
              f"(L{best_c}); centred by layer {list(centred.values())} [{time.time() - started:.0f}s]",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "text": str(args.text),
                                         "split": args.split if args.mixture else None,
                                         "sentences": len(english), "curve": curve}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
