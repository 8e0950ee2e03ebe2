"""`cairn approve|reject MODEL VERSION`: the approval of a ModelVersion, the one part of it
meant for people (its spec.approval), set as a person would with kubectl patch."""

import argparse
import getpass
import re

from cairn.api import ModelVersion
from cairn.kube import objects


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback."""


def parse_version(text: str, model: str) -> int:
    """Accept 3, v3 or iris-v3."""
    match = re.fullmatch(rf"(?:{re.escape(model)}-)?v?(\d+)", text)
    if not match or int(match.group(1)) < 1:
        raise CommandError(f"version {text!r} is not a version number such as 3 or v3")
    return int(match.group(1))


def set_approval(args: argparse.Namespace, state: str) -> str:
    version = parse_version(args.version, args.model)
    name = f"{args.model}-v{version}"
    if objects.get(ModelVersion, args.namespace, name) is None:
        raise CommandError(
            f"ModelVersion {name} not found in namespace {args.namespace} "
            f"(list them with `kubectl get mv -n {args.namespace}`)"
        )
    approval = {"state": state, "by": args.by or getpass.getuser()}
    if args.reason:
        approval["reason"] = args.reason
    objects.patch(ModelVersion, args.namespace, name, {"spec": {"approval": approval}})
    return f"{name} {state.lower()}"


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    for command, state in (("approve", "Approved"), ("reject", "Rejected")):
        parser = subcommands.add_parser(
            command, help=f"mark a model version {state.lower()} (sets spec.approval)"
        )
        parser.add_argument("model", help="the Model's name")
        parser.add_argument("version", help="the version: 3, v3 or <model>-v3")
        parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
        parser.add_argument("--reason", help="why, recorded on the version")
        parser.add_argument("--by", help="who decides (default: the local user name)")
        parser.set_defaults(run=lambda args, state=state: set_approval(args, state))
