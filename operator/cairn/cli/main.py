"""Entry point of the `cairn` command (also usable as `kubectl cairn`)."""

import argparse
import sys
from collections.abc import Sequence

from kubernetes import config

from cairn import __version__
from cairn.cli import approval, rollout


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cairn", description="Inspect and steer Cairn's machine-learning resources."
    )
    parser.add_argument("--version", action="version", version=f"cairn {__version__}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    approval.add_commands(subcommands)
    rollout.add_commands(subcommands)
    return parser


def current_namespace() -> str:
    """The namespace of the kubeconfig's current context, as kubectl would use it."""
    try:
        _, context = config.list_kube_config_contexts()
    except (config.ConfigException, OSError):
        return "default"
    return str(context.get("context", {}).get("namespace") or "default")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    if getattr(args, "namespace", "") is None:
        args.namespace = current_namespace()
    try:
        print(args.run(args))
    except approval.CommandError as error:
        print(f"cairn: {error}", file=sys.stderr)
        return 1
    return 0
