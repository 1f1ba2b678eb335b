"""Command line of the corpus stage (being written)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("corpus" if "corpus" != "transfer" else "evaluate", help="(in progress)")
