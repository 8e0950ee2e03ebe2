"""A ModelDeployment's status from what was decided and observed: pure.

Available: ready pods answer requests (as many as desired; with 0 desired, nothing is asked).
Progressing: a version or replica change is under way. Degraded: something needs a person (the
target cannot be served, or pods make no progress); the reason says what.
"""

import dataclasses
from typing import Any

from cairn.api import (
    ModelDeployment,
    ModelDeploymentConditionType,
    ModelDeploymentPhase,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    TrackStatus,
)
from cairn.api.conditions import set_condition
from cairn.api.modeldeployment import CanaryStatus
from cairn.api.modeldeployment import ModelDeploymentReason as Reason
from cairn.controllers import defaults
from cairn.controllers.deployment import manifests
from cairn.controllers.deployment.rollout import Plan, canary_strategy
from cairn.controllers.deployment.target import Refusal, Target

Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Observed:
    """The state of the world one reconcile acts on."""

    target: Target | Refusal
    plan: Plan
    stable: Body | None  # the stable Deployment as the API server returned it
    canary: Body | None = None  # the canary Deployment, while a rollout runs
    route_problem: str | None = None  # why the HTTPRoute cannot carry the canary's weight
    artifact_problem: str | None = None  # why serving pods cannot get their s3:// artifact


@dataclasses.dataclass(frozen=True)
class Rollout:
    """A Deployment's rollout, read from its status."""

    desired: int
    replicas: int
    ready: int
    updated: int
    available: int
    current: bool  # the controller manager has seen the latest spec
    deadline_exceeded: bool
    deadline_message: str

    @property
    def complete(self) -> bool:
        return (
            self.current
            and self.updated == self.desired
            and self.replicas == self.desired
            and self.available == self.desired
        )


def rollout_of(deployment: Body) -> Rollout:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    progressing: Body = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    return Rollout(
        desired=int(spec.get("replicas") or 0),
        replicas=int(status.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        current=int(status.get("observedGeneration") or 0)
        >= int(deployment["metadata"].get("generation") or 0),
        deadline_exceeded=progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded",
        deadline_message=str(progressing.get("message") or ""),
    )


def compute_status(mdep: ModelDeployment, seen: Observed) -> ModelDeploymentStatus:
    """The status from what was decided and observed; `mdep.spec` has the installation's
    analysis defaults filled in."""
    spec, old = mdep.spec, mdep.status or ModelDeploymentStatus()
    generation = mdep.generation
    name, namespace = mdep.name, mdep.namespace
    desired = seen.plan.stable.replicas if seen.plan.stable else spec.replicas
    canary_status = seen.plan.canary_status
    canary_rollout = rollout_of(seen.canary) if seen.canary and canary_status else None
    rollback = seen.plan.rollback
    failed = (
        rollback
        if rollback is not None
        and isinstance(seen.target, Target)
        and rollback.version == seen.target.version
        else None
    )
    refusal = seen.target if isinstance(seen.target, Refusal) else None
    serving = seen.plan.stable.target if seen.plan.stable else None
    running = manifests.served_target(seen.stable)
    rollout = rollout_of(seen.stable) if seen.stable else None

    # Available
    if rollout is None or running is None:
        available, a_reason = False, refusal.reason if refusal else Reason.CREATING
        a_message = refusal.message if refusal else "creating the serving pods"
    elif desired == 0:
        available, a_reason = True, Reason.SCALED_TO_ZERO
        a_message = "spec.replicas is 0: no pod serves requests"
    elif rollout.ready >= desired:
        available, a_reason = True, Reason.MINIMUM_REPLICAS_AVAILABLE
        a_message = f"{rollout.ready}/{desired} pods of {running.name} ready"
    else:
        available, a_reason = False, Reason.MINIMUM_REPLICAS_UNAVAILABLE
        a_message = f"{rollout.ready}/{desired} pods of {running.name} ready"

    # Progressing
    if canary_status is not None:
        progressing, p_reason = True, Reason.CANARY_PROGRESSING
        p_message = _canary_message(spec, canary_status, canary_rollout)
    elif seen.plan.held is not None:
        progressing, p_reason = False, Reason.ROLLOUT_PAUSED
        p_message = f"spec.paused is true: {seen.plan.held.name} waits; `cairn resume` rolls it out"
    elif rollout is not None and rollout.deadline_exceeded:
        progressing, p_reason = False, Reason.PROGRESS_DEADLINE_EXCEEDED
        p_message = rollout.deadline_message
    elif rollout is not None and not rollout.complete:
        progressing, p_reason = True, Reason.ROLLING_OUT
        version = serving.name if serving else "the new version"
        p_message = f"{rollout.updated}/{desired} pods run {version}, {rollout.ready} ready"
    elif rollout is None and serving is not None:
        progressing, p_reason = True, Reason.CREATING
        p_message = f"creating pods of {serving.name}"
    else:
        progressing = False
        p_reason = Reason.COMPLETE if rollout else Reason.NOTHING_TO_SERVE
        p_message = f"serving {running.name}" if running else "no version to serve"

    # Degraded
    still = f"; still serving {running.name}" if running else ""
    if failed is not None:
        degraded, d_reason = True, failed.reason
        d_message = f"{failed.message}; version {failed.version} is not tried again until "
        d_message += "the target changes" + still
    elif refusal is not None:
        degraded, d_reason, d_message = True, refusal.reason, refusal.message + still
    elif seen.artifact_problem is not None:
        degraded, d_reason = True, Reason.ARTIFACT_UNAVAILABLE
        d_message = seen.artifact_problem + still
    elif seen.route_problem is not None:
        degraded, d_reason = True, Reason.TRAFFIC_ROUTING_FAILED
        d_message = seen.route_problem
    elif rollout is not None and rollout.deadline_exceeded:
        degraded, d_reason = True, Reason.PROGRESS_DEADLINE_EXCEEDED
        d_message = (
            f"pods of {serving.name if serving else name} made no progress in "
            f"{spec.progress_deadline_seconds}s: {rollout.deadline_message}"
        )
    else:
        degraded, d_reason, d_message = False, Reason.HEALTHY, "nothing needs attention"

    Type = ModelDeploymentConditionType
    conditions = set_condition(
        old.conditions, Type.AVAILABLE, available, a_reason, a_message, generation
    )
    conditions = set_condition(
        conditions, Type.PROGRESSING, progressing, p_reason, p_message, generation
    )
    conditions = set_condition(conditions, Type.DEGRADED, degraded, d_reason, d_message, generation)

    if degraded:
        phase, message = ModelDeploymentPhase.DEGRADED, d_message
    elif (
        seen.plan.held is not None
        or (spec.paused and progressing)
        or (canary_status is not None and _at_gate(spec, canary_status))
    ):
        phase, message = ModelDeploymentPhase.PAUSED, p_message
    elif progressing or not available:
        phase = ModelDeploymentPhase.PROGRESSING
        message = p_message if progressing else a_message
    else:
        phase, message = ModelDeploymentPhase.AVAILABLE, a_message

    stable = None
    if running is not None and rollout is not None:
        stable = TrackStatus(
            version=running.version, replicas=rollout.replicas, ready_replicas=rollout.ready
        )
    canary = None
    if canary_status is not None:
        canary = canary_status.model_copy(
            update={
                "ready_replicas": canary_rollout.ready if canary_rollout else 0,
                "analysis_settings": defaults.settings_of(spec),
            }
        )
    return ModelDeploymentStatus(
        observed_generation=generation,
        phase=phase,
        conditions=conditions,
        stable=stable,
        canary=canary,
        rollback=rollback,
        replicas=(rollout.replicas if rollout else 0)
        + (canary_rollout.replicas if canary_rollout else 0),
        ready_replicas=(rollout.ready if rollout else 0)
        + (canary_rollout.ready if canary_rollout else 0),
        selector=manifests.selector(name),
        url=manifests.url(name, namespace, spec.port),
        message=message,
    )


def _at_gate(spec: ModelDeploymentSpec, canary: CanaryStatus) -> bool:
    """At a pause {} step: waiting for a person."""
    strategy = canary_strategy(spec)
    steps = strategy.steps if strategy else []
    step = canary.step or 0
    if canary.promoting or step >= len(steps):
        return False
    pause = steps[step].pause
    return pause is not None and pause.duration is None


def _canary_message(
    spec: ModelDeploymentSpec, canary: CanaryStatus, rollout: Rollout | None
) -> str:
    strategy = canary_strategy(spec)
    steps = strategy.steps if strategy else []
    name = f"{spec.model}-v{canary.version}"
    ready = rollout.ready if rollout else 0
    if canary.promoting:
        return f"promoting {name}: updating the stable Deployment"
    step = canary.step or 0
    text = (
        f"canary {name} at step {step + 1}/{len(steps)}, weight {canary.weight or 0}%, "
        f"{ready}/{canary.replicas or 0} pods ready"
    )
    if canary.verdict:
        text += f"; last analysis {canary.verdict}"
    if spec.paused:
        text += "; spec.paused is true: `cairn resume` goes on"
    elif _at_gate(spec, canary):
        text += f"; waits for `cairn resume` ({spec.model} step {step})"
    return text


# The first word of a serving container's termination message when it could not get its
# s3:// artifact (cairn.serving.main).
ARTIFACT_REASONS = ("ArtifactDownloadFailed", "ArtifactDigestMismatch")


def artifact_problem(pods: list[Body], version: str) -> str | None:
    """Why the serving pods of `version` cannot get its artifact, from the last termination
    message of their containers; None when none says so."""
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            if container.get("ready"):
                continue
            for state in (container.get("state"), container.get("lastState")):
                said = str(((state or {}).get("terminated") or {}).get("message") or "").strip()
                if said.startswith(ARTIFACT_REASONS):
                    return f"pods of {version} cannot serve it: {said}"
    return None


def pod_problems(pods: list[Body], logs: dict[str, str] | None = None) -> str:
    """Why pods are not ready, from their status: waiting and termination reasons, for a
    person (for example "iris-canary-abc: CrashLoopBackOff (exit 3: digest mismatch)"); for a
    container that runs but is not ready, the last line it logged (`logs`: pod → log tail)."""
    problems = []
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        reasons = []
        for container in status.get("containerStatuses") or []:
            if container.get("ready"):
                continue
            waiting = (container.get("state") or {}).get("waiting") or {}
            last = (container.get("lastState") or {}).get("terminated") or {}
            if waiting.get("reason"):
                reasons.append(str(waiting["reason"]))
            if last:
                detail = (last.get("message") or "").strip().splitlines()
                exit_text = f"exit {last.get('exitCode')}"
                if detail:
                    exit_text += f": {detail[-1][:200]}"
                reasons.append(f"last {last.get('reason') or 'terminated'} ({exit_text})")
            if not reasons:
                said = ((logs or {}).get(name) or "").strip().splitlines()
                reasons.append(f"not ready: {said[-1][:300]}" if said else "not ready")
        if not reasons and status.get("phase") == "Pending":
            unscheduled: Body = next(
                (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {}
            )
            reasons.append(str(unscheduled.get("message") or "Pending"))
        if reasons:
            problems.append(f"{name}: {', '.join(reasons)}")
    return "; ".join(problems) or "no pod became ready"
