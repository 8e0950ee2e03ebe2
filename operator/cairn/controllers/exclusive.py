"""One reconcile of an object at a time in this process.

kopf serialises the handlers of one object, but Cairn reconciles an object from other objects'
handlers too (a run from its Job's and pods' events, a ModelDeployment from its Model's), in
kopf's worker threads; two reconciles of one object at once would post the same Event twice and
race on the same writes.
"""

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

Key = tuple[str, str, str]

_guard = threading.Lock()
# A lock lives while a reconcile holds or waits for it, and goes with the last of them: a lock
# kept for every object ever reconciled would grow with churn (deleted objects) for ever.
_locks: weakref.WeakValueDictionary[Key, threading.Lock] = weakref.WeakValueDictionary()


def _lock_of(key: Key) -> threading.Lock:
    with _guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.Lock()
        return lock


@contextmanager
def exclusive(kind: str, namespace: str, name: str) -> Iterator[None]:
    lock = _lock_of((kind, namespace, name))  # this reference keeps it alive until we are done
    with lock:
        yield


def held() -> int:
    """How many objects have a reconcile under way or waiting (for tests)."""
    with _guard:
        return len(_locks)
