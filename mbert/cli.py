"""`mbert` command line: one sub-command per stage; each stage registers its own commands (built
with `mbert.flags`, which they import; this module only assembles them and runs one).

User errors (`UserError`) print one line and exit 1 (2 for invalid settings); `--debug` shows the
traceback instead, with the same exit status."""

from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__
from .errors import UserError
from .progress import set_quiet


def build_parser() -> argparse.ArgumentParser:
    from .bench_cli import register as register_bench
    from .corpus.cli import register as register_corpus
    from .pretrain.cli import register as register_pretrain
    from .report.cli import register as register_report
    from .run_cli import register as register_run
    from .transfer.cli import register as register_evaluate
    from .vocab.cli import register as register_vocab

    parser = argparse.ArgumentParser(
        prog="mbert",
        description="Multilingual BERT pipeline: Wikipedia corpus -> shared vocabulary -> pretraining -> "
                    "zero-shot cross-lingual evaluation -> report.",
        epilog="stages: corpus, vocab, pretrain, evaluate, report; `mbert run` does them all.\n"
               "example:\n  mbert run corpora/demo.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mbert {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (summaries still print)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_corpus(sub)
    register_vocab(sub)
    register_pretrain(sub)
    register_evaluate(sub)
    register_report(sub)
    register_run(sub)
    register_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    set_quiet(args.quiet)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if args.debug:  # the traceback too, with the same exit status
            traceback.print_exc()
        else:
            print(f"mbert: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mbert: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
