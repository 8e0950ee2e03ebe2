"""Entry point of the `cairn` command; its subcommands come with the resources they drive."""

import argparse
from collections.abc import Sequence

from cairn import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cairn", description="Inspect and steer Cairn's machine-learning resources."
    )
    parser.add_argument("--version", action="version", version=f"cairn {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
