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

from cairn.analysis.judge import duration_seconds, failure_message
from cairn.api.labels import ABORT_ANNOTATION, PROMOTE_ANNOTATION, RESUME_ANNOTATION
from cairn.api.modeldeployment import (
    DEFAULT_FAILURE_LIMIT,
    CanaryStatus,
    CanaryStep,
    CanaryStrategy,
    ModelDeploymentSpec,
    RollbackStatus,
)
from cairn.api.modeldeployment import ModelDeploymentReason as Reason
from cairn.controllers.deployment.routing import route_name
from cairn.controllers.deployment.target import Target


@dataclasses.dataclass(frozen=True)
class TrackPlan:
    """A track's Deployment as it should be: the version it runs and its replicas."""

    target: Target
    replicas: int


@dataclasses.dataclass(frozen=True)
class Note:
    """An Event the reconcile posts for a transition the plan decided."""

    warning: bool
    reason: Reason
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    stable: TrackPlan | None  # None: nothing can be served yet, no Deployment
    canary: TrackPlan | None = None  # None: no canary Deployment (one that exists is removed)
    # A new target waits (spec.paused): the tracks keep the versions they run.
    held: Target | None = None
    # status.canary and status.rollback as they should be written (None clears them).
    canary_status: CanaryStatus | None = None
    rollback: RollbackStatus | None = None
    notes: tuple[Note, ...] = ()


@dataclasses.dataclass(frozen=True)
class Progress:
    """What the reconcile observed of a rollout, besides the spec and the targets."""

    canary_status: CanaryStatus | None = None  # status.canary, with this reconcile's analysis
    rollback: RollbackStatus | None = None  # status.rollback
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


def weight_at(steps: list[CanaryStep], step: int) -> int:
    """The weight set by the last setWeight at or before `step` (0 before any)."""
    weight = 0
    for entry in steps[: step + 1]:
        if entry.set_weight is not None:
            weight = entry.set_weight
    return weight


def canary_strategy(spec: ModelDeploymentSpec) -> CanaryStrategy | None:
    return spec.strategy.canary if spec.strategy else None


def _canary_plan(
    spec: ModelDeploymentSpec, stable: Target, target: Target, status: CanaryStatus
) -> Plan:
    """The tracks for a rollout at status.canary's step."""
    if status.promoting:
        # The stable is updated in place; the canary keeps serving until it is ready.
        return Plan(
            stable=TrackPlan(target, spec.replicas),
            canary=TrackPlan(target, status.replicas or 0),
            canary_status=status,
        )
    strategy = canary_strategy(spec)
    steps = strategy.steps if strategy else []
    weight, routed = weight_at(steps, status.step or 0), route_name(spec) is not None
    stable_replicas, canary_replicas = split(spec.replicas, weight, routed)
    status = status.model_copy(
        update={
            "replicas": canary_replicas,
            "weight": weight if routed else effective_weight(stable_replicas, canary_replicas),
        }
    )
    return Plan(
        stable=TrackPlan(stable, stable_replicas),
        canary=TrackPlan(target, canary_replicas),
        canary_status=status,
    )


def _rollback(
    spec: ModelDeploymentSpec,
    stable: Target,
    target: Target,
    reason: Reason,
    message: str,
    now: datetime.datetime,
) -> Plan:
    rollback = RollbackStatus(version=target.version, reason=reason, message=message, at=now)
    return Plan(
        stable=TrackPlan(stable, spec.replicas),
        rollback=rollback,
        notes=(Note(True, Reason.ROLLED_BACK, f"{target.name} rolled back: {message}"),),
    )


def _step_done(
    spec: ModelDeploymentSpec,
    step: CanaryStep,
    status: CanaryStatus,
    progress: Progress,
    target: Target,
) -> bool:
    strategy = canary_strategy(spec)
    if strategy and strategy.analysis is not None and (status.passed_intervals or 0) < 1:
        return False
    if step.set_weight is not None:
        routed = route_name(spec) is not None
        carried = progress.route_weight == step.set_weight if routed else True
        return progress.canary_ready and carried
    pause = step.pause
    if pause is not None and pause.duration:
        started = status.step_started_at or progress.now
        elapsed = (progress.now - started).total_seconds()
        return elapsed >= duration_seconds(pause.duration)
    resumed = progress.annotations.get(RESUME_ANNOTATION)
    return resumed == f"{target.version}/{status.step or 0}"


def _advance(spec: ModelDeploymentSpec, stable: Target, target: Target, progress: Progress) -> Plan:
    """A rollout of `target` under way: roll back, promote, move to the next step or stay."""
    status = progress.canary_status or CanaryStatus()
    strategy = canary_strategy(spec)
    steps, now = (strategy.steps if strategy else []), progress.now
    version = str(target.version)
    if progress.annotations.get(ABORT_ANNOTATION) == version:
        return _rollback(spec, stable, target, Reason.ABORTED, "aborted with `cairn abort`", now)
    analysis = strategy.analysis if strategy else None
    if analysis is not None and not status.promoting:
        limit = analysis.failure_limit or DEFAULT_FAILURE_LIMIT
        if status.certain_failure:
            message = "an analysis interval failed beyond doubt (p < 0.001): " + (
                failure_message(status.analysis or [])
            )
            return _rollback(spec, stable, target, Reason.ANALYSIS_FAILED, message, now)
        if (status.failed_intervals or 0) >= limit:
            message = f"{status.failed_intervals} analysis intervals failed: " + (
                failure_message(status.analysis or [])
            )
            return _rollback(spec, stable, target, Reason.ANALYSIS_FAILED, message, now)
    if progress.canary_stuck and not status.promoting:
        deadline = spec.progress_deadline_seconds
        message = f"the canary's pods made no progress in {deadline}s: {progress.canary_stuck}"
        return _rollback(spec, stable, target, Reason.PROGRESS_DEADLINE_EXCEEDED, message, now)
    notes: list[Note] = []
    if not status.promoting:
        if progress.annotations.get(PROMOTE_ANNOTATION) == version:
            status = status.model_copy(update={"promoting": True})
            notes.append(
                Note(False, Reason.PROMOTING, f"{target.name} promoted with `cairn promote`")
            )
        elif not spec.paused:
            step = status.step or 0
            if step < len(steps) and _step_done(spec, steps[step], status, progress, target):
                step += 1
                status = status.model_copy(
                    update={"step": step, "step_started_at": now, "passed_intervals": 0}
                )
                if step >= len(steps):
                    status = status.model_copy(update={"promoting": True})
                    notes.append(
                        Note(
                            False,
                            Reason.PROMOTING,
                            f"{target.name} passed every step; promoting",
                        )
                    )
                else:
                    # Counted from 1, as `cairn status` and the Progressing message count.
                    where = f"step {step + 1}/{len(steps)}"
                    notes.append(Note(False, Reason.STEP_STARTED, f"{target.name}: {where}"))
    chosen = _canary_plan(spec, stable, target, status)
    return dataclasses.replace(chosen, rollback=progress.rollback, notes=tuple(notes))


def plan(
    spec: ModelDeploymentSpec,
    target: Target | None,
    stable: Target | None,
    progress: Progress | None = None,
) -> Plan:
    """`target`: the version to serve, None when it may not be served (the reconcile reports
    why). `stable`: the version the stable Deployment runs, None when there is none.
    `progress`: the rollout as status and the Deployments show it."""
    progress = progress or Progress()
    replicas = spec.replicas
    current = progress.canary_status or CanaryStatus()
    if target is None:
        # Never serve what was refused; keep serving what already runs; no canary.
        return Plan(
            stable=TrackPlan(stable, replicas) if stable else None, rollback=progress.rollback
        )
    if stable is None:
        # The first version is served at once: there is nothing to compare a canary with.
        return Plan(stable=TrackPlan(target, replicas))
    if stable == target:
        if current.promoting and current.version == target.version:
            if not progress.stable_ready:
                return _canary_plan(spec, stable, target, current)
            note = Note(False, Reason.PROMOTED, f"{target.name} promoted to stable")
            return Plan(stable=TrackPlan(target, replicas), notes=(note,))
        return Plan(stable=TrackPlan(target, replicas))
    if canary_strategy(spec) is None:
        if spec.paused:
            return Plan(stable=TrackPlan(stable, replicas), held=target)
        return Plan(stable=TrackPlan(target, replicas))
    if progress.rollback is not None and progress.rollback.version == target.version:
        # Rolled back: not tried again until the target changes.
        return Plan(stable=TrackPlan(stable, replicas), rollback=progress.rollback)
    if current.version == target.version:
        return _advance(spec, stable, target, progress)
    if spec.paused:
        return Plan(stable=TrackPlan(stable, replicas), held=target)
    # A new rollout (or the target moved during one: the canary restarts with the new version).
    started = CanaryStatus(
        version=target.version,
        step=0,
        step_started_at=progress.now,
        started_at=progress.now,
        failed_intervals=0,
        passed_intervals=0,
    )
    note = Note(False, Reason.ROLLOUT_STARTED, f"canary {target.name} beside stable {stable.name}")
    chosen = _canary_plan(spec, stable, target, started)
    return dataclasses.replace(chosen, notes=(note,))
