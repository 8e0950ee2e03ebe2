"""Which copy a reconcile writes from (kube.cache.for_write): the watch cache's, unless this
process has read or written a version of the object that the cache does not show yet."""

import time
from typing import Any

import pytest

from cairn.api import TrainingRun
from cairn.kube import cache, objects

Body = dict[str, Any]


class OneObjectStore:
    """A watch cache holding one TrainingRun, at whatever version the test sets."""

    def __init__(self) -> None:
        self.body: Body | None = None

    def get(self, kind: Any, namespace: str, name: str) -> Body | None:
        return self.body

    def of_model(self, kind: Any, namespace: str, model: str) -> list[Body]:
        return []

    def runs_of(self, namespace: str, continuous_training: str) -> list[Body]:
        return []

    def run_job(self, namespace: str, run: str) -> Body | None:
        return None

    def run_pods(self, namespace: str, run: str) -> list[Body]:
        return []


def run_at(version: str) -> Body:
    return {"metadata": {"name": "iris-1", "namespace": "ml", "resourceVersion": version}}


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> OneObjectStore:
    found = OneObjectStore()
    monkeypatch.setattr(cache, "_store", found)
    monkeypatch.setattr(cache, "_known", type(cache._known)())
    monkeypatch.setattr(cache, "_created", {})
    return found


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The API server's copy is at version 9; records each read."""
    reads: list[str] = []

    def get(kind: Any, namespace: str, name: str) -> Body:
        reads.append(name)
        return run_at("9")

    monkeypatch.setattr(objects, "get", get)
    return reads


def test_an_object_this_process_never_touched_comes_from_the_cache(
    store: OneObjectStore, server: list[str]
) -> None:
    store.body = run_at("5")
    assert cache.for_write(TrainingRun, "ml", "iris-1") == run_at("5")
    assert server == []


def test_the_cache_serves_the_version_this_process_last_wrote(
    store: OneObjectStore, server: list[str]
) -> None:
    cache.remember(TrainingRun, run_at("7"))
    store.body = run_at("7")
    assert cache.for_write(TrainingRun, "ml", "iris-1") == run_at("7")
    assert server == []


def test_a_cache_behind_this_process_s_own_write_is_not_used(
    store: OneObjectStore, server: list[str]
) -> None:
    store.body = run_at("5")
    cache.remember(TrainingRun, run_at("7"))  # written by this process, not yet in the watch
    assert cache.for_write(TrainingRun, "ml", "iris-1") == run_at("9")
    assert server == ["iris-1"]
    # The server's copy is now the version known: the cache serves it once the watch shows it.
    store.body = run_at("9")
    assert cache.for_write(TrainingRun, "ml", "iris-1") == run_at("9")
    assert server == ["iris-1"]


def test_an_object_missing_from_the_cache_is_read_from_the_server(
    store: OneObjectStore, server: list[str]
) -> None:
    assert cache.for_write(TrainingRun, "ml", "iris-1") == run_at("9")
    assert server == ["iris-1"]


def started_run(version: str = "3") -> Body:
    body = run_at(version)
    body["metadata"]["labels"] = {"cairn.dev/continuous-training": "iris"}
    return body


def test_a_run_this_process_created_is_read_until_the_watch_shows_it(
    store: OneObjectStore, server: list[str]
) -> None:
    cache.created(TrainingRun, started_run())
    assert cache.runs_of("ml", "iris") == [started_run()]
    assert cache.get(TrainingRun, "ml", "iris-1") == started_run()
    assert cache.runs_of("ml", "other") == [] and cache.runs_of("elsewhere", "iris") == []
    assert cache.for_write(TrainingRun, "ml", "iris-1") == started_run()
    assert server == []
    store.body = started_run("4")  # the watch caught up: its copy, and only it, from now on
    assert cache.get(TrainingRun, "ml", "iris-1") == started_run("4")
    store.body = None
    assert cache.get(TrainingRun, "ml", "iris-1") is None  # deleted since, as the watch says


def test_a_created_run_is_forgotten_when_deleted_or_after_a_while(
    store: OneObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.created(TrainingRun, started_run())
    cache.forget(TrainingRun, "ml", "iris-1")
    assert cache.runs_of("ml", "iris") == []
    cache.created(TrainingRun, started_run())
    later = time.monotonic() + cache.CREATED_KEPT_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert cache.runs_of("ml", "iris") == []


def test_a_resync_waits_for_the_watch_to_show_this_process_s_write(
    store: OneObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.body = run_at("5")
    assert not cache.behind(TrainingRun, "ml", "iris-1")  # nothing written by this process
    cache.remember(TrainingRun, run_at("7"))
    assert cache.behind(TrainingRun, "ml", "iris-1")
    store.body = run_at("7")
    assert not cache.behind(TrainingRun, "ml", "iris-1")
    # A write the watch never shows as such (a later change by someone else came first, or
    # kopf folded it into the next event) holds the resync back for BEHIND_SECONDS at most.
    cache.remember(TrainingRun, run_at("8"))
    store.body = run_at("10")
    assert cache.behind(TrainingRun, "ml", "iris-1")
    later = time.monotonic() + cache.BEHIND_SECONDS + 0.1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert not cache.behind(TrainingRun, "ml", "iris-1")


def test_a_run_the_watch_shows_between_the_two_looks_is_found(
    store: OneObjectStore, server: list[str]
) -> None:
    class CatchingUp(OneObjectStore):
        """Empty at the first look, holding the run from the second on."""

        looks = 0

        def get(self, kind: Any, namespace: str, name: str) -> Body | None:
            self.looks += 1
            return started_run() if self.looks > 1 else None

    catching_up = CatchingUp()
    cache.install(catching_up)
    try:
        cache.created(TrainingRun, started_run())
        assert cache.for_write(TrainingRun, "ml", "iris-1") == started_run()
        assert server == []
    finally:
        cache.install(store)
