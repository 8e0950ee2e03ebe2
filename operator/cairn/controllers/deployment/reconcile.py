"""One level-based reconcile of a ModelDeployment: every handler (create, update, resume, resync,
and events of its Deployments, its Model and the Model's versions) calls it. It resolves the
version to serve, applies the Deployments and the Service that version needs, and writes status.
"""

import dataclasses
import datetime
import threading
from typing import Any

from cairn.analysis import judge
from cairn.api import Condition, Model, ModelDeployment, ModelDeploymentStatus, ModelVersion
from cairn.api.conditions import find
from cairn.api.labels import VERSION_LABEL
from cairn.api.modeldeployment import CANARY, STABLE, TRACKS, CanaryStatus
from cairn.api.modeldeployment import ModelDeploymentReason as Reason
from cairn.controllers import defaults
from cairn.controllers.deployment import manifests, monitor, readings, routing
from cairn.controllers.deployment.rollout import Note, Plan, Progress, canary_strategy, plan
from cairn.controllers.deployment.status import (
    Observed,
    artifact_problem,
    compute_status,
    pod_problems,
    rollout_of,
)
from cairn.controllers.deployment.target import Refusal, Target, resolve, wanted_version
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import cached, parse
from cairn.kube import cache, events, objects, ownership, routes, status, workloads
from cairn.observability import metrics
from cairn.observability.reconciles import reconciling
from cairn.registry.registration import version_name

Body = dict[str, Any]

# The target each ModelDeployment's last reconcile worked out: a change of its Model or of a
# version reconciles a ModelDeployment only when it changes what that gives (see needs_reconcile).
_targets: dict[tuple[str, str], Target | Refusal] = {}
_targets_lock = threading.Lock()


def find_target(mdep: ModelDeployment) -> Target | Refusal:
    """What the ModelDeployment should serve, from its Model and versions as last watched."""
    spec = mdep.spec
    model = cached(Model, cache.get(Model, mdep.namespace, spec.model))
    number = wanted_version(spec, model)
    if isinstance(number, Refusal):
        return number
    name = version_name(spec.model, number)
    version = cached(ModelVersion, cache.get(ModelVersion, mdep.namespace, name))
    found = resolve(spec, number, version)
    if isinstance(found, Target) and model is not None and model.spec.sensitive_features:
        return dataclasses.replace(found, sensitive_features=tuple(model.spec.sensitive_features))
    return found


def needs_reconcile(body: Body) -> bool:
    """Whether a change of the Model or its versions changes what this ModelDeployment serves:
    a registration's writes, a version judged again or an unrelated alias do not."""
    mdep = cached(ModelDeployment, body)
    if mdep is None:
        return False
    with _targets_lock:
        last = _targets.get((mdep.namespace, mdep.name))
    return last != find_target(mdep)


def _remember(mdep: ModelDeployment, target: Target | Refusal) -> None:
    with _targets_lock:
        _targets[(mdep.namespace, mdep.name)] = target


def forget(namespace: str, name: str) -> None:
    with _targets_lock:
        _targets.pop((namespace, name), None)


def _apply(desired: Body, observed: Body | None, owner: ModelDeployment, apply: Any) -> Body:
    if observed is not None and not manifests.needs_apply(desired, observed):
        return observed
    ownership.adopt(desired, owner)  # deleting the ModelDeployment deletes it
    applied: Body = apply(owner.namespace, desired)
    return applied


def apply_plan(
    mdep: ModelDeployment, chosen: Plan, stable: Body | None, canary: Body | None = None
) -> tuple[Body | None, Body | None]:
    """Make the Deployments and the Service what `chosen` says; returns the stable and the
    canary Deployments."""
    namespace, name = mdep.namespace, mdep.name
    if chosen.canary is not None:
        desired = manifests.build_deployment(
            mdep, CANARY, chosen.canary.target, chosen.canary.replicas
        )
        canary = _apply(desired, canary, mdep, workloads.apply_deployment)
    elif canary is not None:
        workloads.delete_deployment(namespace, manifests.deployment_name(name, CANARY))
        canary = None
    if chosen.stable is not None:
        desired = manifests.build_deployment(
            mdep, STABLE, chosen.stable.target, chosen.stable.replicas
        )
        stable = _apply(desired, stable, mdep, workloads.apply_deployment)
    if stable is not None or chosen.stable is not None:
        routed = routing.route_name(mdep.spec) is not None
        services = [manifests.build_service(mdep, routed=routed)]
        if routed:
            services += [manifests.build_service(mdep, track) for track in TRACKS]
        for service in services:
            observed = workloads.get_service(namespace, service["metadata"]["name"])
            _apply(service, observed, mdep, workloads.apply_service)
    return stable, canary


def route_weight(mdep: ModelDeployment) -> tuple[int | None, str | None]:
    """The canary's weight on the ModelDeployment's HTTPRoute (None without one), and what is
    wrong with the route, if anything."""
    name = routing.route_name(mdep.spec)
    if name is None:
        return None, None
    route = routes.get_httproute(mdep.namespace, name)
    if route is None:
        return None, (
            f"HTTPRoute {name} (spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute) was "
            "not found in the namespace; create it, or remove trafficRouting to split by replicas"
        )
    weight = routing.canary_weight(route, mdep.name)
    return (weight or 0), None


def set_route_weight(mdep: ModelDeployment, weight: int) -> str | None:
    """Give the canary `weight` % on the HTTPRoute; returns what went wrong, if anything."""
    name = routing.route_name(mdep.spec)
    route = routes.get_httproute(mdep.namespace, name) if name else None
    if name is None or route is None:
        return None
    try:
        rules = routing.with_weight(route, mdep.name, mdep.spec.port, weight)
    except routing.RouteError as error:
        return str(error)
    if rules != (route.get("spec") or {}).get("rules"):
        routes.set_rules(mdep.namespace, name, rules, route["metadata"]["resourceVersion"])
    return None


def artifact_problems(
    mdep: ModelDeployment, stable: Body | None, canary: Body | None
) -> str | None:
    """Why a track's pods cannot get their s3:// artifact, read from the pods only while a
    track that downloads one is not ready."""
    for track, deployment in ((STABLE, stable), (CANARY, canary)):
        served = manifests.served_target(deployment)
        if deployment is None or served is None or not served.artifact_uri.startswith("s3://"):
            continue
        rollout = rollout_of(deployment)
        if rollout.ready >= rollout.desired:
            continue
        pods = workloads.list_pods(mdep.namespace, manifests.pod_labels(mdep.name, track))
        pods = [
            pod
            for pod in pods
            if (pod["metadata"].get("labels") or {}).get(VERSION_LABEL) == str(served.version)
        ]
        found = artifact_problem(pods, f"{served.name} ({track})")
        if found is not None:
            return found
    return None


def stuck_canary(mdep: ModelDeployment) -> str:
    """Why the canary's pods are not ready, from the pods and their last log lines."""
    pods = workloads.list_pods(mdep.namespace, manifests.pod_labels(mdep.name, CANARY))
    logs = {
        pod["metadata"]["name"]: workloads.log_tail(
            mdep.namespace, pod["metadata"]["name"], manifests.CONTAINER, 5
        )
        for pod in pods[:3]
    }
    return pod_problems(pods, logs)


def observe_progress(
    mdep: ModelDeployment,
    target: Target | None,
    stable: Body | None,
    canary: Body | None,
    weight_on_route: int | None = None,
) -> Progress:
    """The rollout as status and the Deployments show it, with an analysis interval judged when
    one is due."""
    spec, old = mdep.spec, mdep.status or ModelDeploymentStatus()
    now = datetime.datetime.now(datetime.UTC)
    current: CanaryStatus | None = old.canary
    strategy = canary_strategy(spec)
    analysis = strategy.analysis if strategy else None
    canary_rollout = rollout_of(canary) if canary else None
    canary_ready = bool(
        canary_rollout
        and canary_rollout.complete
        and manifests.served_target(canary) == target
        and canary_rollout.ready >= canary_rollout.desired
    )
    stuck = None
    if current and target and current.version == target.version and canary is not None:
        if (
            analysis is not None
            and canary_rollout is not None
            and canary_rollout.ready > 0
            and not current.promoting
            and judge.due(current, analysis, now)
        ):
            current = readings.analyse(mdep, current, analysis, now)
        started = current.step_started_at or now
        late = (now - started).total_seconds() > spec.progress_deadline_seconds
        if (
            canary_rollout is not None
            and not canary_ready
            and (canary_rollout.deadline_exceeded or late)
        ):
            stuck = stuck_canary(mdep)
    return Progress(
        canary_status=current,
        rollback=old.rollback,
        annotations=mdep.annotations,
        canary_ready=canary_ready,
        stable_ready=bool(stable and rollout_of(stable).complete),
        canary_stuck=stuck,
        route_weight=weight_on_route,
        now=now,
    )


def reconcile(namespace: str, name: str) -> None:
    with (
        exclusive(ModelDeployment.plural(), namespace, name),
        reconciling("ModelDeployment", namespace, name),
    ):
        body = objects.get(ModelDeployment, namespace, name)  # the latest, not a snapshot
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Garbage collection removes its children; recreating them would fight it.
            forget(namespace, name)
            monitor.forget(namespace, name)
            return
        found = parse(ModelDeployment, body)
        if found is not None:
            _reconcile(found)


def _reconcile(found: ModelDeployment) -> None:
    # The analysis as the installation's defaults complete it (never written back).
    mdep = found.model_copy(update={"spec": defaults.with_analysis_defaults(found.spec)})
    namespace, name = mdep.namespace, mdep.name
    target = find_target(mdep)
    servable = target if isinstance(target, Target) else None
    before = workloads.get_deployment(namespace, manifests.deployment_name(name, STABLE))
    canary = workloads.get_deployment(namespace, manifests.deployment_name(name, CANARY))
    running = manifests.served_target(before)
    weight_now, route_problem = route_weight(mdep)
    progress = observe_progress(mdep, servable, before, canary, weight_now)
    chosen = plan(mdep.spec, servable, running, progress)
    # The route moves traffic away from the canary before its pods go, and towards it
    # only once they exist.
    wanted = (chosen.canary_status.weight or 0) if chosen.canary and chosen.canary_status else 0
    if weight_now is not None and wanted < weight_now:
        route_problem = set_route_weight(mdep, wanted)
    stable, canary = apply_plan(mdep, chosen, before, canary)
    if weight_now is not None and wanted > weight_now:
        route_problem = set_route_weight(mdep, wanted)
    if chosen.canary is None:
        route_problem = None  # the route matters only while a canary runs
    seen = Observed(
        target=target,
        plan=chosen,
        stable=stable,
        canary=canary,
        route_problem=route_problem,
        artifact_problem=artifact_problems(mdep, stable, canary),
    )
    new = compute_status(mdep, seen)
    old = mdep.status or ModelDeploymentStatus()
    watched = monitor.observe(mdep, new.stable.version if new.stable else None, _now())
    new = new.model_copy(
        update={
            "monitoring": watched,
            "conditions": monitor.conditions(mdep, watched, new.conditions),
        }
    )
    status.write(mdep, mdep.status, new)
    _remember(mdep, target)
    for note in chosen.notes:
        (events.warn if note.warning else events.info)(
            mdep, reason=note.reason, message=note.message
        )
        count_outcome(note, old, chosen)
    post_events(mdep, old, new, running, manifests.served_target(stable))
    monitor.announce(mdep, old.conditions, new.conditions)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def count_outcome(note: Note, old: ModelDeploymentStatus, chosen: Plan) -> None:
    """The operator's rollout metrics: a rollout ends with Promoted or RolledBack."""
    if note.reason not in (Reason.PROMOTED, Reason.ROLLED_BACK):
        return
    if note.reason == Reason.PROMOTED:
        outcome: metrics.Outcome = "promoted"
    else:
        aborted = chosen.rollback is not None and chosen.rollback.reason == Reason.ABORTED
        outcome = "aborted" if aborted else "rolled_back"
    started = old.canary.started_at if old.canary else None
    now = datetime.datetime.now(datetime.UTC)
    metrics.rollout_finished(outcome, (now - started).total_seconds() if started else None)


def rolling_out(body: Body) -> bool:
    """A canary rollout is under way: the resync visits it often."""
    return bool((body.get("status") or {}).get("canary"))


def post_events(
    mdep: ModelDeployment,
    old: ModelDeploymentStatus,
    new: ModelDeploymentStatus,
    before: Target | None,
    after: Target | None,
) -> None:
    """An Event for every transition a person cares about."""
    if after is not None and before is None:
        events.info(
            mdep, reason=Reason.SERVING, message=f"created the stable Deployment for {after.name}"
        )
    elif after is not None and before is not None and after.version != before.version:
        events.info(
            mdep, reason=Reason.VERSION_CHANGED, message=f"stable {before.name} → {after.name}"
        )
    was = _condition(old, "Degraded")
    now = _condition(new, "Degraded")
    if (
        now is not None
        and now.status == "True"
        and (was is None or was.status != "True" or was.reason != now.reason)
    ):
        events.warn(mdep, reason=now.reason, message=now.message)
    was, now = _condition(old, "Available"), _condition(new, "Available")
    if now is not None and now.status == "True" and (was is None or was.status != "True"):
        events.info(mdep, reason=Reason.AVAILABLE, message=now.message)
    if new.phase == "Paused" and old.phase != "Paused":
        events.info(mdep, reason=Reason.ROLLOUT_PAUSED, message=new.message or "")


def _condition(current: ModelDeploymentStatus, type_: str) -> Condition | None:
    return find(current.conditions, type_)
