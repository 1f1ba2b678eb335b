"""`mbert bench ...`: speed measurements (`mbert bench pretrain`)."""

from __future__ import annotations

import argparse
import json

from .flags import add_settings_flags, common_options, given
from .pretrain.settings import BenchSettings


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
    add_settings_flags(parser, "bench", BenchSettings, title="benchmark settings")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_bench_pretrain)


def _bench_pretrain(args: argparse.Namespace) -> int:
    from .config import build
    from .devices import resolve_device
    from .pretrain.bench import bench_pretrain, format_result

    settings = build(BenchSettings, given(args, "bench"), section="bench")
    gpu = resolve_device(settings.device, "--device") == "cuda"
    result = bench_pretrain(model=settings.model, vocab_size=settings.vocab_size, seq_len=settings.seq_len,
                            batch_size=settings.batch_size or (256 if gpu else 8),
                            steps=settings.steps or (20 if gpu else 3), device=settings.device,
                            compile=settings.compile)
    print(json.dumps(result) if args.json else format_result(result))
    return 0
