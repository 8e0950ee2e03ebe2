"""kopf handlers for Models and ModelVersions: thin, each calls a reconcile.

A ModelVersion's state depends on its Model's policy, and a Model's aliases on its versions'
states, so a change to either reconciles the other side too.
"""

from typing import Any

import kopf

from cairn.controllers.registry.models import MODELS, VERSIONS, reconcile_model, versions_of
from cairn.controllers.registry.versions import reconcile_version
from cairn.kube import objects

RESYNC_SECONDS = 30


def _refresh_model(namespace: str, name: str) -> None:
    model = objects.get(MODELS, namespace, name)
    if model is not None:
        reconcile_model(model, versions_of(namespace, name))


@kopf.on.create(objects.GROUP, objects.VERSION, VERSIONS)
@kopf.on.resume(objects.GROUP, objects.VERSION, VERSIONS)
@kopf.on.update(objects.GROUP, objects.VERSION, VERSIONS, field="spec.approval")
@kopf.timer(
    objects.GROUP, objects.VERSION, VERSIONS, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS
)
def on_version(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    assert namespace, "ModelVersions are namespaced"
    version = dict(body)
    model_name = version["spec"]["model"]
    reconcile_version(version, objects.get(MODELS, namespace, model_name))
    _refresh_model(namespace, model_name)


@kopf.on.create(objects.GROUP, objects.VERSION, MODELS)
@kopf.on.resume(objects.GROUP, objects.VERSION, MODELS)
@kopf.on.update(objects.GROUP, objects.VERSION, MODELS, field="spec")
@kopf.timer(
    objects.GROUP, objects.VERSION, MODELS, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS
)
def on_model(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    assert namespace, "Models are namespaced"
    model = dict(body)
    # The policy may have changed: every version is judged again before aliases are resolved.
    for version in versions_of(namespace, name):
        reconcile_version(version, model)
    _refresh_model(namespace, name)
