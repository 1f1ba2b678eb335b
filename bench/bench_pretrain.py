"""Benchmark of `mbert pretrain` end to end on the kit corpus: token-store build speed (MB of
Parquet text per second, 1 vs N tokenizer processes) and training throughput (tokens/s of real
packed instances, padding excluded) for a model preset. The step-level comparison with HF
`BertForMaskedLM` is `mbert bench pretrain`.

The kit corpus (`shared/data/corpus/<lang>.txt`) is written as a mixture folder; the vocabulary is
a WordPiece trained on the same text with HF `tokenizers`.

    python bench/bench_pretrain.py                                  # defaults: see --help
    python bench/bench_pretrain.py --langs en de fr ru zh --model small --steps 30 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MBERT_TEST_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO / "tests"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the data kit")
    parser.add_argument("--langs", nargs="+", default=["en", "de", "fr", "es", "ru"])
    parser.add_argument("--docs", type=int, default=400, help="documents per language (at most)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--model", choices=["tiny", "small", "base"], default="tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="tokenizer processes for the parallel build")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from helpers_pretrain import make_mixture, make_vocab, tiny_settings
    from mbert.corpus.layout import find_corpus
    from mbert.pretrain.inputs import load_tokenizer
    from mbert.pretrain.token_store import build_token_store
    from mbert.pretrain.train import pretrain

    with tempfile.TemporaryDirectory(prefix="bench_pretrain_") as tmp:
        root = Path(tmp)
        corpus = make_mixture(args.data, root / "mixture", langs=tuple(args.langs), max_docs=args.docs,
                              shards=max(2, args.workers))
        vocab = make_vocab(args.data, root / "vocab", langs=tuple(args.langs), vocab_size=args.vocab_size)
        shards = find_corpus(corpus).shards
        tokenizer = load_tokenizer(vocab)
        megabytes = sum(s.path.stat().st_size for s in shards) / 1e6
        build = {}
        for workers in sorted({1, args.workers}):
            start = time.perf_counter()
            store = build_token_store(shards, tokenizer, root / f"store{workers}", "bench", workers)
            build[workers] = time.perf_counter() - start
        settings = tiny_settings(model=args.model, steps=args.steps, batch_size=args.batch_size,
                                 max_seq_length=args.seq_len, log_every=1, eval_every=10 ** 6,
                                 checkpoint_every=10 ** 6, dropout=0.1, device="auto")
        result = pretrain(corpus, vocab, root / "out", settings)
        log = [json.loads(line) for line in (root / "out" / "train_log.jsonl").read_text().split("\n") if line]
        steady = [r["tokens_per_s"] for r in log[2:]] or [r["tokens_per_s"] for r in log]
        figures = {
            "languages": args.langs, "corpus_mb": round(megabytes, 2), "tokens": store.info["n_tokens"],
            "store_build_s": {str(w): round(s, 2) for w, s in build.items()},
            "store_mb_per_s": {str(w): round(megabytes / s, 2) for w, s in build.items()},
            "model": args.model, "batch_size": args.batch_size, "seq_len": args.seq_len,
            "padding_share": round(result["padding_share"], 4),
            "train_tokens_per_s_median": round(sorted(steady)[len(steady) // 2], 1),
            "final_loss": round(result["final_loss"], 4), "cpu_count": os.cpu_count(),
        }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:28s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
