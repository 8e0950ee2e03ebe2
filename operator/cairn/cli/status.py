"""`cairn status MDEP`: a ModelDeployment's rollout as one readable page: what each track serves,
where the canary is in its steps, the last analysis per metric against the stable, the
conditions, and the last rollback. Everything comes from the object's spec and status."""

import argparse
import datetime
from typing import Any

from cairn.api import ModelDeployment
from cairn.cli import listing, output
from cairn.cli.approval import CommandError
from cairn.kube import objects

Body = dict[str, Any]
CONDITION_KEYS = ("type", "status", "reason", "message", "lastTransitionTime")


def step_text(step: Body | None) -> str | None:
    """A canary step as its manifest says it: setWeight 20, pause 1m, pause (until resumed)."""
    if step is None:
        return None
    if step.get("setWeight") is not None:
        return f"setWeight {step['setWeight']}"
    duration = (step.get("pause") or {}).get("duration")
    return f"pause {duration}" if duration else "pause (until `cairn resume`)"


def canary_part(spec: Body, canary: Body | None) -> Body | None:
    if not canary or canary.get("version") is None:
        return None
    strategy = (spec.get("strategy") or {}).get("canary") or {}
    steps: list[Body] = strategy.get("steps") or []
    step = int(canary.get("step") or 0)
    analysis = strategy.get("analysis")
    # What the operator judges with: the canary's settings completed with the installation's
    # defaults, as it records them; only what the spec says until it has.
    settings = canary.get("analysisSettings") or (analysis or {})
    return {
        "version": canary["version"],
        "weight": canary.get("weight"),
        # status.canary.step is an index; people count steps from 1.
        "step": step + 1,
        "steps": len(steps),
        "stepAction": step_text(steps[step] if step < len(steps) else None),
        "stepStartedAt": canary.get("stepStartedAt"),
        "promoting": bool(canary.get("promoting")),
        "replicas": canary.get("replicas"),
        "readyReplicas": canary.get("readyReplicas"),
        "verdict": canary.get("verdict"),
        "failedIntervals": canary.get("failedIntervals") or 0,
        "analysed": analysis is not None,
        "interval": settings.get("interval"),
        "failureLimit": settings.get("failureLimit"),
        "minRequests": settings.get("minRequests"),
        "passedIntervals": canary.get("passedIntervals") or 0,
        "lastAnalysisAt": canary.get("lastAnalysisAt"),
        "startedAt": canary.get("startedAt"),
    }


def status_summary(mdep: Body) -> Body:
    meta, spec, status = mdep["metadata"], mdep["spec"], mdep.get("status") or {}
    canary = status.get("canary") or {}
    return {
        "name": meta["name"],
        "model": spec["model"],
        "version": spec.get("version"),
        "alias": spec.get("alias"),
        "paused": bool(spec.get("paused", False)),
        "phase": status.get("phase"),
        "upToDate": (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0),
        "url": status.get("url"),
        "message": status.get("message"),
        "replicas": status.get("replicas"),
        "readyReplicas": status.get("readyReplicas"),
        "stable": status.get("stable"),
        "canary": canary_part(spec, canary),
        "analysis": [
            {
                "name": metric.get("name"),
                "value": metric.get("value"),
                "stableValue": metric.get("stableValue"),
                "threshold": metric.get("threshold"),
                "verdict": metric.get("verdict"),
            }
            for metric in canary.get("analysis") or []
        ],
        "conditions": [
            {key: c.get(key) for key in CONDITION_KEYS} for c in status.get("conditions") or []
        ],
        "rollback": status.get("rollback"),
    }


def _target(s: Body) -> str:
    wanted = f"alias {s['alias']}" if s["alias"] else f"version {s['version']}"
    return f"{s['model']}, {wanted}"


def _track(track: Body | None) -> str | None:
    if not track or track.get("version") is None:
        return None
    ready = f"{track.get('readyReplicas') or 0}/{track.get('replicas') or 0} ready"
    return f"v{track['version']}, {ready}"


def _canary(canary: Body | None) -> str | None:
    if canary is None:
        return None
    where = (
        "promoting (updating the stable)"
        if canary["promoting"]
        else f"step {canary['step']}/{canary['steps']}: {canary['stepAction']}"
    )
    ready = f"{canary['readyReplicas'] or 0}/{canary['replicas'] or 0} ready"
    return f"v{canary['version']}, weight {canary['weight'] or 0}%, {where}, {ready}"


def _analysis(canary: Body | None, at: datetime.datetime) -> str | None:
    if canary is None or not canary["analysed"]:
        return None
    every = (
        f"every {canary['interval']}" if canary["interval"] else "at the installation's interval"
    )
    if not canary["lastAnalysisAt"]:
        return f"judged {every}, no interval judged yet"
    ago = output.since(canary["lastAnalysisAt"], at)
    limit = f"/{canary['failureLimit']}" if canary["failureLimit"] else ""
    return (
        f"judged {every}: last verdict {canary['verdict'] or 'none'} {ago} ago, failed "
        f"intervals {canary['failedIntervals']}{limit}, passed in this step "
        f"{canary['passedIntervals']}"
    )


def _rollback(rollback: Body | None, at: datetime.datetime) -> str | None:
    if not rollback:
        return None
    when = f" {output.since(rollback['at'], at)} ago" if rollback.get("at") else ""
    return f"v{rollback['version']} {rollback['reason']}{when}: {rollback['message']}"


def status_text(s: Body, at: datetime.datetime) -> str:
    phase = s["phase"] or "Pending"
    if not s["upToDate"]:
        phase += " (the operator has not seen the latest spec yet)"
    lines: list[tuple[str, output.Cell]] = [
        ("Name", s["name"]),
        ("Serves", _target(s)),
        ("Phase", phase + (" (spec.paused)" if s["paused"] else "")),
        ("URL", s["url"]),
        ("Stable", _track(s["stable"])),
        ("Canary", _canary(s["canary"]) or "none (no rollout in progress)"),
    ]
    analysis, rollback = _analysis(s["canary"], at), _rollback(s["rollback"], at)
    lines += [("Analysis", analysis)] if analysis else []
    lines += [("Rollback", rollback)] if rollback else []
    lines.append(("Message", s["message"]))
    blocks = [output.fields(lines)]
    if s["analysis"]:
        blocks.append(
            output.table(
                ("METRIC", "CANARY", "STABLE", "THRESHOLD", "P", "VERDICT"),
                (
                    (
                        m["name"],
                        m["value"],
                        m["stableValue"],
                        m["threshold"],
                        m.get("pValue"),
                        m["verdict"],
                    )
                    for m in s["analysis"]
                ),
            )
        )
    if s["conditions"]:
        blocks.append(
            output.table(
                ("CONDITION", "STATUS", "REASON", "AGE", "MESSAGE"),
                (
                    (
                        c["type"],
                        c["status"],
                        c["reason"],
                        output.since(c["lastTransitionTime"], at),
                        c["message"],
                    )
                    for c in s["conditions"]
                ),
            )
        )
    return "\n\n".join(blocks)


def show(args: argparse.Namespace) -> str:
    mdep = objects.get(ModelDeployment, args.namespace, args.deployment)
    if mdep is None:
        raise CommandError(
            f"ModelDeployment {args.deployment} not found in namespace {args.namespace} "
            f"(list them with `kubectl get mdep -n {args.namespace}`)"
        )
    summary = status_summary(mdep)
    return output.render(summary, args.output, status_text(summary, listing.now()))


def add_commands(subcommands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subcommands.add_parser(
        "status", help="a ModelDeployment's rollout: tracks, step, analysis, conditions"
    )
    parser.add_argument("deployment", help="the ModelDeployment's name")
    parser.add_argument("-n", "--namespace", default=None, help="default: the context's")
    output.add_output_flag(parser)
    parser.set_defaults(run=show)
