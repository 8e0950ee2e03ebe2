"""kopf handlers for Models and ModelVersions: thin, each queues a reconcile
(controllers.workqueue).

A ModelVersion's status depends on its Model's policy and on the ModelDeployments serving it; a
Model's on its versions. A change to one side looks at the other through the watch caches and
reconciles only what that change affects. Every object is also revisited periodically through
controllers.resync (kopf timers would put a finalizer on each object), from the caches too.
"""

from typing import Any

import kopf

from cairn.api import GROUP, VERSION, Model, ModelDeployment, ModelVersion
from cairn.api.modeldeployment import CANARY, STABLE
from cairn.controllers import resync
from cairn.controllers.cache import cached_models, cached_versions
from cairn.controllers.observed import calls_for_reconcile
from cairn.controllers.parsing import cached
from cairn.controllers.registry.models import reconcile_model, resync_model
from cairn.controllers.registry.versions import model_inputs, reconcile_version, resync_version
from cairn.controllers.workqueue import enqueue
from cairn.kube import cache
from cairn.registry.registration import version_name

Body = dict[str, Any]
Serving = tuple[str, str, int]  # (model, track, version)
RESYNC_SECONDS = 30


@kopf.on.event(GROUP, VERSION, ModelVersion.plural())
async def on_version_event(
    namespace: str | None, name: str, body: kopf.Body, spec: kopf.Spec, type: str | None, **_: Any
) -> None:
    if not namespace:
        return
    # New, or its spec (spec.approval) not yet observed (controllers.observed).
    if calls_for_reconcile(type, body):
        enqueue(reconcile_version, namespace, name)
    # Created, judged, approved or deleted: the Model's latest version and aliases may change.
    if type is not None and spec.get("model"):
        enqueue(resync_model, namespace, str(spec["model"]))


# The model_inputs of each Model when its versions were last looked at again.
_inputs_seen: dict[tuple[str, str], int] = {}


@kopf.on.event(GROUP, VERSION, Model.plural())
async def on_model_event(
    namespace: str | None, name: str | None, type: str | None, body: kopf.Body, **_: Any
) -> None:
    if not (namespace and name):
        return
    key = (namespace, name)
    if type == "DELETED":
        _inputs_seen.pop(key, None)
        _resync_versions(namespace, name)  # they have no Model now
        return
    # Its policy changed or the policy moved an alias (status.promoted): the versions are judged
    # again, before the aliases are resolved from them. Not on every registration's write of
    # latestVersion: with 100 versions a Model, that made registering quadratic.
    inputs = model_inputs(cached(Model, dict(body)))
    if _inputs_seen.get(key) != inputs:
        _inputs_seen[key] = inputs
        _resync_versions(namespace, name)
    if calls_for_reconcile(type, body):
        enqueue(reconcile_model, namespace, name)


# What each ModelDeployment serves, as its last event showed it.
_serving_seen: dict[tuple[str, str], frozenset[Serving]] = {}


def serving(body: Body) -> frozenset[Serving]:
    """The (model, track, version) a ModelDeployment serves by its status: all a version's status
    reads of it (history.roles). Nothing while it is being deleted or cannot be read (its own
    controller reports why)."""
    mdep = cached(ModelDeployment, body)
    if mdep is None or mdep.deleting or mdep.status is None:
        return frozenset()
    tracks = ((STABLE, mdep.status.stable), (CANARY, mdep.status.canary))
    return frozenset(
        (mdep.spec.model, track, held.version) for track, held in tracks if held and held.version
    )


@kopf.on.event(GROUP, VERSION, ModelDeployment.plural())
async def on_deployment_event(
    namespace: str | None, name: str, spec: kopf.Spec, type: str | None, body: kopf.Body, **_: Any
) -> None:
    """What a ModelDeployment serves is listed in its versions' status, protects them from
    retention, and a rollback of the promotion alias's version moves the alias back: the Model
    is looked at again on each event, and the versions whose role changed (not every version
    of the Model: a rollout's status writes would look at hundreds each)."""
    if not namespace:
        return
    key = (namespace, name)
    now = frozenset() if type == "DELETED" else serving(dict(body))
    before = _serving_seen.pop(key, frozenset())
    if type != "DELETED":
        _serving_seen[key] = now
    if type is None:
        return  # first seen by this process: the resyncs look at every version anyway
    for model, number in sorted({(model, number) for model, _, number in now ^ before}):
        enqueue(resync_version, namespace, version_name(model, number))
    if spec.get("model"):
        enqueue(resync_model, namespace, str(spec["model"]))


def _resync_versions(namespace: str, model: str) -> None:
    for body in cache.of_model(ModelVersion, namespace, model):
        enqueue(resync_version, namespace, body["metadata"]["name"])


# Every version and every Model is looked at again every RESYNC_SECONDS (see controllers.resync),
# walking the watch caches' indexes by name.
resync.register(cached_versions, resync_version, every=RESYNC_SECONDS)
resync.register(cached_models, resync_model, every=RESYNC_SECONDS)
