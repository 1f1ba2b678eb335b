"""Command line of the pretrain stage (being written)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("pretrain" if "pretrain" != "transfer" else "evaluate", help="(in progress)")
