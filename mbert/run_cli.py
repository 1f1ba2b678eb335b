"""`mbert run` (being written)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("run", help="(in progress)")
