"""What the controllers read from the operator's watches rather than from the API server: the
Models, ModelVersions and ModelDeployments of the watched namespaces, as the last watch event
showed them.

Reading inputs from the watch (an informer's cache, in client-go's words) keeps background work
proportional to the data: a version's resync needs its Model and the ModelDeployments that serve
it, and asking the API server for them every time would cost requests per version per resync. A
cached object can be a moment old, so the rule is: compare from the cache, act from the API
server. A periodic resync computes from the cache and does nothing when that changes nothing;
a reconcile that writes reads the object it writes to from the API server first.

Cached: Models, ModelVersions, ModelDeployments, TrainingRuns and ContinuousTrainings by name,
versions and ModelDeployments by model, runs by the ContinuousTraining that started them. The
operator installs a store backed by kopf indexes at startup (controllers.cache); tests install
their own.
"""

from typing import Any, Protocol

from cairn.api import Resource

Body = dict[str, Any]
Kind = type[Resource]


class Store(Protocol):
    def get(self, kind: Kind, namespace: str, name: str) -> Body | None: ...

    def of_model(self, kind: Kind, namespace: str, model: str) -> list[Body]: ...

    def runs_of(self, namespace: str, continuous_training: str) -> list[Body]: ...


class NotInstalled(RuntimeError):
    """The caches are read before the operator started its watches."""


_store: Store | None = None


def install(store: Store | None) -> None:
    global _store
    _store = store


def _installed() -> Store:
    if _store is None:
        raise NotInstalled("the operator's watch caches are not running")
    return _store


def get(kind: Kind, namespace: str, name: str) -> Body | None:
    """The object as last seen, None when it does not exist."""
    return _installed().get(kind, namespace, name)


def of_model(kind: Kind, namespace: str, model: str) -> list[Body]:
    """The objects whose spec.model is `model` (ModelVersion and ModelDeployment)."""
    return _installed().of_model(kind, namespace, model)


def runs_of(namespace: str, continuous_training: str) -> list[Body]:
    """The TrainingRuns a ContinuousTraining started (labelled with its name)."""
    return _installed().runs_of(namespace, continuous_training)
