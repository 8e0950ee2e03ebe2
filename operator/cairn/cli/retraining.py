"""`cairn retrain CT --reason ...`, `cairn ct` and `cairn history MODEL`: asking a
ContinuousTraining for a run (the annotation cairn.dev/retrain, as a CI job or a person would
set it with kubectl), listing them, and one timeline of a Model: triggers, runs, versions, gates,
promotions and rollouts."""

import argparse
import datetime
from typing import Any

from cairn.api import ContinuousTraining, Model, ModelDeployment, TrainingRun
from cairn.api.labels import MODEL_LABEL, RETRAIN_ANNOTATION
from cairn.cli import listing, output
from cairn.cli.approval import CommandError
from cairn.kube import objects

Body = dict[str, Any]


def retrain(args: argparse.Namespace) -> str:
    if objects.get(ContinuousTraining, args.namespace, args.ct) is None:
        raise CommandError(
            f"ContinuousTraining {args.ct} not found in namespace {args.namespace} "
            f"(list them with `cairn ct -n {args.namespace}`)"
        )
    # The value is the reason; a timestamp makes a repeated reason a new request.
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = f"{args.reason} ({stamp})"
    patch = {"metadata": {"annotations": {RETRAIN_ANNOTATION: value}}}
    objects.patch(ContinuousTraining, args.namespace, args.ct, patch)
    return f"{args.ct}: retraining requested ({value})"


def ct_summary(ct: Body) -> Body:
    meta, spec, status = ct["metadata"], ct.get("spec") or {}, ct.get("status") or {}
    last = status.get("lastTrigger") or {}
    ready = output.condition(ct, "Ready")
    triggers = spec.get("triggers") or {}
    return {
        "name": meta["name"],
        "model": spec.get("model"),
        "triggers": [*sorted(k for k, v in triggers.items() if v), "request"],
        "suspended": bool(spec.get("suspend")),
        "ready": ready.get("status"),
        "readyMessage": ready.get("message"),
        "lastTrigger": last.get("type"),
        "lastTriggerReason": last.get("reason"),
        "lastTriggerTime": last.get("time"),
        "lastRun": last.get("run"),
        "active": status.get("active") or [],
        "nextScheduleTime": status.get("nextScheduleTime"),
        "lastSuccessfulVersion": status.get("lastSuccessfulVersion"),
        "waiting": status.get("waiting"),
        "creationTimestamp": meta.get("creationTimestamp"),
    }


def ct_table(summaries: list[Body], at: datetime.datetime) -> str:
    def trigger(s: Body) -> str | None:
        if not s["lastTrigger"]:
            return None
        return f"{s['lastTrigger']} {output.since(s['lastTriggerTime'], at)} ago"

    def next_time(s: Body) -> str | None:
        return f"in {output.until(s['nextScheduleTime'], at)}" if s["nextScheduleTime"] else None

    return output.table(
        ("NAME", "MODEL", "TRIGGERS", "LAST TRIGGER", "LAST RUN", "NEXT", "VERSION", "READY"),
        (
            (
                s["name"] + (" (suspended)" if s["suspended"] else ""),
                s["model"],
                ",".join(s["triggers"]),
                trigger(s),
                s["lastRun"],
                next_time(s),
                s["lastSuccessfulVersion"],
                s["ready"],
            )
            for s in summaries
        ),
    )


def cts(args: argparse.Namespace) -> str:
    found = sorted(
        objects.list_(ContinuousTraining, args.namespace), key=lambda c: c["metadata"]["name"]
    )
    summaries = [ct_summary(c) for c in found]
    if not summaries and args.output == "table":
        return f"No ContinuousTrainings in namespace {args.namespace}."
    return output.render(summaries, args.output, ct_table(summaries, listing.now()))


def _entry(time: str | None, what: str, subject: str, detail: str) -> Body:
    return {"time": time, "what": what, "subject": subject, "detail": detail}


def timeline(
    model: Body | None, versions: list[Body], runs: list[Body], mdeps: list[Body]
) -> list[Body]:
    """Everything that happened to a Model that its objects still remember, oldest first."""
    entries: list[Body] = []
    for run in runs:
        meta, status = run["metadata"], run.get("status") or {}
        annotations = meta.get("annotations") or {}
        trigger = annotations.get("cairn.dev/trigger-type")
        if trigger:
            reason = annotations.get("cairn.dev/trigger-reason", "")
            entries.append(
                _entry(
                    annotations.get("cairn.dev/trigger-time"),
                    f"trigger {trigger}",
                    meta["name"],
                    reason,
                )
            )
        entries.append(_entry(meta.get("creationTimestamp"), "run created", meta["name"], ""))
        if status.get("phase") in ("Succeeded", "Failed"):
            said = status.get("keyMetric") or status.get("failureReason") or ""
            end = listing.finished_at(run)
            entries.append(_entry(end, f"run {status['phase'].lower()}", meta["name"], said))
    for version in versions:
        meta, status = version["metadata"], version.get("status") or {}
        entries.append(
            _entry(
                meta.get("creationTimestamp"),
                "version registered",
                meta["name"],
                status.get("keyMetric") or "",
            )
        )
        for kind in ("Validated", "Approved", "Promoted"):
            condition = output.condition(version, kind)
            if condition:
                verdict = (
                    condition["reason"]
                    if condition["status"] == "True"
                    else f"not {kind.lower()}: {condition['reason']}"
                )
                entries.append(
                    _entry(
                        condition.get("lastTransitionTime"),
                        kind.lower(),
                        meta["name"],
                        f"{verdict}: {condition.get('message', '')}",
                    )
                )
    for entry in ((model or {}).get("status") or {}).get("history") or []:
        versions_moved = f"{entry.get('fromVersion') or '-'} → {entry.get('toVersion') or '-'}"
        moved = f"{entry.get('alias') or ''} {versions_moved}".strip()
        entries.append(
            _entry(
                entry.get("time"),
                str(entry.get("action")),
                moved,
                f"by {entry.get('by')}: {entry.get('reason') or ''}",
            )
        )
    for mdep in mdeps:
        meta, status = mdep["metadata"], mdep.get("status") or {}
        canary, rollback = status.get("canary") or {}, status.get("rollback") or {}
        if canary.get("version"):
            entries.append(
                _entry(
                    canary.get("startedAt"),
                    "canary started",
                    meta["name"],
                    f"v{canary['version']} at weight {canary.get('weight', 0)}%",
                )
            )
        if rollback.get("version"):
            entries.append(
                _entry(
                    rollback.get("at"),
                    "rolled back",
                    meta["name"],
                    f"v{rollback['version']}: {rollback.get('reason')}: {rollback.get('message')}",
                )
            )
        stable = (status.get("stable") or {}).get("version")
        if stable:
            available = output.condition(mdep, "Available")
            entries.append(
                _entry(available.get("lastTransitionTime"), "serving", meta["name"], f"v{stable}")
            )
    return sorted(entries, key=lambda e: (e["time"] or "", e["what"]))


def history(args: argparse.Namespace) -> str:
    model = objects.get(Model, args.namespace, args.model)
    versions = listing.versions_of(args.namespace, args.model)
    if model is None and not versions:
        raise CommandError(
            f"Model {args.model} not found in namespace {args.namespace} "
            f"(list them with `cairn models -n {args.namespace}`)"
        )
    runs = objects.list_(TrainingRun, args.namespace, {MODEL_LABEL: args.model})
    mdeps = [
        m
        for m in objects.list_(ModelDeployment, args.namespace)
        if (m.get("spec") or {}).get("model") == args.model
    ]
    entries = timeline(model, versions, runs, mdeps)
    at = listing.now()
    text = output.table(
        ("AGE", "WHAT", "SUBJECT", "DETAIL"),
        (
            (
                output.since(e["time"], at) if e["time"] else None,
                e["what"],
                e["subject"],
                e["detail"],
            )
            for e in entries
        ),
    )
    return output.render(entries, args.output, text)


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subcommands.add_parser(
        "retrain", help="ask a ContinuousTraining for a run now (annotation cairn.dev/retrain)"
    )
    parser.add_argument("ct", help="the ContinuousTraining's name")
    parser.add_argument("--reason", required=True, help="why: recorded on the run and its version")
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    parser.set_defaults(run=retrain)

    parser = subcommands.add_parser(
        "ct", help="list ContinuousTrainings: triggers, last trigger and run, next schedule"
    )
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    output.add_output_flag(parser)
    parser.set_defaults(run=cts)

    parser = subcommands.add_parser(
        "history",
        help="a Model's timeline: triggers, runs, versions, gates, promotions, rollouts",
    )
    parser.add_argument("model", help="the Model's name")
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    output.add_output_flag(parser)
    parser.set_defaults(run=history)
