"""The reconciles that watch events ask for, run by a pool of worker threads: each object is at
most once waiting and once under way (client-go's workqueue).

kopf handles one object's events in order, and indexes each event (the watch caches Cairn reads)
only once the handlers of the event before it have returned. A synchronous handler that
reconciled in place therefore held back every later event of its object, and waited for one of
kopf's threads first: in a burst (200 scheduled runs at one second) a ContinuousTraining's cache
ran more than ten seconds behind its own status writes, so each reconcile read it again from the
API server. Event handlers now decide on kopf's event loop whether the event calls for a
reconcile and only queue it here; the event is indexed at once, and the many events of one
object in a burst (its run's Job, pods and status) fold into one reconcile that reads the latest
state.

Each reconcile (a kind's controller) has a queue of its own and the workers take from them in
turn, as controller-runtime gives each controller its own queue: in bench-scale's load, 300
ModelDeployments asked behind 10,000 ModelVersions and waited 88 s (p99) for their first status.
"""

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

import kopf

from cairn.kube import cache
from cairn.observability import metrics

Reconcile = Callable[[str, str], None]
Item = tuple[Reconcile, str, str]  # what to call with (namespace, name)

# Reconciles spend their time waiting on the API server, not the CPU.
WORKERS = 32
STOP_SECONDS = 30.0

logger = logging.getLogger(__name__)


class WorkQueue:
    """Items in the order first asked for, each reconcile's in turn. An item asked for while it
    waits is not queued again; one asked for while under way runs once more after it (the
    change that asked may have come after its read)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        # Per reconcile, insertion-ordered: first asked, first run.
        self._waiting: dict[Reconcile, dict[Item, None]] = {}
        self._turns: collections.deque[Reconcile] = collections.deque()  # those with items
        self._under_way: set[Item] = set()
        self._again: set[Item] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def add(self, reconcile: Reconcile, namespace: str, name: str) -> None:
        item = (reconcile, namespace, name)
        with self._changed:
            if item in self._under_way:
                self._again.add(item)
            else:
                self._wait(item)

    def _wait(self, item: Item) -> None:
        """Queue `item` unless it waits already (the lock held)."""
        reconcile = item[0]
        waiting = self._waiting.setdefault(reconcile, {})
        if item in waiting:
            return
        if not waiting:
            self._turns.append(reconcile)
        waiting[item] = None
        self._changed.notify()

    def depth(self) -> int:
        """Items waiting for a worker."""
        with self._changed:
            return self._depth()

    def busy(self) -> int:
        """Items waiting or under way."""
        with self._changed:
            return self._depth() + len(self._under_way)

    def _depth(self) -> int:
        return sum(len(waiting) for waiting in self._waiting.values())

    def start(self, workers: int = WORKERS) -> None:
        with self._changed:
            self._stopping = False
            self._threads = [
                threading.Thread(target=self._work, name=f"reconcile-{n}", daemon=True)
                for n in range(workers)
            ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Drop what waits; let what is under way finish (up to `timeout` in all)."""
        with self._changed:
            self._stopping = True
            self._waiting.clear()
            self._turns.clear()
            self._again.clear()
            self._changed.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout / max(1, len(threads)))

    def _next(self) -> Item | None:
        with self._changed:
            while not self._turns and not self._stopping:
                self._changed.wait()
            if self._stopping:
                return None
            reconcile = self._turns.popleft()
            waiting = self._waiting[reconcile]
            item = next(iter(waiting))
            del waiting[item]
            if waiting:
                self._turns.append(reconcile)  # its next item after the other reconciles' next
            self._under_way.add(item)
            return item

    def _done(self, item: Item) -> None:
        with self._changed:
            self._under_way.discard(item)
            if item in self._again and not self._stopping:
                self._again.discard(item)
                self._wait(item)

    def _work(self) -> None:
        while (item := self._next()) is not None:
            reconcile, namespace, name = item
            try:
                reconcile(namespace, name)
            except cache.NotInstalled:
                pass  # the operator is stopping
            except Exception:  # one object's failure must not stop the others
                # The periodic resync (controllers.resync) comes back to it.
                what = getattr(reconcile, "__qualname__", "reconcile")
                logger.exception("%s of %s/%s failed", what, namespace, name)
            finally:
                self._done(item)


QUEUE = WorkQueue()


def enqueue(reconcile: Reconcile, namespace: str, name: str) -> None:
    """Ask for `reconcile(namespace, name)` in a worker thread, soon."""
    QUEUE.add(reconcile, namespace, name)


@kopf.on.startup()
def start_workers(**_: Any) -> None:
    QUEUE.start()
    metrics.WORK_QUEUE_DEPTH.set_function(QUEUE.depth)


@kopf.on.cleanup()
async def stop_workers(**_: Any) -> None:
    await asyncio.to_thread(QUEUE.stop)
