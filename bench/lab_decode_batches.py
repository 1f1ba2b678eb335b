"""Decode a few pretraining batches of an mbert run by hand: tokens, masks, labels, segments, positions.

The first check when a model learns less than expected: are the masked positions real tokens (never
[CLS]/[SEP]/[PAD]), is ~15% masked with 80/10/10, do the labels hold the original tokens, do the
segment and position ids look right (TLM: positions restart at the second sentence, which is the
translation or fake copy of the first)? Batches are built exactly as the trainer builds them.

    python bench/lab_decode_batches.py runs/lab-fake/pretrain/mlm-tlm --objective tlm --rows 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an mbert pretraining folder (resolved_config.toml, data/)")
    parser.add_argument("--objective", choices=("mlm", "tlm"), default="mlm")
    parser.add_argument("--rows", type=int, default=2, help="instances to print")
    parser.add_argument("--batches", type=int, default=20, help="batches to count statistics over")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from mbert.config import build
    from mbert.pretrain.batching import Vocabulary, make_batch
    from mbert.pretrain.inputs import continuation_table
    from mbert.pretrain.instances import open_instances
    from mbert.pretrain.settings import PretrainSettings
    from mbert.pretrain.sources import OBJECTIVES, tlm_source
    from mbert.pretrain.token_store import TokenStore

    config = tomllib.loads((args.run / "resolved_config.toml").read_text(encoding="utf-8"))
    settings = build(PretrainSettings, config["pretrain"], section="pretrain")
    tokenizer = AutoTokenizer.from_pretrained(config["inputs"]["vocab"])
    vocab = Vocabulary.from_tokenizer(tokenizer, continuation_table(tokenizer))
    store_dir = Path(settings.token_store) if settings.token_store else args.run / "data" / "store"
    store = TokenStore.open(store_dir)
    languages = list(store.languages)
    if args.objective == "tlm":
        source = tlm_source(settings, tokenizer, languages)
        if source is None:
            raise SystemExit(f"{args.run} trains no TLM")
        tokens, instances = source.tokens, source.instances
    else:
        cache = sorted((args.run / "data").glob("instances-*.json"))
        if not cache:
            raise SystemExit(f"no instance cache in {args.run / 'data'}")
        count = json.loads(cache[0].read_text())["train"]
        instances = open_instances(cache[0].with_name(cache[0].stem + "-train.bin"), count)
        tokens = store.tokens
    rng = np.random.default_rng(0)
    special = set(tokenizer.all_special_ids)
    counts = {"targets": 0, "candidates": 0, "as_mask": 0, "kept": 0, "random": 0, "special_targets": 0}
    for b in range(args.batches):
        rows = rng.choice(len(instances), size=min(settings.batch_size, len(instances)), replace=False)
        keys = [(settings.seed, OBJECTIVES[args.objective], 0, int(i)) for i in rows]
        batch = make_batch(tokens, instances[rows], keys, vocab, max_seq_length=settings.max_seq_length,
                           mask_prob=settings.mask_prob, whole_word=settings.whole_word_masking,
                           nsp=settings.nsp and args.objective == "mlm",
                           restart_positions=args.objective == "tlm", language_types=settings.language_embeddings)
        ids = batch.input_ids.reshape(-1)
        positions, labels = batch.masked_positions, batch.masked_labels
        shown = ids[positions]
        counts["targets"] += len(labels)
        counts["candidates"] += int(sum((row != vocab.pad) & (row != vocab.cls) & (row != vocab.sep)
                                        for row in batch.input_ids.reshape(-1).numpy()))
        counts["as_mask"] += int((shown == vocab.mask).sum())
        counts["kept"] += int((shown == labels).sum())
        counts["random"] += int(((shown != vocab.mask) & (shown != labels)).sum())
        counts["special_targets"] += int(sum(int(t) in special for t in labels))
        if b == 0:
            width = batch.input_ids.shape[1]
            masked = dict(zip(positions.tolist(), labels.tolist()))
            for r in range(min(args.rows, len(rows))):
                row = instances[rows[r]]
                print(f"--- instance {int(rows[r])}: languages {languages[row[5]]} / {languages[row[6]]}")
                print("pos  type  input              label")
                for p in range(width):
                    token = int(batch.input_ids[r, p])
                    if token == vocab.pad:
                        break
                    flat = r * width + p
                    pos = int(batch.position_ids[r, p]) if batch.position_ids is not None else p
                    label = tokenizer.convert_ids_to_tokens(masked[flat]) if flat in masked else ""
                    print(f"{pos:3d}  {int(batch.token_type_ids[r, p]):4d}  "
                          f"{tokenizer.convert_ids_to_tokens(token):18s} {label}")
    n = max(1, counts["targets"])
    print(f"\n{args.batches} batches of {settings.batch_size}: {counts['targets']} targets = "
          f"{counts['targets'] / max(1, counts['candidates']):.1%} of the maskable tokens; "
          f"[MASK] {counts['as_mask'] / n:.1%}, random {counts['random'] / n:.1%}, unchanged {counts['kept'] / n:.1%} "
          f"(random replacements that hit the original count as unchanged); special tokens as targets: "
          f"{counts['special_targets']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
