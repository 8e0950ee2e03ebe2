"""One level-based reconcile of a ModelDeployment: every handler (create, update, resume, timer,
and events of its Deployments, its Model and the Model's versions) calls it. It resolves the
version to serve, applies the Deployments and the Service that version needs, and writes status.
"""

import datetime
from typing import Any

from cairn.analysis import judge
from cairn.controllers import defaults
from cairn.controllers.deployment import manifests, readings, routing, usage
from cairn.controllers.deployment.rollout import Note, Plan, Progress, plan
from cairn.controllers.deployment.status import Observed, compute_status, pod_problems, rollout_of
from cairn.controllers.deployment.target import (
    Refusal,
    Target,
    resolve,
    version_name,
    wanted_version,
)
from cairn.controllers.exclusive import exclusive
from cairn.kube import events, objects, ownership, routes, workloads
from cairn.observability import metrics

Body = dict[str, Any]
PLURAL = "modeldeployments"
MODELS, VERSIONS = "models", "modelversions"


def following(namespace: str, model: str) -> list[Body]:
    """The ModelDeployments that serve `model`."""
    return [m for m in objects.list_(PLURAL, namespace) if m["spec"].get("model") == model]


def reconcile_named(namespace: str, name: str) -> None:
    mdep = objects.get(PLURAL, namespace, name)
    if mdep is not None:
        reconcile(mdep)


def find_target(mdep: Body) -> Target | Refusal:
    namespace, spec = mdep["metadata"]["namespace"], mdep["spec"]
    number = wanted_version(spec, objects.get(MODELS, namespace, spec["model"]))
    if isinstance(number, Refusal):
        return number
    version = objects.get(VERSIONS, namespace, version_name(spec["model"], number))
    return resolve(spec, number, version)


def _apply(desired: Body, observed: Body | None, owner: Body, apply: Any) -> Body:
    if not manifests.needs_apply(desired, observed):
        assert observed is not None
        return observed
    ownership.adopt(desired, owner)  # deleting the ModelDeployment deletes it
    applied: Body = apply(owner["metadata"]["namespace"], desired)
    return applied


def apply_plan(
    mdep: Body, chosen: Plan, stable: Body | None, canary: Body | None = None
) -> tuple[Body | None, Body | None]:
    """Make the Deployments and the Service what `chosen` says; returns the stable and the
    canary Deployments."""
    namespace, name = mdep["metadata"]["namespace"], mdep["metadata"]["name"]
    if chosen.canary is not None:
        desired = manifests.build_deployment(
            mdep, manifests.CANARY, chosen.canary.target, chosen.canary.replicas
        )
        canary = _apply(desired, canary, mdep, workloads.apply_deployment)
    elif canary is not None:
        workloads.delete_deployment(namespace, manifests.deployment_name(name, manifests.CANARY))
        canary = None
    if chosen.stable is not None:
        desired = manifests.build_deployment(
            mdep, manifests.STABLE, chosen.stable.target, chosen.stable.replicas
        )
        stable = _apply(desired, stable, mdep, workloads.apply_deployment)
    if stable is not None or chosen.stable is not None:
        routed = routing.route_name(mdep["spec"]) is not None
        services = [manifests.build_service(mdep, routed=routed)]
        if routed:
            services += [manifests.build_service(mdep, t) for t in manifests.TRACKS]
        for service in services:
            observed = workloads.get_service(namespace, service["metadata"]["name"])
            _apply(service, observed, mdep, workloads.apply_service)
    return stable, canary


def route_weight(mdep: Body) -> tuple[int | None, str | None]:
    """The canary's weight on the ModelDeployment's HTTPRoute (None without one), and what is
    wrong with the route, if anything."""
    namespace, spec = mdep["metadata"]["namespace"], mdep["spec"]
    name = routing.route_name(spec)
    if name is None:
        return None, None
    route = routes.get_httproute(namespace, name)
    if route is None:
        return None, (
            f"HTTPRoute {name} (spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute) was "
            "not found in the namespace; create it, or remove trafficRouting to split by replicas"
        )
    weight = routing.canary_weight(route, mdep["metadata"]["name"])
    return (weight or 0), None


def set_route_weight(mdep: Body, weight: int) -> str | None:
    """Give the canary `weight` % on the HTTPRoute; returns what went wrong, if anything."""
    namespace, spec = mdep["metadata"]["namespace"], mdep["spec"]
    name = routing.route_name(spec)
    route = routes.get_httproute(namespace, name) if name else None
    if name is None or route is None:
        return None
    port = int(spec.get("port", 8080))
    try:
        rules = routing.with_weight(route, mdep["metadata"]["name"], port, weight)
    except routing.RouteError as error:
        return str(error)
    if rules != (route.get("spec") or {}).get("rules"):
        routes.set_rules(namespace, name, rules, route["metadata"]["resourceVersion"])
    return None


def observe_progress(
    mdep: Body,
    target: Target | None,
    stable: Body | None,
    canary: Body | None,
    route_weight: int | None = None,
) -> Progress:
    """The rollout as status and the Deployments show it, with an analysis interval judged when
    one is due."""
    meta, spec = mdep["metadata"], mdep["spec"]
    old = mdep.get("status") or {}
    now = datetime.datetime.now(datetime.UTC)
    current: Body | None = old.get("canary")
    analysis = ((spec.get("strategy") or {}).get("canary") or {}).get("analysis")
    canary_rollout = rollout_of(canary) if canary else None
    canary_ready = bool(
        canary_rollout
        and canary_rollout.complete
        and manifests.served_target(canary) == target
        and canary_rollout.ready >= canary_rollout.desired
    )
    stuck = None
    if current and target and current.get("version") == target.version and canary is not None:
        if (
            analysis is not None
            and canary_rollout is not None
            and canary_rollout.ready > 0
            and not current.get("promoting")
            and judge.due(current, analysis, now)
        ):
            current = readings.analyse(mdep, current, analysis, now)
        started = judge.parse_time(current.get("stepStartedAt")) or now
        deadline = int(spec.get("progressDeadlineSeconds", 600))
        late = (now - started).total_seconds() > deadline
        if (
            canary_rollout is not None
            and not canary_ready
            and (canary_rollout.deadline_exceeded or late)
        ):
            pods = workloads.list_pods(
                meta["namespace"],
                f"{manifests.selector(meta['name'])},{manifests.TRACK_LABEL}={manifests.CANARY}",
            )
            logs = {
                pod["metadata"]["name"]: workloads.log_tail(
                    meta["namespace"], pod["metadata"]["name"], manifests.CONTAINER, 5
                )
                for pod in pods[:3]
            }
            stuck = pod_problems(pods, logs)
    return Progress(
        canary_status=current,
        rollback=old.get("rollback"),
        annotations=dict(meta.get("annotations") or {}),
        canary_ready=canary_ready,
        stable_ready=bool(stable and rollout_of(stable).complete),
        canary_stuck=stuck,
        route_weight=route_weight,
        now=now,
    )


def _status_patch(old: Body, new: Body) -> Body:
    """The merge patch from `old` to `new` status: changed keys, and nulls for the keys of
    status.canary and status.rollback that are gone (a merge patch keeps what it does not name)."""
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    for key in ("canary", "rollback"):
        before, after = old.get(key), changed.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changed[key] = {**{k: None for k in before if k not in after}, **after}
    return changed


def reconcile(mdep: Body) -> None:
    meta = mdep["metadata"]
    if meta.get("deletionTimestamp"):
        return  # garbage collection removes its children; recreating them would fight it
    namespace, name = meta["namespace"], meta["name"]
    with exclusive(PLURAL, namespace, name):
        current = objects.get(PLURAL, namespace, name)  # the latest, not a handler's snapshot
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        # The analysis as the installation's defaults complete it (never written back).
        mdep = {**current, "spec": defaults.with_analysis_defaults(current["spec"])}
        target = find_target(mdep)
        servable = target if isinstance(target, Target) else None
        before = workloads.get_deployment(namespace, manifests.deployment_name(name, "stable"))
        canary = workloads.get_deployment(namespace, manifests.deployment_name(name, "canary"))
        running = manifests.served_target(before)
        weight_now, route_problem = route_weight(mdep)
        progress = observe_progress(mdep, servable, before, canary, weight_now)
        chosen = plan(mdep["spec"], servable, running, progress)
        # The route moves traffic away from the canary before its pods go, and towards it
        # only once they exist.
        wanted = int((chosen.canary_status or {}).get("weight") or 0) if chosen.canary else 0
        if weight_now is not None and wanted < weight_now:
            route_problem = set_route_weight(mdep, wanted)
        stable, canary = apply_plan(mdep, chosen, before, canary)
        if weight_now is not None and wanted > weight_now:
            route_problem = set_route_weight(mdep, wanted)
        if chosen.canary is None:
            route_problem = None  # the route matters only while a canary runs
        seen = Observed(
            target=target, plan=chosen, stable=stable, canary=canary, route_problem=route_problem
        )
        status = compute_status(mdep, seen)
        old = mdep.get("status") or {}
        usage.record(mdep, old, status)  # before the status: a retry then sees the same change
        changed = _status_patch(old, status)
        if changed:
            objects.patch_status(PLURAL, namespace, name, changed)
        for note in chosen.notes:
            (events.warn if note.warning else events.info)(
                mdep, reason=note.reason, message=note.message
            )
            count_outcome(note, old, chosen)
        post_events(mdep, old, status, running, manifests.served_target(stable))


def count_outcome(note: Note, old: Body, chosen: Plan) -> None:
    """The operator's rollout metrics: a rollout ends with Promoted or RolledBack."""
    if note.reason not in ("Promoted", "RolledBack"):
        return
    if note.reason == "Promoted":
        outcome: metrics.Outcome = "promoted"
    else:
        aborted = (chosen.rollback or {}).get("reason") == "Aborted"
        outcome = "aborted" if aborted else "rolled_back"
    started = judge.parse_time((old.get("canary") or {}).get("startedAt"))
    now = datetime.datetime.now(datetime.UTC)
    metrics.rollout_finished(outcome, (now - started).total_seconds() if started else None)


def rolling_out(mdep: Body) -> bool:
    """A canary rollout is under way: the rollout timer moves it on."""
    return bool((mdep.get("status") or {}).get("canary"))


def _condition(status: Body, type_: str) -> Body:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def post_events(
    mdep: Body, old: Body, new: Body, before: Target | None, after: Target | None
) -> None:
    """An Event for every transition a person cares about."""
    if after is not None and before is None:
        events.info(
            mdep, reason="Serving", message=f"created the stable Deployment for {after.name}"
        )
    elif after is not None and before is not None and after.version != before.version:
        events.info(mdep, reason="VersionChanged", message=f"stable {before.name} → {after.name}")
    was, now = _condition(old, "Degraded"), _condition(new, "Degraded")
    if now.get("status") == "True" and (
        was.get("status") != "True" or was.get("reason") != now.get("reason")
    ):
        events.warn(mdep, reason=now["reason"], message=now["message"])
    was, now = _condition(old, "Available"), _condition(new, "Available")
    if now.get("status") == "True" and was.get("status") != "True":
        events.info(mdep, reason="Available", message=now["message"])
    if new.get("phase") == "Paused" and old.get("phase") != "Paused":
        events.info(mdep, reason="RolloutPaused", message=new.get("message", ""))
