"""`mbert bench ...`: speed measurements (`mbert bench pretrain`)."""

from __future__ import annotations

import argparse
import json

from .flags import common_options


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="speed benchmarks", description="speed benchmarks",
                           parents=[common_options()])
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    parser = bench_sub.add_parser(
        "pretrain", parents=[common_options()],
        help="time our pretraining step against HF BertForMaskedLM (same shape, batch, process)",
        description="time our pretraining step against HF BertForMaskedLM (same shape, batch, process)",
        epilog="example:\n  mbert bench pretrain --model small --vocab-size 119547 --seq-len 128 "
               "--batch-size 8 --steps 3 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["tiny", "small", "base"], default="base")
    parser.add_argument("--vocab-size", type=int, default=119547)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sequences per step (default 8 on CPU, 256 on GPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 3 CPU, 20 GPU)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_bench_pretrain)


def _bench_pretrain(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .errors import ConfigError
    from .pretrain.bench import bench_pretrain, format_result

    gpu = resolve_device(args.device, "--device") == "cuda"
    for name in ("vocab_size", "seq_len", "batch_size", "steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} = {value} must be at least 1")
    result = bench_pretrain(model=args.model, vocab_size=args.vocab_size, seq_len=args.seq_len,
                            batch_size=args.batch_size or (256 if gpu else 8),
                            steps=args.steps or (20 if gpu else 3), device=args.device,
                            compile=args.compile)
    print(json.dumps(result) if args.json else format_result(result))
    return 0
