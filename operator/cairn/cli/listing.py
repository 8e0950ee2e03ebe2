"""`cairn runs`, `cairn models` and `cairn versions MODEL`: lists with what kubectl's printer
columns cannot show (durations, version counts, every metric side by side, aliases per version).

Each command reads the objects, builds one summary per object (plain data: what -o json|yaml
prints), and renders the table from those summaries, so the formats never disagree.
"""

import argparse
import datetime
from collections import Counter
from typing import Any

from cairn.api import Model, ModelVersion, TrainingRun, TrainingRunPhase
from cairn.api.labels import MODEL_LABEL
from cairn.cli import output
from cairn.cli.approval import CommandError
from cairn.kube import objects

Body = dict[str, Any]
FINISHED = (TrainingRunPhase.SUCCEEDED, TrainingRunPhase.FAILED)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --- runs -------------------------------------------------------------------------------------


def finished_at(run: Body) -> str | None:
    """When the run ended: status.completionTime, else (a run can be marked finished before its
    Job records a completion time) when its Succeeded or Failed condition became True."""
    status = run.get("status") or {}
    if status.get("completionTime") or status.get("phase") not in FINISHED:
        return status.get("completionTime")
    return output.condition(run, str(status["phase"])).get("lastTransitionTime")


def run_summary(run: Body, at: datetime.datetime) -> Body:
    meta, spec, status = run["metadata"], run["spec"], run.get("status") or {}
    end = finished_at(run)
    return {
        "name": meta["name"],
        "model": spec.get("model"),
        "phase": status.get("phase"),
        "keyMetric": status.get("keyMetric"),
        "modelVersion": status.get("modelVersion"),
        "startTime": status.get("startTime"),
        "completionTime": end,
        "durationSeconds": output.between(status.get("startTime"), end, at),
        "creationTimestamp": meta.get("creationTimestamp"),
        "failureReason": status.get("failureReason"),
        "suspended": bool(spec.get("suspend", False)),
    }


def runs_table(summaries: list[Body], at: datetime.datetime) -> str:
    def phase(s: Body) -> str | None:
        # A suspended run is Pending as far as its phase goes; say why it does not move.
        return f"{s['phase'] or 'Pending'} (suspended)" if s["suspended"] else s["phase"]

    return output.table(
        ("NAME", "MODEL", "PHASE", "METRIC", "VERSION", "DURATION", "AGE", "REASON"),
        (
            (
                s["name"],
                s["model"],
                phase(s),
                s["keyMetric"],
                s["modelVersion"],
                output.duration(s["durationSeconds"]),
                output.since(s["creationTimestamp"], at),
                s["failureReason"],
            )
            for s in summaries
        ),
    )


def runs(args: argparse.Namespace) -> str:
    found = objects.list_(TrainingRun, args.namespace)
    if args.model:
        found = [r for r in found if r["spec"].get("model") == args.model]
    at = now()
    summaries = [run_summary(r, at) for r in sorted(found, key=_created)]
    if not summaries and args.output == "table":
        return f"No TrainingRuns in namespace {args.namespace}."
    return output.render(summaries, args.output, runs_table(summaries, at))


# --- models -----------------------------------------------------------------------------------


def model_summary(model: Body, version_count: int) -> Body:
    meta, spec, status = model["metadata"], model.get("spec") or {}, model.get("status") or {}
    resolved: dict[str, int] = status.get("aliases") or {}
    return {
        "name": meta["name"],
        "latestVersion": status.get("latestVersion"),
        "versions": version_count,
        "aliases": resolved,
        # Pinned in the spec and not resolved: the target is not Validated and Approved (yet).
        "unresolvedAliases": {
            alias: version
            for alias, version in (spec.get("aliases") or {}).items()
            if resolved.get(alias) != version
        },
        "ready": output.condition(model, "Ready").get("status"),
        "creationTimestamp": meta.get("creationTimestamp"),
    }


def aliases_cell(summary: Body) -> str:
    words = [f"{alias}={version}" for alias, version in sorted(summary["aliases"].items())]
    words += [
        f"{alias}={version} (unresolved)"
        for alias, version in sorted(summary["unresolvedAliases"].items())
    ]
    return ", ".join(words)


def models_table(summaries: list[Body], at: datetime.datetime) -> str:
    return output.table(
        ("NAME", "LATEST", "VERSIONS", "ALIASES", "READY", "AGE"),
        (
            (
                s["name"],
                s["latestVersion"],
                s["versions"],
                aliases_cell(s),
                s["ready"],
                output.since(s["creationTimestamp"], at),
            )
            for s in summaries
        ),
    )


def models(args: argparse.Namespace) -> str:
    found = sorted(objects.list_(Model, args.namespace), key=lambda m: m["metadata"]["name"])
    counts = Counter(v["spec"]["model"] for v in objects.list_(ModelVersion, args.namespace))
    summaries = [model_summary(m, counts[m["metadata"]["name"]]) for m in found]
    if not summaries and args.output == "table":
        return f"No Models in namespace {args.namespace}."
    return output.render(summaries, args.output, models_table(summaries, now()))


# --- versions ---------------------------------------------------------------------------------


def aliases_by_version(model: Body | None) -> dict[int, list[str]]:
    """Each version's aliases: resolved ones as they are, pinned ones not resolved marked so."""
    if model is None:
        return {}
    summary = model_summary(model, 0)
    names: dict[int, list[str]] = {}
    for alias, version in sorted(summary["aliases"].items()):
        names.setdefault(int(version), []).append(alias)
    for alias, version in sorted(summary["unresolvedAliases"].items()):
        names.setdefault(int(version), []).append(f"{alias} (unresolved)")
    return names


def approval_text(version: Body) -> str:
    """Who approved, or that the policy did (requireApproval: false)."""
    approval = (version.get("spec") or {}).get("approval") or {}
    state = approval.get("state", "Pending")
    if state == "Pending":
        reason = output.condition(version, "Approved").get("reason")
        return "auto" if reason == "AutoApproved" else "Pending"
    return f"{state} by {approval['by']}" if approval.get("by") else str(state)


def version_summary(version: Body, aliases: dict[int, list[str]]) -> Body:
    meta, spec, status = version["metadata"], version["spec"], version.get("status") or {}
    number = int(spec["version"])
    return {
        "name": meta["name"],
        "version": number,
        "phase": status.get("phase"),
        "validated": output.condition(version, "Validated").get("status"),
        "approval": approval_text(version),
        "aliases": aliases.get(number, []),
        "servedBy": status.get("deployments") or [],
        "metrics": spec.get("metrics") or {},
        "creationTimestamp": meta.get("creationTimestamp"),
    }


def metric_columns(summaries: list[Body], model: Body | None, chosen: list[str]) -> list[str]:
    """The metrics to show: those asked for; else the Model's gate metrics first (what decides
    validation), then every other metric any version reports, alphabetically."""
    if chosen:
        return chosen
    gates = (((model or {}).get("spec") or {}).get("policy") or {}).get("gates") or []
    first = list(dict.fromkeys(g["metric"] for g in gates))
    rest = sorted({name for s in summaries for name in s["metrics"]} - set(first))
    return first + rest


def versions_table(summaries: list[Body], metrics: list[str], at: datetime.datetime) -> str:
    headers = ("VERSION", "PHASE", "VALIDATED", "APPROVAL", "ALIASES", "SERVED BY")
    return output.table(
        (*headers, *(m.upper() for m in metrics), "AGE"),
        (
            (
                s["name"],
                s["phase"],
                s["validated"],
                s["approval"],
                ", ".join(s["aliases"]),
                ", ".join(s["servedBy"]),
                *(s["metrics"].get(m) for m in metrics),
                output.since(s["creationTimestamp"], at),
            )
            for s in summaries
        ),
    )


def versions_of(namespace: str, model: str) -> list[Body]:
    """The model's versions, oldest first. The label narrows the list; spec.model decides."""
    found = objects.list_(ModelVersion, namespace, {MODEL_LABEL: model})
    return sorted(
        (v for v in found if v["spec"].get("model") == model), key=lambda v: v["spec"]["version"]
    )


def versions(args: argparse.Namespace) -> str:
    model = objects.get(Model, args.namespace, args.model)
    found = versions_of(args.namespace, args.model)
    if model is None and not found:
        raise CommandError(
            f"Model {args.model} not found in namespace {args.namespace} "
            f"(list them with `cairn models -n {args.namespace}`)"
        )
    aliases = aliases_by_version(model)
    summaries = [version_summary(v, aliases) for v in found]
    if not summaries and args.output == "table":
        return f"Model {args.model} has no versions yet."
    metrics = metric_columns(summaries, model, args.metric or [])
    return output.render(summaries, args.output, versions_table(summaries, metrics, now()))


def _created(body: Body) -> tuple[str, str]:
    meta = body["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subcommands.add_parser("runs", help="list TrainingRuns: phase, version, duration")
    parser.add_argument("--model", help="only the runs of this Model")
    _common(parser, runs)

    parser = subcommands.add_parser("models", help="list Models: latest version, aliases")
    _common(parser, models)

    parser = subcommands.add_parser(
        "versions", help="a Model's versions with their metrics side by side"
    )
    parser.add_argument("model", help="the Model's name")
    parser.add_argument(
        "--metric",
        action="append",
        help="show this metric (repeatable); default: the gates' metrics, then all others",
    )
    _common(parser, versions)


def _common(parser: argparse.ArgumentParser, run: Any) -> None:
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    output.add_output_flag(parser)
    parser.set_defaults(run=run)
