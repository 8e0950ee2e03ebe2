"""kopf handlers for Models and ModelVersions: thin, each calls a reconcile.

A ModelVersion's state depends on its Model's policy, and a Model's aliases on its versions'
states, so a change to either reconciles the other side too. Every object is also revisited
periodically through controllers.resync (kopf timers would put a finalizer on each object).
"""

from typing import Any

import kopf

from cairn.controllers import resync
from cairn.controllers.registry.models import MODELS, VERSIONS, reconcile_model, versions_of
from cairn.controllers.registry.versions import reconcile_version
from cairn.kube import objects
from cairn.observability.reconciles import reconciling

RESYNC_SECONDS = 30


def _refresh_model(namespace: str, name: str) -> None:
    model = objects.get(MODELS, namespace, name)
    if model is not None:
        reconcile_model(model, versions_of(namespace, name))


def version_changed(namespace: str, name: str) -> None:
    with reconciling("ModelVersion", namespace, name):
        version = objects.get(VERSIONS, namespace, name)
        if version is None:
            return
        model_name = version["spec"]["model"]
        reconcile_version(version, objects.get(MODELS, namespace, model_name))
        _refresh_model(namespace, model_name)


def model_changed(namespace: str, name: str) -> None:
    with reconciling("Model", namespace, name):
        model = objects.get(MODELS, namespace, name)
        if model is None:
            return
        # The policy may have changed: every version is judged again before aliases are resolved.
        for version in versions_of(namespace, name):
            reconcile_version(version, model)
        _refresh_model(namespace, name)


@kopf.on.create(objects.GROUP, objects.VERSION, VERSIONS)
@kopf.on.resume(objects.GROUP, objects.VERSION, VERSIONS)
@kopf.on.update(objects.GROUP, objects.VERSION, VERSIONS, field="spec.approval")
def on_version(namespace: str | None, name: str, **_: Any) -> None:
    assert namespace, "ModelVersions are namespaced"
    version_changed(namespace, name)


@kopf.on.create(objects.GROUP, objects.VERSION, MODELS)
@kopf.on.resume(objects.GROUP, objects.VERSION, MODELS)
@kopf.on.update(objects.GROUP, objects.VERSION, MODELS, field="spec")
def on_model(namespace: str | None, name: str, **_: Any) -> None:
    assert namespace, "Models are namespaced"
    model_changed(namespace, name)


@kopf.index(objects.GROUP, objects.VERSION, VERSIONS)
def resync_modelversions(
    namespace: str | None, name: str, **_: Any
) -> dict[tuple[str | None, str], float]:
    """Every version is judged again every RESYNC_SECONDS (see controllers.resync)."""
    return {(namespace, name): RESYNC_SECONDS}


@kopf.index(objects.GROUP, objects.VERSION, MODELS)
def resync_models(
    namespace: str | None, name: str, **_: Any
) -> dict[tuple[str | None, str], float]:
    """Every Model is reconciled again every RESYNC_SECONDS (see controllers.resync)."""
    return {(namespace, name): RESYNC_SECONDS}


resync.register(resync_modelversions, version_changed)
resync.register(resync_models, model_changed)
