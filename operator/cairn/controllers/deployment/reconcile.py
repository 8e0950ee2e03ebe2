"""One level-based reconcile of a ModelDeployment: every handler (create, update, resume, timer,
and events of its Deployments, its Model and the Model's versions) calls it. It resolves the
version to serve, applies the Deployments and the Service that version needs, and writes status.
"""

import collections
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cairn.controllers.deployment import manifests
from cairn.controllers.deployment.rollout import Plan, plan
from cairn.controllers.deployment.status import Observed, compute_status
from cairn.controllers.deployment.target import (
    Refusal,
    Target,
    resolve,
    version_name,
    wanted_version,
)
from cairn.kube import events, objects, ownership, workloads

Body = dict[str, Any]
PLURAL = "modeldeployments"
MODELS, VERSIONS = "models", "modelversions"

_guard = threading.Lock()
_locks: dict[tuple[str, str], threading.Lock] = collections.defaultdict(threading.Lock)


@contextmanager
def _exclusive(namespace: str, name: str) -> Iterator[None]:
    """One reconcile of a ModelDeployment at a time in this process: handlers of other objects
    (its Model, its Deployments) call it from kopf's worker threads."""
    with _guard:
        lock = _locks[(namespace, name)]
    with lock:
        yield


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


def apply_plan(mdep: Body, chosen: Plan, stable: Body | None) -> Body | None:
    """Make the Deployments and the Service what `chosen` says; returns the stable Deployment."""
    namespace, name = mdep["metadata"]["namespace"], mdep["metadata"]["name"]
    if chosen.stable is not None:
        desired = manifests.build_deployment(
            mdep, manifests.STABLE, chosen.stable.target, chosen.stable.replicas
        )
        stable = _apply(desired, stable, mdep, workloads.apply_deployment)
    if stable is not None or chosen.stable is not None:
        service = manifests.build_service(mdep)
        observed = workloads.get_service(namespace, manifests.service_name(name))
        _apply(service, observed, mdep, workloads.apply_service)
    return stable


def reconcile(mdep: Body) -> None:
    meta = mdep["metadata"]
    if meta.get("deletionTimestamp"):
        return  # garbage collection removes its children; recreating them would fight it
    namespace, name = meta["namespace"], meta["name"]
    with _exclusive(namespace, name):
        current = objects.get(PLURAL, namespace, name)  # the latest, not a handler's snapshot
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        mdep = current
        target = find_target(mdep)
        before = workloads.get_deployment(namespace, manifests.deployment_name(name, "stable"))
        running = manifests.served_target(before)
        chosen = plan(mdep["spec"], target if isinstance(target, Target) else None, running)
        stable = apply_plan(mdep, chosen, before)
        seen = Observed(target=target, plan=chosen, stable=stable)
        status = compute_status(mdep, seen)
        old = mdep.get("status") or {}
        changed = {k: v for k, v in status.items() if old.get(k) != v}
        if changed:
            objects.patch_status(PLURAL, namespace, name, changed)
        post_events(mdep, old, status, running, manifests.served_target(stable))


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
