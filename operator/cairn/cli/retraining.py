"""`cairn retrain CT --reason ...`, `cairn ct` and `cairn history MODEL`: asking a
ContinuousTraining for a run (the annotation cairn.dev/retrain, as a CI job or a person would
set it with kubectl), listing them, and one timeline of a Model: triggers, runs, versions, gates,
promotions and rollouts."""

import argparse
import datetime
from typing import Any

from cairn.api import ContinuousTraining, Model, ModelDeployment, TrainingRun
from cairn.api.labels import (
    CONTINUOUS_TRAINING_LABEL,
    MODEL_LABEL,
    RETRAIN_ANNOTATION,
    TRIGGER_REASON_ANNOTATION,
    TRIGGER_TIME_ANNOTATION,
    TRIGGER_TYPE_ANNOTATION,
)
from cairn.api.model import ModelReason
from cairn.api.modeldeployment import ModelDeploymentReason
from cairn.cli import listing, output
from cairn.cli.approval import CommandError
from cairn.kube import events, objects

Body = dict[str, Any]
EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)


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


# Within the same second (conditions keep whole seconds), the order in which things happen.
ORDER = (
    "trigger",
    "run created",
    "run succeeded",
    "run failed",
    "version registered",
    "validated",
    "approved",
    "promoted",
    "alias",
    "serving",
    "canary",
    "rolled back",
    "rollout aborted",
)
# What the Model's status.history entries say happened to the alias.
ALIAS_ACTIONS = {
    ModelReason.ALIAS_MOVED: "alias moved",
    ModelReason.PROMOTED: "alias promoted",
    ModelReason.ROLLED_BACK: "alias rolled back",
    ModelReason.VERSION_RETIRED: "alias cleared",
}
# The ModelDeployment Events that tell a rollout's story, and what the timeline calls them.
ROLLOUT_EVENTS = {
    ModelDeploymentReason.SERVING: "serving",
    ModelDeploymentReason.ROLLOUT_STARTED: "canary started",
    ModelDeploymentReason.PROMOTED: "canary promoted",
    ModelDeploymentReason.ROLLED_BACK: "rolled back",
    ModelDeploymentReason.ABORTED: "rollout aborted",
}


def _rank(entry: Body) -> tuple[datetime.datetime, int]:
    """Oldest first, to the second (Events keep fractions, conditions do not); ties in the order
    in which they happen."""
    time = output.parse_time(entry["time"]) if entry["time"] else None
    second = (time or EPOCH).replace(microsecond=0)
    what = entry["what"]
    return second, next((i for i, p in enumerate(ORDER) if what.startswith(p)), len(ORDER))


def _run_entries(run: Body) -> list[Body]:
    meta, status = run["metadata"], run.get("status") or {}
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    entries = []
    trigger = annotations.get(TRIGGER_TYPE_ANNOTATION)
    if trigger:
        reason = annotations.get(TRIGGER_REASON_ANNOTATION, "")
        when = annotations.get(TRIGGER_TIME_ANNOTATION)
        entries.append(_entry(when, f"trigger {trigger}", meta["name"], reason))
    ct = labels.get(CONTINUOUS_TRAINING_LABEL)
    made_by = f"by ContinuousTraining {ct}" if ct else "applied directly"
    entries.append(_entry(meta.get("creationTimestamp"), "run created", meta["name"], made_by))
    if status.get("phase") in ("Succeeded", "Failed"):
        said = status.get("keyMetric") or status.get("failureReason") or ""
        end = listing.finished_at(run)
        entries.append(_entry(end, f"run {status['phase'].lower()}", meta["name"], said))
    return entries


# A version's own history (status.history): what each action is in the timeline.
GATE_VERDICTS = {"GatesPassed", "GatesFailed", "ModelNotFound"}
DECISIONS = {"Approved", "AutoApproved", "PendingApproval", "Rejected", "ApprovalWithdrawn"}
NOT_DECIDED = {"PendingApproval", "Rejected", "ApprovalWithdrawn"}
# The Promoted and Superseded verdicts are the Model's alias moves (its status.history).
REFUSED_PROMOTIONS = {"NotBetter", "RolledBack"}


def _said(action: str, by: str | None, reason: str | None) -> str:
    who = f" by {by}" if by and by != "policy" else ""
    return f"{action}{who}: {reason or ''}"


def _recorded_entry(name: str, entry: Body) -> Body | None:
    """A timeline entry from one entry of a version's status.history."""
    action, time = str(entry.get("action")), entry.get("time")
    said = _said(action, entry.get("by"), entry.get("reason"))
    if action in GATE_VERDICTS:
        return _entry(
            time, "validated", name, said if action == "GatesPassed" else f"not validated: {said}"
        )
    if action in DECISIONS:
        return _entry(
            time, "approved", name, f"not approved: {said}" if action in NOT_DECIDED else said
        )
    if action in REFUSED_PROMOTIONS:
        return _entry(time, "promoted", name, f"not promoted: {said}")
    if action == "Serving":
        track = f"{entry.get('from') or '-'} → {entry.get('to') or '-'}"
        return _entry(time, "serving", name, f"{entry.get('by')}: {track}")
    if action == "CanaryRolledBack":
        return _entry(time, "rolled back", name, f"{entry.get('by')}: {entry.get('reason')}")
    return None


def _version_entries(version: Body) -> list[Body]:
    meta, status = version["metadata"], version.get("status") or {}
    metric = status.get("keyMetric") or ""
    entries = [_entry(meta.get("creationTimestamp"), "version registered", meta["name"], metric)]
    recorded = status.get("history")
    if recorded:
        # The version's durable history: every verdict and decision, not only the latest.
        found = (_recorded_entry(meta["name"], e) for e in recorded)
        return entries + [e for e in found if e is not None]
    # A version judged by an operator without histories: its conditions say the latest.
    for kind in ("Validated", "Approved", "Promoted"):
        condition = output.condition(version, kind)
        # A promotion is the Model's alias move (its status.history); a refusal is the version's.
        if not condition or (kind == "Promoted" and condition["status"] == "True"):
            continue
        verdict = (
            condition["reason"]
            if condition["status"] == "True"
            else f"not {kind.lower()}: {condition['reason']}"
        )
        when = condition.get("lastTransitionTime")
        detail = f"{verdict}: {condition.get('message', '')}"
        entries.append(_entry(when, kind.lower(), meta["name"], detail))
    return entries


def _alias_entries(model: Body | None, versions: list[Body]) -> list[Body]:
    """The Model's history: alias moves, and the approvals and rejections of versions that no
    longer exist (an existing version tells its own)."""
    name = ((model or {}).get("metadata") or {}).get("name")
    existing = {v["metadata"]["name"] for v in versions}
    entries = []
    for entry in ((model or {}).get("status") or {}).get("history") or []:
        action = entry.get("action")
        if action in (ModelReason.VERSION_APPROVED, ModelReason.VERSION_REJECTED):
            subject = f"{name}-v{entry.get('version')}"
            if subject in existing:
                continue
            state = "Approved" if action == ModelReason.VERSION_APPROVED else "Rejected"
            said = _said(state, entry.get("by"), entry.get("reason"))
            detail = said if state == "Approved" else f"not approved: {said}"
            entries.append(_entry(entry.get("time"), "approved", subject, detail))
            continue
        versions_moved = f"{entry.get('fromVersion') or '-'} → {entry.get('toVersion') or '-'}"
        moved = f"{entry.get('alias') or ''} {versions_moved}".strip()
        detail = f"by {entry.get('by')}: {entry.get('reason') or ''}"
        what = ALIAS_ACTIONS.get(ModelReason(action), f"alias {action}") if action else "alias"
        entries.append(_entry(entry.get("time"), what, moved, detail))
    return entries


def _rollout_entries(mdep: Body, posted: list[Body], recorded: set[str]) -> list[Body]:
    """The rollout's Events while the API server keeps them; the status's canary and rollback
    (which outlive them) when it no longer does. `recorded`: rollbacks a version's history
    already tells, by time."""
    name, status = mdep["metadata"]["name"], mdep.get("status") or {}
    entries = [
        _entry(
            e.get("lastTimestamp") or e.get("eventTime"),
            ROLLOUT_EVENTS[ModelDeploymentReason(e["reason"])],
            name,
            e.get("message") or "",
        )
        for e in posted
        if e.get("reason") in ROLLOUT_EVENTS
    ]
    said = {entry["what"] for entry in entries}
    canary, rollback = status.get("canary") or {}, status.get("rollback") or {}
    if canary.get("version") and "canary started" not in said:
        detail = f"v{canary['version']} at weight {canary.get('weight', 0)}%"
        entries.append(_entry(canary.get("startedAt"), "canary started", name, detail))
    if rollback.get("version") and "rolled back" not in said and rollback.get("at") not in recorded:
        detail = f"v{rollback['version']}: {rollback.get('reason')}: {rollback.get('message')}"
        entries.append(_entry(rollback.get("at"), "rolled back", name, detail))
    return entries


def timeline(
    model: Body | None,
    versions: list[Body],
    runs: list[Body],
    rollouts: list[tuple[Body, list[Body]]],
) -> list[Body]:
    """Everything that happened to a Model that its objects (and the Events of its
    ModelDeployments, given with each) still remember, oldest first."""
    entries = [e for run in runs for e in _run_entries(run)]
    entries += [e for version in versions for e in _version_entries(version)]
    entries += _alias_entries(model, versions)
    recorded = {e["time"] for e in entries if e["what"] == "rolled back"}
    entries += [e for mdep, posted in rollouts for e in _rollout_entries(mdep, posted, recorded)]
    return sorted(entries, key=_rank)


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
    rollouts = [
        (m, events.of(args.namespace, "ModelDeployment", m["metadata"]["name"])) for m in mdeps
    ]
    entries = timeline(model, versions, runs, rollouts)
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
