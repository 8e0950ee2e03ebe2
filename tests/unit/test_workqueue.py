"""The work queue between watch events and reconciles: each object at most once waiting and
once under way, a change during a reconcile never lost, a failure never stopping the workers,
and each reconcile (a kind's controller) served in turn, so a few objects of one kind never
wait behind thousands of another's."""

import threading
from collections.abc import Iterator

import pytest

from cairn.controllers.workqueue import WorkQueue

pytestmark = pytest.mark.unit

WAIT = 10.0


class Recorder:
    """A reconcile that records its calls and can be held inside until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.finished = threading.Semaphore(0)
        self.fail_for: set[str] = set()

    def __call__(self, namespace: str, name: str) -> None:
        self.calls.append((namespace, name))
        self.entered.set()
        try:
            assert self.release.wait(WAIT)
            if name in self.fail_for:
                raise RuntimeError(f"{name} is broken")
        finally:
            self.finished.release()

    def wait_for(self, count: int) -> None:
        for _ in range(count):
            assert self.finished.acquire(timeout=WAIT), f"only {len(self.calls)} calls"


@pytest.fixture
def queue() -> Iterator[WorkQueue]:
    made = WorkQueue()
    yield made
    made.stop(timeout=WAIT)


def test_events_for_a_waiting_object_fold_into_one_reconcile(queue: WorkQueue) -> None:
    reconcile = Recorder()
    for _ in range(5):
        queue.add(reconcile, "ml", "iris")
    queue.add(reconcile, "ml", "wine")
    assert queue.depth() == 2
    queue.start(workers=1)
    reconcile.wait_for(2)
    assert reconcile.calls == [("ml", "iris"), ("ml", "wine")]  # first asked, first run
    assert not reconcile.finished.acquire(timeout=0.3)  # no third call


def under_way(queue: WorkQueue, workers: int) -> Recorder:
    """A reconcile of ml/iris started by one of `workers` and held inside until released."""
    reconcile = Recorder()
    reconcile.release.clear()
    queue.start(workers=workers)
    queue.add(reconcile, "ml", "iris")
    assert reconcile.entered.wait(WAIT)
    return reconcile


def test_an_event_during_a_reconcile_runs_it_again_after(queue: WorkQueue) -> None:
    reconcile = under_way(queue, workers=4)
    # The object changed after the reconcile read it: twice asked, once more run, never two
    # reconciles of one object at once (four idle workers could take it).
    queue.add(reconcile, "ml", "iris")
    queue.add(reconcile, "ml", "iris")
    assert queue.depth() == 0
    reconcile.release.set()
    reconcile.wait_for(2)
    assert reconcile.calls == [("ml", "iris"), ("ml", "iris")]
    assert not reconcile.finished.acquire(timeout=0.3)


def test_same_name_with_another_reconcile_or_namespace_is_another_item(queue: WorkQueue) -> None:
    first, second = Recorder(), Recorder()
    queue.add(first, "ml", "iris")
    queue.add(second, "ml", "iris")
    queue.add(first, "prod", "iris")
    queue.start(workers=2)
    first.wait_for(2)
    second.wait_for(1)
    assert sorted(first.calls) == [("ml", "iris"), ("prod", "iris")]
    assert second.calls == [("ml", "iris")]


def test_a_failing_reconcile_is_logged_and_the_workers_go_on(
    queue: WorkQueue, caplog: pytest.LogCaptureFixture
) -> None:
    reconcile = Recorder()
    reconcile.fail_for = {"broken"}
    queue.start(workers=1)
    queue.add(reconcile, "ml", "broken")
    queue.add(reconcile, "ml", "iris")
    reconcile.wait_for(2)
    assert reconcile.calls == [("ml", "broken"), ("ml", "iris")]
    assert "of ml/broken failed" in caplog.text
    assert "broken is broken" in caplog.text


def test_stopping_drops_what_waits_and_lets_what_is_under_way_finish() -> None:
    queue = WorkQueue()
    reconcile = under_way(queue, workers=1)
    queue.add(reconcile, "ml", "wine")
    queue.add(reconcile, "ml", "iris")  # would run again after
    stopper = threading.Thread(target=queue.stop, kwargs={"timeout": WAIT})
    stopper.start()
    reconcile.release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert reconcile.calls == [("ml", "iris")]
    assert queue.busy() == 0


def test_a_stopped_queue_starts_again(queue: WorkQueue) -> None:
    reconcile = Recorder()
    queue.start(workers=1)
    queue.stop(timeout=WAIT)
    queue.start(workers=1)
    queue.add(reconcile, "ml", "iris")
    reconcile.wait_for(1)
    assert reconcile.calls == [("ml", "iris")]


class KindRecorder:
    """A kind's reconcile that records its calls, with every other kind's, in one list."""

    def __init__(self, kind: str, order: list[str], done: threading.Semaphore) -> None:
        self.kind, self.order, self.done = kind, order, done

    def __call__(self, namespace: str, name: str) -> None:
        self.order.append(f"{self.kind}:{name}")
        self.done.release()


def test_each_reconcile_is_served_in_turn_whatever_the_others_have_waiting(
    queue: WorkQueue,
) -> None:
    order: list[str] = []
    done = threading.Semaphore(0)
    versions, deployments, runs = (KindRecorder(kind, order, done) for kind in "vdr")
    for number in range(100):
        queue.add(versions, "ml", f"v{number}")
    queue.add(deployments, "ml", "d0")
    queue.add(deployments, "ml", "d1")
    queue.add(runs, "ml", "r0")
    assert queue.depth() == 103
    queue.start(workers=1)
    for _ in range(103):
        assert done.acquire(timeout=WAIT), f"only {len(order)} calls"
    # Asked after 100 versions, the deployments and the run still go second, third and fifth.
    assert order[:6] == ["v:v0", "d:d0", "r:r0", "v:v1", "d:d1", "v:v2"]
    assert [name for name in order if name.startswith("v:")] == [f"v:v{n}" for n in range(100)]
