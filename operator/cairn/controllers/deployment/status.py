"""A ModelDeployment's status from what was decided and observed: pure.

Available: ready pods answer requests (as many as desired; with 0 desired, nothing is asked).
Progressing: a version or replica change is under way. Degraded: something needs a person (the
target cannot be served, or pods make no progress); the reason says what.
"""

import dataclasses
from typing import Any

from cairn.controllers.conditions import set_condition
from cairn.controllers.deployment import manifests
from cairn.controllers.deployment.rollout import Plan
from cairn.controllers.deployment.target import Refusal, Target

Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Observed:
    """The state of the world one reconcile acts on."""

    target: Target | Refusal
    plan: Plan
    stable: Body | None  # the stable Deployment as the API server returned it


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


def compute_status(mdep: Body, seen: Observed) -> Body:
    meta, spec = mdep["metadata"], mdep["spec"]
    old = mdep.get("status") or {}
    generation = meta.get("generation")
    name, namespace = meta["name"], meta["namespace"]
    desired = int(spec.get("replicas", 1))
    refusal = seen.target if isinstance(seen.target, Refusal) else None
    serving = seen.plan.stable.target if seen.plan.stable else None
    running = manifests.served_target(seen.stable)
    rollout = rollout_of(seen.stable) if seen.stable else None

    # Available
    if rollout is None or running is None:
        available, a_reason = False, refusal.reason if refusal else "Creating"
        a_message = refusal.message if refusal else "creating the serving pods"
    elif desired == 0:
        available, a_reason = True, "ScaledToZero"
        a_message = "spec.replicas is 0: no pod serves requests"
    elif rollout.ready >= desired:
        available, a_reason = True, "MinimumReplicasAvailable"
        a_message = f"{rollout.ready}/{desired} pods of {running.name} ready"
    else:
        available, a_reason = False, "MinimumReplicasUnavailable"
        a_message = f"{rollout.ready}/{desired} pods of {running.name} ready"

    # Progressing
    if seen.plan.held is not None:
        progressing, p_reason = False, "RolloutPaused"
        p_message = f"spec.paused is true: {seen.plan.held.name} waits; `cairn resume` rolls it out"
    elif rollout is not None and rollout.deadline_exceeded:
        progressing, p_reason = False, "ProgressDeadlineExceeded"
        p_message = rollout.deadline_message
    elif rollout is not None and not rollout.complete:
        progressing, p_reason = True, "RollingOut"
        version = serving.name if serving else "the new version"
        p_message = f"{rollout.updated}/{desired} pods run {version}, {rollout.ready} ready"
    elif rollout is None and serving is not None:
        progressing, p_reason, p_message = True, "Creating", f"creating pods of {serving.name}"
    else:
        progressing, p_reason = False, "Complete" if rollout else "NothingToServe"
        p_message = f"serving {running.name}" if running else "no version to serve"

    # Degraded
    if refusal is not None:
        degraded, d_reason, d_message = True, refusal.reason, refusal.message
        if running is not None:
            d_message = f"{refusal.message}; still serving {running.name}"
    elif rollout is not None and rollout.deadline_exceeded:
        degraded, d_reason = True, "ProgressDeadlineExceeded"
        d_message = (
            f"pods of {serving.name if serving else name} made no progress in "
            f"{spec.get('progressDeadlineSeconds', 600)}s: {rollout.deadline_message}"
        )
    else:
        degraded, d_reason, d_message = False, "Healthy", "nothing needs attention"

    conditions = set_condition(
        old.get("conditions"), "Available", available, a_reason, a_message, generation
    )
    conditions = set_condition(
        conditions, "Progressing", progressing, p_reason, p_message, generation
    )
    conditions = set_condition(conditions, "Degraded", degraded, d_reason, d_message, generation)

    if degraded:
        phase, message = "Degraded", d_message
    elif seen.plan.held is not None or (spec.get("paused") and progressing):
        phase, message = "Paused", p_message
    elif progressing or not available:
        phase, message = "Progressing", p_message if progressing else a_message
    else:
        phase, message = "Available", a_message

    port = int(spec.get("port", 8080))
    status: Body = {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": conditions,
        "replicas": rollout.replicas if rollout else 0,
        "readyReplicas": rollout.ready if rollout else 0,
        "selector": manifests.selector(name),
        "url": manifests.url(name, namespace, port),
        "message": message,
    }
    if running is not None and rollout is not None:
        status["stable"] = {
            "version": running.version,
            "replicas": rollout.replicas,
            "readyReplicas": rollout.ready,
        }
    return status
