"""What Deployments a ModelDeployment should have: pure, from its spec, the version it should
serve, the version each track runs and the rollout recorded in status.

Without strategy.canary a new target version replaces the stable track's version in place (a
rolling update that never drops below the desired ready pods). With it, the rollout is a state
machine whose whole state is status.canary (version, step, stepStartedAt, analysis counts) and
the observed Deployments, so an operator restart resumes at the same step:

  start      a `<name>-canary` Deployment runs the new version; step 0.
  setWeight  the canary gets round(replicas * weight / 100) pods (≥ 1 for a weight above 0), the
             stable the rest (≥ 1 while the rollout runs): the split is by replica ratio. The
             step completes when the canary's pods are ready. With an HTTPRoute the route
             splits exactly: the canary gets ceil(replicas * weight / 100) pods, the stable
             keeps all of its own, and the step also waits for the route to carry the weight.
  pause      {duration}: completes when that long has passed since the step began; {}: when
             `cairn resume` names this step (annotation cairn.dev/resume=<version>/<step>).
  analysis   when configured, a step completes only after at least one passing interval in it;
             failureLimit failed intervals roll back.
  promote    after the last step (or `cairn promote`): the stable Deployment is updated to the
             new version in place, and once it is ready the canary is removed.
  rollback   analysis failure, `cairn abort` or a canary that makes no progress within
             progressDeadlineSeconds: the canary is removed, the stable (never touched) keeps
             serving, status.rollback remembers the version so it is not tried again until the
             target changes.
"""

import dataclasses
import datetime
from typing import Any

from cairn.analysis.judge import duration_seconds, failure_message, parse_time, stamp
from cairn.api.modeldeployment import ABORT_ANNOTATION, PROMOTE_ANNOTATION, RESUME_ANNOTATION
from cairn.controllers.deployment.routing import route_name
from cairn.controllers.deployment.target import Target

Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TrackPlan:
    """A track's Deployment as it should be: the version it runs and its replicas."""

    target: Target
    replicas: int


@dataclasses.dataclass(frozen=True)
class Note:
    """An Event the reconcile posts for a transition the plan decided."""

    warning: bool
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    stable: TrackPlan | None  # None: nothing can be served yet, no Deployment
    canary: TrackPlan | None = None  # None: no canary Deployment (one that exists is removed)
    # A new target waits (spec.paused): the tracks keep the versions they run.
    held: Target | None = None
    # status.canary and status.rollback as they should be written (None clears them).
    canary_status: Body | None = None
    rollback: Body | None = None
    notes: tuple[Note, ...] = ()


@dataclasses.dataclass(frozen=True)
class Progress:
    """What the reconcile observed of a rollout, besides the spec and the targets."""

    canary_status: Body | None = None  # status.canary, with this reconcile's analysis recorded
    rollback: Body | None = None  # status.rollback
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    canary_ready: bool = False  # the canary Deployment runs its desired pods, all ready
    stable_ready: bool = False  # the stable Deployment's rollout is complete
    canary_stuck: str | None = None  # why the canary made no progress within the deadline
    route_weight: int | None = None  # the canary's weight on the HTTPRoute, when there is one
    now: datetime.datetime = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )


def split(replicas: int, weight: int, routed: bool = False) -> tuple[int, int]:
    """(stable, canary) pods for a canary weight. By replica ratio: any weight above 0 gets at
    least one canary pod, and the stable keeps at least one pod during the rollout. `routed`
    (a router sets the exact weight): the canary gets the pods its share needs, rounded up, and
    the stable keeps all of its own, ready to take everything back at once."""
    if replicas <= 0:
        return 0, 0
    if weight <= 0:
        return replicas, 0
    if routed:
        return replicas, min(replicas, max(1, -(-replicas * weight // 100)))
    canary = replicas if weight >= 100 else min(max(1, round(replicas * weight / 100)), replicas)
    return max(1, replicas - canary), canary


def effective_weight(stable: int, canary: int) -> int:
    """The share of requests the pods really get, %."""
    return round(100 * canary / (stable + canary)) if stable + canary else 0


def weight_at(steps: list[Body], step: int) -> int:
    """The weight set by the last setWeight at or before `step` (0 before any)."""
    weight = 0
    for entry in steps[: step + 1]:
        if entry.get("setWeight") is not None:
            weight = int(entry["setWeight"])
    return weight


def _canary_plan(spec: Body, stable: Target, target: Target, status: Body) -> Plan:
    """The tracks for a rollout at status.canary's step."""
    replicas = int(spec.get("replicas", 1))
    if status.get("promoting"):
        # The stable is updated in place; the canary keeps serving until it is ready.
        canary_replicas = int(status.get("replicas") or 0)
        return Plan(
            stable=TrackPlan(target, replicas),
            canary=TrackPlan(target, canary_replicas),
            canary_status=status,
        )
    steps = spec["strategy"]["canary"]["steps"]
    weight, routed = weight_at(steps, int(status["step"])), route_name(spec) is not None
    stable_replicas, canary_replicas = split(replicas, weight, routed)
    status = {
        **status,
        "replicas": canary_replicas,
        "weight": weight if routed else effective_weight(stable_replicas, canary_replicas),
    }
    return Plan(
        stable=TrackPlan(stable, stable_replicas),
        canary=TrackPlan(target, canary_replicas),
        canary_status=status,
    )


def _rollback(
    spec: Body, stable: Target, target: Target, reason: str, message: str, now: datetime.datetime
) -> Plan:
    rollback = {"version": target.version, "reason": reason, "message": message, "at": stamp(now)}
    return Plan(
        stable=TrackPlan(stable, int(spec.get("replicas", 1))),
        rollback=rollback,
        notes=(Note(True, "RolledBack", f"{target.name} rolled back: {message}"),),
    )


def _step_done(spec: Body, step: Body, status: Body, progress: Progress, target: Target) -> bool:
    analysis = spec["strategy"]["canary"].get("analysis")
    if analysis is not None and int(status.get("passedIntervals") or 0) < 1:
        return False
    if step.get("setWeight") is not None:
        routed = route_name(spec) is not None
        carried = progress.route_weight == int(step["setWeight"]) if routed else True
        return progress.canary_ready and carried
    pause = step.get("pause") or {}
    if pause.get("duration"):
        started = parse_time(status.get("stepStartedAt")) or progress.now
        elapsed = (progress.now - started).total_seconds()
        return elapsed >= duration_seconds(pause["duration"])
    resumed = progress.annotations.get(RESUME_ANNOTATION)
    return resumed == f"{target.version}/{status['step']}"


def _advance(spec: Body, stable: Target, target: Target, progress: Progress) -> Plan:
    """A rollout of `target` under way: roll back, promote, move to the next step or stay."""
    status = dict(progress.canary_status or {})
    canary = spec["strategy"]["canary"]
    steps, now = canary["steps"], progress.now
    version = str(target.version)
    if progress.annotations.get(ABORT_ANNOTATION) == version:
        return _rollback(spec, stable, target, "Aborted", "aborted with `cairn abort`", now)
    analysis = canary.get("analysis")
    if analysis is not None and not status.get("promoting"):
        limit = int(analysis.get("failureLimit", 2))
        if int(status.get("failedIntervals") or 0) >= limit:
            message = f"{status.get('failedIntervals')} analysis intervals failed: " + (
                failure_message(status.get("analysis") or [])
            )
            return _rollback(spec, stable, target, "AnalysisFailed", message, now)
    if progress.canary_stuck and not status.get("promoting"):
        deadline = int(spec.get("progressDeadlineSeconds", 600))
        message = f"the canary's pods made no progress in {deadline}s: {progress.canary_stuck}"
        return _rollback(spec, stable, target, "ProgressDeadlineExceeded", message, now)
    notes: list[Note] = []
    if not status.get("promoting"):
        if progress.annotations.get(PROMOTE_ANNOTATION) == version:
            status["promoting"] = True
            notes.append(Note(False, "Promoting", f"{target.name} promoted with `cairn promote`"))
        elif not spec.get("paused"):
            step = int(status["step"])
            if step < len(steps) and _step_done(spec, steps[step], status, progress, target):
                step += 1
                status.update(step=step, stepStartedAt=stamp(now), passedIntervals=0)
                if step >= len(steps):
                    status["promoting"] = True
                    notes.append(
                        Note(False, "Promoting", f"{target.name} passed every step; promoting")
                    )
                else:
                    # Counted from 1, as `cairn status` and the Progressing message count.
                    where = f"step {step + 1}/{len(steps)}"
                    notes.append(Note(False, "StepStarted", f"{target.name}: {where}"))
    chosen = _canary_plan(spec, stable, target, status)
    return dataclasses.replace(chosen, rollback=progress.rollback, notes=tuple(notes))


def plan(
    spec: Body,
    target: Target | None,
    stable: Target | None,
    progress: Progress | None = None,
) -> Plan:
    """`target`: the version to serve, None when it may not be served (the reconcile reports
    why). `stable`: the version the stable Deployment runs, None when there is none.
    `progress`: the rollout as status and the Deployments show it."""
    progress = progress or Progress()
    replicas = int(spec.get("replicas", 1))
    current = progress.canary_status or {}
    if target is None:
        # Never serve what was refused; keep serving what already runs; no canary.
        return Plan(
            stable=TrackPlan(stable, replicas) if stable else None, rollback=progress.rollback
        )
    if stable is None:
        # The first version is served at once: there is nothing to compare a canary with.
        return Plan(stable=TrackPlan(target, replicas))
    if stable == target:
        if current.get("promoting") and current.get("version") == target.version:
            if not progress.stable_ready:
                return _canary_plan(spec, stable, target, current)
            note = Note(False, "Promoted", f"{target.name} promoted to stable")
            return Plan(stable=TrackPlan(target, replicas), notes=(note,))
        return Plan(stable=TrackPlan(target, replicas))
    canary = (spec.get("strategy") or {}).get("canary")
    if canary is None:
        if spec.get("paused"):
            return Plan(stable=TrackPlan(stable, replicas), held=target)
        return Plan(stable=TrackPlan(target, replicas))
    rollback = progress.rollback or {}
    if rollback.get("version") == target.version:
        # Rolled back: not tried again until the target changes.
        return Plan(stable=TrackPlan(stable, replicas), rollback=progress.rollback)
    if current.get("version") == target.version:
        return _advance(spec, stable, target, progress)
    if spec.get("paused"):
        return Plan(stable=TrackPlan(stable, replicas), held=target)
    # A new rollout (or the target moved during one: the canary restarts with the new version).
    now = stamp(progress.now)
    started = {
        "version": target.version,
        "step": 0,
        "stepStartedAt": now,
        "startedAt": now,
        "failedIntervals": 0,
        "passedIntervals": 0,
    }
    note = Note(False, "RolloutStarted", f"canary {target.name} beside stable {stable.name}")
    chosen = _canary_plan(spec, stable, target, started)
    return dataclasses.replace(chosen, notes=(note,))
