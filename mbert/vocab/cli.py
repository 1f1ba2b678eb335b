"""Command line of the vocab stage (being written)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("vocab" if "vocab" != "transfer" else "evaluate", help="(in progress)")
