"""`cairn approve|reject MODEL VERSION --reason ...`: a person's decision on a ModelVersion, the
one part of it meant for people (its spec.approval), written as that person.

`by` is the user name the API server knows the caller by (a SelfSubjectReview), never typed:
where the chart's ValidatingAdmissionPolicy runs, the API server refuses an approval whose `by`
is anyone else's, and one from a user without the verb `approve` on modelversions.
"""

import argparse
import re

from cairn.api import ModelVersion
from cairn.kube import identity, objects


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
    reason = (args.reason or "").strip()
    if not reason:
        raise CommandError(
            f"--reason is required: say why {name} is {state.lower()} (it is kept in the "
            "version's history and its model card)"
        )
    if objects.get(ModelVersion, args.namespace, name) is None:
        raise CommandError(
            f"ModelVersion {name} not found in namespace {args.namespace} "
            f"(list them with `kubectl get mv -n {args.namespace}`)"
        )
    by = identity.username()
    approval = {"state": state, "by": by, "reason": reason}
    objects.patch(ModelVersion, args.namespace, name, {"spec": {"approval": approval}})
    return f"{name} {state.lower()} by {by}"


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    for command, state in (("approve", "Approved"), ("reject", "Rejected")):
        parser = subcommands.add_parser(
            command,
            help=f"mark a model version {state.lower()}, as yourself (sets spec.approval; needs "
            "the verb approve on modelversions, for example the ClusterRole cairn-approver)",
        )
        parser.add_argument("model", help="the Model's name")
        parser.add_argument("version", help="the version: 3, v3 or <model>-v3")
        parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
        parser.add_argument(
            "--reason", required=True, help="why: recorded on the version, its history and card"
        )
        parser.set_defaults(run=lambda args, state=state: set_approval(args, state))
