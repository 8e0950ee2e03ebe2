"""`cairn promote|abort|pause|resume MDEP`: steering a ModelDeployment's rollout, written the way
a person would with kubectl: spec.paused, or an annotation naming the rollout's version (and
step) so that one left behind never acts on a later rollout. Never status: that is the
operator's."""

import argparse
from typing import Any

from cairn.api import ModelDeployment
from cairn.api.labels import ABORT_ANNOTATION, PROMOTE_ANNOTATION, RESUME_ANNOTATION
from cairn.cli.approval import CommandError
from cairn.kube import objects

Body = dict[str, Any]


def _get(args: argparse.Namespace) -> Body:
    mdep = objects.get(ModelDeployment, args.namespace, args.deployment)
    if mdep is None:
        raise CommandError(
            f"ModelDeployment {args.deployment} not found in namespace {args.namespace} "
            f"(list them with `kubectl get mdep -n {args.namespace}`)"
        )
    return mdep


def _canary(mdep: Body) -> Body:
    canary: Body | None = (mdep.get("status") or {}).get("canary")
    if not canary or canary.get("version") is None:
        name = mdep["metadata"]["name"]
        raise CommandError(f"{name} has no rollout in progress (status.canary is empty)")
    return canary


def _annotate(args: argparse.Namespace, key: str, value: str) -> None:
    patch = {"metadata": {"annotations": {key: value}}}
    objects.patch(ModelDeployment, args.namespace, args.deployment, patch)


def promote(args: argparse.Namespace) -> str:
    canary = _canary(_get(args))
    _annotate(args, PROMOTE_ANNOTATION, str(canary["version"]))
    return f"{args.deployment}: promoting version {canary['version']} (remaining steps skipped)"


def abort(args: argparse.Namespace) -> str:
    canary = _canary(_get(args))
    _annotate(args, ABORT_ANNOTATION, str(canary["version"]))
    return f"{args.deployment}: rolling back version {canary['version']}"


def pause(args: argparse.Namespace) -> str:
    _get(args)
    objects.patch(ModelDeployment, args.namespace, args.deployment, {"spec": {"paused": True}})
    return f"{args.deployment}: paused (spec.paused=true)"


def resume(args: argparse.Namespace) -> str:
    mdep = _get(args)
    patch: Body = {"spec": {"paused": False}}
    canary = (mdep.get("status") or {}).get("canary") or {}
    said = f"{args.deployment}: resumed"
    if canary.get("version") is not None and canary.get("step") is not None:
        # Completes a pause {} step, the one the rollout is at now.
        value = f"{canary['version']}/{canary['step']}"
        patch["metadata"] = {"annotations": {RESUME_ANNOTATION: value}}
        said += f" (version {canary['version']}, step {canary['step']})"
    objects.patch(ModelDeployment, args.namespace, args.deployment, patch)
    return said


COMMANDS = (
    ("promote", promote, "promote the canary now, skipping the remaining steps"),
    ("abort", abort, "roll the canary back now; the stable keeps serving"),
    ("pause", pause, "hold the rollout where it is (sets spec.paused)"),
    ("resume", resume, "go on: clear spec.paused and complete a pause {} step"),
)


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    for command, run, text in COMMANDS:
        parser = subcommands.add_parser(command, help=text)
        parser.add_argument("deployment", help="the ModelDeployment's name")
        parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
        parser.set_defaults(run=run)
