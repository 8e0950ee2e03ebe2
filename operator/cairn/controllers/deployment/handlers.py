"""kopf handlers for ModelDeployments: thin, each calls the same reconcile.

Besides its own changes, a ModelDeployment is reconciled when one of its Deployments changes
(pods becoming ready), when its Model changes (an alias it follows moved) and when a version of
its Model changes (approved, rejected).
"""

from typing import Any, Final

import kopf

from cairn.controllers import resync
from cairn.controllers.deployment import manifests, usage
from cairn.controllers.deployment.reconcile import (
    MODELS,
    PLURAL,
    VERSIONS,
    following,
    reconcile,
    reconcile_named,
    rolling_out,
)
from cairn.kube import objects
from cairn.observability.reconciles import reconciling

KIND: Final = "ModelDeployment"
# Catches anything an event missed.
RESYNC_SECONDS = 30
# While a canary rollout runs: pause durations, analysis intervals and deadlines are checked this
# often, so a step ends (or a bad canary is rolled back) within this much of when it is due.
ROLLOUT_TICK_SECONDS = 2


@kopf.on.create(objects.GROUP, objects.VERSION, PLURAL)
@kopf.on.resume(objects.GROUP, objects.VERSION, PLURAL)
@kopf.on.update(objects.GROUP, objects.VERSION, PLURAL, field="spec")
def on_deployment(body: kopf.Body, **_: Any) -> None:
    _reconcile(dict(body))


def _reconcile(mdep: dict[str, Any]) -> None:
    meta = mdep["metadata"]
    with reconciling(KIND, meta["namespace"], meta["name"]):
        reconcile(mdep)


def _reconcile_named(namespace: str, name: str) -> None:
    with reconciling(KIND, namespace, name):
        reconcile_named(namespace, name)


@kopf.index(objects.GROUP, objects.VERSION, PLURAL)
def resync_modeldeployments(
    body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str | None, str], float]:
    """Every ModelDeployment is revisited (see controllers.resync): often while a rollout runs."""
    interval = ROLLOUT_TICK_SECONDS if rolling_out(dict(body)) else RESYNC_SECONDS
    return {(namespace, name): interval}


resync.register(resync_modeldeployments, _reconcile_named)


@kopf.on.event("apps", "v1", "deployments", labels={manifests.DEPLOYMENT_LABEL: kopf.PRESENT})
def on_track_event(labels: kopf.Labels, namespace: str | None, type: str, **_: Any) -> None:
    # DELETED too: a track deleted by hand is recreated; one deleted with its ModelDeployment
    # (garbage collection) means the versions it served are no longer served by it.
    name, model = labels.get(manifests.DEPLOYMENT_LABEL), labels.get(manifests.MODEL_LABEL)
    if not (namespace and name):
        return
    _reconcile_named(namespace, name)
    if type == "DELETED" and model:
        owner = objects.get(PLURAL, namespace, name)
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            usage.forget(namespace, model, name)


def _reconcile_following(namespace: str | None, model: str | None) -> None:
    if namespace and model:
        for mdep in following(namespace, model):
            _reconcile(mdep)


@kopf.on.event(objects.GROUP, objects.VERSION, MODELS)
def on_model_event(name: str | None, namespace: str | None, type: str, **_: Any) -> None:
    # Model.status.aliases is written by the registry: kopf's update handlers ignore status, so
    # every event of the Model is looked at; the reconcile does nothing when nothing changed.
    if type is not None:  # None: the initial listing, which the resume handlers cover
        _reconcile_following(namespace, name)


@kopf.on.event(objects.GROUP, objects.VERSION, VERSIONS)
def on_version_event(spec: kopf.Spec, namespace: str | None, type: str, **_: Any) -> None:
    if type is not None:
        _reconcile_following(namespace, spec.get("model"))
