"""What Deployments a ModelDeployment should have: pure, from its spec, the version it should
serve and the version each track runs.

This is where the rollout state machine lives. Today a new target version replaces the stable
track's version in place (a rolling update that never drops below the desired ready pods);
canary steps and analysis extend `plan` with a canary track and status.canary.
"""

import dataclasses
from typing import Any

from cairn.controllers.deployment.target import Target

Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TrackPlan:
    """A track's Deployment as it should be: the version it runs and its replicas."""

    target: Target
    replicas: int


@dataclasses.dataclass(frozen=True)
class Plan:
    stable: TrackPlan | None  # None: nothing can be served yet, no Deployment
    canary: TrackPlan | None = None
    # A new target waits (spec.paused): the tracks keep the versions they run.
    held: Target | None = None


def plan(spec: Body, target: Target | None, stable: Target | None) -> Plan:
    """`target`: the version to serve, None when it may not be served (the reconcile reports
    why). `stable`: the version the stable Deployment runs, None when there is none."""
    replicas = int(spec.get("replicas", 1))
    if target is None:
        # Never serve what was refused; keep serving what already runs.
        return Plan(stable=TrackPlan(stable, replicas) if stable else None)
    if stable is None or stable == target:
        return Plan(stable=TrackPlan(target, replicas))
    if spec.get("paused"):
        return Plan(stable=TrackPlan(stable, replicas), held=target)
    return Plan(stable=TrackPlan(target, replicas))
