"""One reconcile of an object at a time in this process.

kopf serialises the handlers of one object, but Cairn reconciles an object from other objects'
handlers too (a run from its Job's and pods' events, a ModelDeployment from its Model's), in
kopf's worker threads; two reconciles of one object at once would post the same Event twice and
race on the same writes.
"""

import collections
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_guard = threading.Lock()
_locks: dict[tuple[str, str, str], threading.Lock] = collections.defaultdict(threading.Lock)


@contextmanager
def exclusive(kind: str, namespace: str, name: str) -> Iterator[None]:
    with _guard:
        lock = _locks[(kind, namespace, name)]
    with lock:
        yield
