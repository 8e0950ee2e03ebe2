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
import time
from typing import Any, Protocol

from cairn.api import Resource, TrainingRun
from cairn.api.labels import CONTINUOUS_TRAINING_LABEL
from cairn.kube import objects
from cairn.observability.reconciles import Interrupted

Body = dict[str, Any]
Kind = type[Resource]


class Store(Protocol):
    def get(self, kind: Kind, namespace: str, name: str) -> Body | None: ...

    def of_model(self, kind: Kind, namespace: str, model: str) -> list[Body]: ...

    def runs_of(self, namespace: str, continuous_training: str) -> list[Body]: ...

    def run_job(self, namespace: str, run: str) -> Body | None: ...

    def run_pods(self, namespace: str, run: str) -> list[Body]: ...


class NotInstalled(RuntimeError, Interrupted):
    """The caches are read before the operator started its watches, or after it stopped them."""


_store: Store | None = None


def install(store: Store | None) -> None:
    global _store
    _store = store


def _installed() -> Store:
    if _store is None:
        raise NotInstalled("the operator's watch caches are not running")
    return _store


def get(kind: Kind, namespace: str, name: str) -> Body | None:
    """The object as last seen (or as this process just created it), None when it does not
    exist."""
    seen = _installed().get(kind, namespace, name)
    if seen is not None:
        if _created:  # the watch has caught up with it
            forget(kind, namespace, name)
        return seen
    unseen = _created_unseen(kind, namespace, lambda body: body["metadata"]["name"] == name, 1)
    if unseen:
        return unseen[0]
    # The watch may have shown it between the two looks (then it is no longer "unseen").
    return _installed().get(kind, namespace, name)


def of_model(kind: Kind, namespace: str, model: str) -> list[Body]:
    """The objects whose spec.model is `model` (ModelVersion and ModelDeployment)."""
    return _installed().of_model(kind, namespace, model)


def runs_of(namespace: str, continuous_training: str) -> list[Body]:
    """The TrainingRuns a ContinuousTraining started (labelled with its name), with those it has
    just created and the watch has not shown yet."""
    seen = _installed().runs_of(namespace, continuous_training)

    def started_by(body: Body) -> bool:
        labels = body["metadata"].get("labels") or {}
        return labels.get(CONTINUOUS_TRAINING_LABEL) == continuous_training

    return [*seen, *_created_unseen(TrainingRun, namespace, started_by)]


def run_job(namespace: str, run: str) -> Body | None:
    """The training Job of the TrainingRun `run` (labelled with its name), None when unseen."""
    return _installed().run_job(namespace, run)


def run_pods(namespace: str, run: str) -> list[Body]:
    """The pods of the TrainingRun `run`'s Job (labelled with its name)."""
    return _installed().run_pods(namespace, run)


# The resourceVersion of each object as this process last read it from the API server or wrote
# it, keyed (plural, namespace, name), with when (monotonic); the least recently used go first,
# so deleted objects do not accumulate.
KNOWN_MAX = 20_000
_known: collections.OrderedDict[tuple[str, str, str], tuple[str, float]] = collections.OrderedDict()
_known_lock = threading.Lock()
# How long a resync waits for the watch to show this process's own write (`behind`); under a
# burst the watch runs a second or two late.
BEHIND_SECONDS = 5.0


def remember(kind: Kind, body: Body) -> None:
    """Note the version of an object just read from, or returned by, the API server."""
    meta = body.get("metadata") or {}
    key = (kind.plural(), meta.get("namespace", ""), meta.get("name", ""))
    with _known_lock:
        _known[key] = (meta.get("resourceVersion", ""), time.monotonic())
        _known.move_to_end(key)
        while len(_known) > KNOWN_MAX:
            _known.popitem(last=False)


def _shows_known(key: tuple[str, str, str], cached: Body) -> bool:
    """Whether `cached` is the version this process last read or wrote (or it has none)."""
    version = (cached.get("metadata") or {}).get("resourceVersion")
    with _known_lock:
        known = _known.get(key)
    return bool(version) and (known is None or known[0] == version)


def behind(kind: Kind, namespace: str, name: str) -> bool:
    """Whether the cache does not show yet what this process wrote to the object less than
    BEHIND_SECONDS ago. A resync that compares from the cache waits for it: acting on the copy
    before that write would reconcile again what the write has just settled (a scheduled run
    judged due again, a second read of the object from the API server), in a burst when the
    API server has least time for it."""
    cached = get(kind, namespace, name)
    with _known_lock:
        known = _known.get((kind.plural(), namespace, name))
    if cached is None or known is None:
        return False
    version, when = known
    shown = (cached.get("metadata") or {}).get("resourceVersion") == version
    return not shown and time.monotonic() - when < BEHIND_SECONDS


# Objects this process created that the watch may not have shown yet, by (plural, namespace)
# and name, with when they were created (monotonic). Under a burst a watch runs seconds behind: a
# ContinuousTraining reconciled again before its new run reaches the cache must still count that
# run as active, or it would list it as gone and start another under concurrencyPolicy Forbid.
# An entry goes when the watch shows the object, when this process deletes it, or after
# CREATED_KEPT_SECONDS (an object someone else deleted before the watch showed it).
CREATED_KEPT_SECONDS = 60.0
_created: dict[tuple[str, str], dict[str, tuple[Body, float]]] = {}
_created_lock = threading.Lock()


def created(kind: Kind, body: Body) -> None:
    """Note an object this process has just created, as the API server returned it."""
    remember(kind, body)
    meta, now = body["metadata"], time.monotonic()
    with _created_lock:
        for group in _created.values():  # what nobody asked about again still goes
            for name in [n for n, (_, at) in group.items() if now - at > CREATED_KEPT_SECONDS]:
                del group[name]
        _created.setdefault((kind.plural(), meta["namespace"]), {})[meta["name"]] = (body, now)


def forget(kind: Kind, namespace: str, name: str) -> None:
    """Note that this process deleted an object: no longer one it created."""
    with _created_lock:
        _created.get((kind.plural(), namespace), {}).pop(name, None)


def _created_unseen(kind: Kind, namespace: str, wanted: Any, limit: int = 0) -> list[Body]:
    """The objects of `kind` in `namespace` this process created, `wanted` and not yet in the
    watch cache (at most `limit`, 0 for all); those the watch has caught up with are dropped."""
    with _created_lock:
        group = _created.get((kind.plural(), namespace))
        candidates = list(group.items()) if group else []
    found, now = [], time.monotonic()
    for name, (body, at) in candidates:
        if now - at > CREATED_KEPT_SECONDS or _installed().get(kind, namespace, name) is not None:
            forget(kind, namespace, name)
        elif wanted(body):
            found.append(body)
            if len(found) == limit:
                break
    return found


def for_write(kind: Kind, namespace: str, name: str) -> Body | None:
    """The object to reconcile and then write. The cached copy when it is the very version this
    process last read or wrote, or when this process has not read or written the object at all
    (then no write of ours can be missing from it: a run someone just created); from the API
    server otherwise. Only the one writer of a status may rely on this: another process's write
    may still be on its way to the watch."""
    key = (kind.plural(), namespace, name)
    cached = get(kind, namespace, name) if _store is not None else None
    if cached is not None and _shows_known(key, cached):
        return cached
    fresh = objects.get(kind, namespace, name)
    if fresh is not None:
        remember(kind, fresh)
    return fresh
