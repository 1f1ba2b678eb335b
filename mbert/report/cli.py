"""Command line of the report stage (being written)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("report" if "report" != "transfer" else "evaluate", help="(in progress)")
