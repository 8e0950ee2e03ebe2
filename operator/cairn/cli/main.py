"""Entry point of the `cairn` command (also installed as `kubectl-cairn`, so that kubectl's plugin
mechanism runs it as `kubectl cairn`)."""

import argparse
import json
import os
import sys
from collections.abc import Sequence

from kubernetes import config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from cairn import __version__
from cairn.cli import approval, card, lineage, listing, retraining, rollout, status
from cairn.kube import client

PLUGIN_NAME = "kubectl-cairn"


def program_name(argv0: str) -> str:
    """What the usage lines call the command: as kubectl's plugin it is `kubectl cairn`."""
    return "kubectl cairn" if os.path.basename(argv0) == PLUGIN_NAME else "cairn"


def build_parser(prog: str = "cairn") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Inspect and steer Cairn's machine-learning resources."
    )
    parser.add_argument("--version", action="version", version=f"cairn {__version__}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    listing.add_commands(subcommands)
    lineage.add_commands(subcommands)
    card.add_commands(subcommands)
    status.add_commands(subcommands)
    approval.add_commands(subcommands)
    rollout.add_commands(subcommands)
    retraining.add_commands(subcommands)
    return parser


def current_namespace() -> str:
    """The namespace of the kubeconfig's current context, as kubectl would use it."""
    try:
        _, context = config.list_kube_config_contexts()
    except (config.ConfigException, OSError):
        return "default"
    return str(context.get("context", {}).get("namespace") or "default")


def api_error(error: ApiException) -> str:
    """The API server's own message (a Status object's), not the client's dump of the response."""
    try:
        said = json.loads(error.body or "{}").get("message")
    except ValueError:
        said = None
    return f"the API server answered {error.status} {error.reason}: {said or error.body}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(program_name(sys.argv[0]))
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    client.identify("cairn-cli")
    if getattr(args, "namespace", "") is None:
        args.namespace = current_namespace()
    try:
        print(args.run(args))
    except approval.CommandError as error:
        print(f"cairn: {error}", file=sys.stderr)
        return 1
    except ApiException as error:
        print(f"cairn: {api_error(error)}", file=sys.stderr)
        return 1
    except (config.ConfigException, HTTPError) as error:
        # No kubeconfig, or no cluster behind it: say so in one line, as kubectl does.
        print(f"cairn: cannot reach the cluster: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `cairn runs | head`: the reader left. Point stdout at /dev/null so that Python's own
        # flush at exit does not fail a second time, and stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
