"""Command line of the transfer stage (being written)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("transfer" if "transfer" != "transfer" else "evaluate", help="(in progress)")
