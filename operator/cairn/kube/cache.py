"""What the controllers read from the operator's watches rather than from the API server: the
Models, ModelVersions and ModelDeployments of the watched namespaces, as the last watch event
showed them.

Reading inputs from the watch (an informer's cache, in client-go's words) keeps background work
proportional to the data: a version's resync needs its Model and the ModelDeployments that serve
it, and asking the API server for them every time would cost requests per version per resync. A
cached object can be a moment old, so the rule is: compare from the cache, act from the API
server. A periodic resync computes from the cache and does nothing when that changes nothing;
a reconcile that writes reads the object it writes to from the API server first, unless the
cache already shows the version this process last read or wrote, or the process has neither
read nor written it (`for_write`): either way no write of its own can be missing from the cache.

Cached: Models, ModelVersions, ModelDeployments, TrainingRuns and ContinuousTrainings by name,
versions and ModelDeployments by model, runs by the ContinuousTraining that started them, and the
Jobs and pods of training runs by run. The
operator installs a store backed by kopf indexes at startup (controllers.cache); tests install
their own.
"""

import collections
import threading
from typing import Any, Protocol

from cairn.api import Resource
from cairn.kube import objects

Body = dict[str, Any]
Kind = type[Resource]


class Store(Protocol):
    def get(self, kind: Kind, namespace: str, name: str) -> Body | None: ...

    def of_model(self, kind: Kind, namespace: str, model: str) -> list[Body]: ...

    def runs_of(self, namespace: str, continuous_training: str) -> list[Body]: ...

    def run_job(self, namespace: str, run: str) -> Body | None: ...

    def run_pods(self, namespace: str, run: str) -> list[Body]: ...


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


def run_job(namespace: str, run: str) -> Body | None:
    """The training Job of the TrainingRun `run` (labelled with its name), None when unseen."""
    return _installed().run_job(namespace, run)


def run_pods(namespace: str, run: str) -> list[Body]:
    """The pods of the TrainingRun `run`'s Job (labelled with its name)."""
    return _installed().run_pods(namespace, run)


# The resourceVersion of each object as this process last read it from the API server or wrote
# it, keyed (plural, namespace, name); the least recently used go first, so deleted objects do
# not accumulate.
KNOWN_MAX = 20_000
_known: collections.OrderedDict[tuple[str, str, str], str] = collections.OrderedDict()
_known_lock = threading.Lock()


def remember(kind: Kind, body: Body) -> None:
    """Note the version of an object just read from, or returned by, the API server."""
    meta = body.get("metadata") or {}
    key = (kind.plural(), meta.get("namespace", ""), meta.get("name", ""))
    with _known_lock:
        _known[key] = meta.get("resourceVersion", "")
        _known.move_to_end(key)
        while len(_known) > KNOWN_MAX:
            _known.popitem(last=False)


def for_write(kind: Kind, namespace: str, name: str) -> Body | None:
    """The object to reconcile and then write. The cached copy when it is the very version this
    process last read or wrote, or when this process has not read or written the object at all
    (then no write of ours can be missing from it: a run someone just created); from the API
    server otherwise. Only the one writer of a status may rely on this: another process's write
    may still be on its way to the watch."""
    key = (kind.plural(), namespace, name)
    cached = get(kind, namespace, name) if _store is not None else None
    if cached is not None:
        version = (cached.get("metadata") or {}).get("resourceVersion")
        with _known_lock:
            if version and _known.get(key, version) == version:
                return cached
    fresh = objects.get(kind, namespace, name)
    if fresh is not None:
        remember(kind, fresh)
    return fresh
