"""kopf handlers for ModelDeployments: thin, each queues (controllers.workqueue) the same
reconcile.

Besides its own changes, a ModelDeployment is reconciled when one of its Deployments changes
(pods becoming ready), and when a change of its Model (an alias moved) or of one of the Model's
versions (approved, rejected) changes what it should serve.
"""

from typing import Any

import kopf

from cairn.analysis.judge import duration_seconds
from cairn.api import GROUP, VERSION, Model, ModelDeployment, ModelVersion
from cairn.api.labels import (
    ABORT_ANNOTATION,
    DEPLOYMENT_LABEL,
    PROMOTE_ANNOTATION,
    RESUME_ANNOTATION,
)
from cairn.api.monitoring import DEFAULT_WINDOW
from cairn.controllers import observed, resync
from cairn.controllers.deployment.reconcile import needs_reconcile, reconcile, rolling_out
from cairn.controllers.workqueue import enqueue
from cairn.kube import cache

Body = dict[str, Any]
PLURAL = ModelDeployment.plural()
# Catches anything an event missed.
RESYNC_SECONDS = 30
# While a canary rollout runs: pause durations, analysis intervals and deadlines are checked this
# often, so a step ends (or a bad canary is rolled back) within this much of when it is due.
ROLLOUT_TICK_SECONDS = 2


# The rollout commands (`cairn promote`, `abort`, `resume`) are annotations.
COMMANDS = (PROMOTE_ANNOTATION, ABORT_ANNOTATION, RESUME_ANNOTATION)
# Each ModelDeployment's commands as its last event showed them (kopf's event loop only).
_commands: dict[tuple[str, str], tuple[str | None, ...]] = {}


def calls_for_reconcile(
    type: str | None, body: Body, commands_before: tuple[str | None, ...] | None
) -> bool:
    """New, first seen, a spec not yet observed (controllers.observed), or a rollout command
    given since the event before; its own status writes call for nothing."""
    return observed.calls_for_reconcile(type, body) or commands_of(body) != commands_before


def commands_of(body: Body) -> tuple[str | None, ...]:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return tuple(annotations.get(command) for command in COMMANDS)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_deployment(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> None:
    """An event handler rather than kopf's create and update handlers, which keep the last
    handled spec in an annotation: one more write per change, read back on every event. It
    only queues the reconcile (controllers.workqueue)."""
    if not namespace:
        return
    key = (namespace, name)
    if type == "DELETED":
        _commands.pop(key, None)
        return
    seen = dict(body)
    if calls_for_reconcile(type, seen, _commands.get(key)):
        enqueue(reconcile, namespace, name)
    _commands[key] = commands_of(seen)


@kopf.index(GROUP, VERSION, PLURAL)
async def resync_modeldeployments(
    body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str | None, str], float]:
    """Every ModelDeployment is revisited (see controllers.resync): often while a rollout runs,
    and a few times per monitoring window."""
    interval: float = ROLLOUT_TICK_SECONDS if rolling_out(dict(body)) else RESYNC_SECONDS
    watched = (body.get("spec") or {}).get("monitoring")
    if watched is not None:
        window = (watched.get("window") or {}).get("duration") or DEFAULT_WINDOW
        try:
            sixth = duration_seconds(window) / 6
        except ValueError:
            sixth = RESYNC_SECONDS  # an invalid duration is the reconcile's to report
        interval = min(interval, max(ROLLOUT_TICK_SECONDS, sixth))
    return {(namespace, name): interval}


resync.register(resync_modeldeployments, reconcile)


@kopf.on.event("apps", "v1", "deployments", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
async def on_track_event(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    # DELETED too: a track deleted by hand is recreated.
    name = labels.get(DEPLOYMENT_LABEL)
    if namespace and name:
        enqueue(reconcile, namespace, name)


def reconcile_affected(namespace: str, model: str) -> None:
    """Queue the ModelDeployments of `model` whose target the change of the Model or of one of
    its versions moved (a worker's job: it reads the caches and the parse memo)."""
    for body in cache.of_model(ModelDeployment, namespace, model):
        if needs_reconcile(body):
            enqueue(reconcile, namespace, body["metadata"]["name"])


@kopf.on.event(GROUP, VERSION, Model.plural())
async def on_model_event(
    name: str | None, namespace: str | None, type: str | None, **_: Any
) -> None:
    # Model.status.aliases is written by the Model's controller: kopf's update handlers ignore
    # status, so every event of the Model is looked at (None: the initial listing, in which
    # every ModelDeployment is reconciled anyway).
    if type is not None and namespace and name:
        enqueue(reconcile_affected, namespace, name)


@kopf.on.event(GROUP, VERSION, ModelVersion.plural())
async def on_version_event(
    spec: kopf.Spec, namespace: str | None, type: str | None, **_: Any
) -> None:
    model = spec.get("model")
    if type is not None and namespace and model:
        enqueue(reconcile_affected, namespace, str(model))
