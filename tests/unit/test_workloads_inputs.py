"""A run's inputs (its output claim, its code ConfigMap): found ones are taken as there for a few
seconds, so a burst of runs sharing one claim does not ask for it once per run; missing ones are
always asked again, so a run waiting for its claim starts as soon as it exists."""

import time
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from cairn.kube import workloads


class Claims:
    """The API server's claims, counting reads; the test moves the clock."""

    def __init__(self) -> None:
        self.existing: set[str] = set()
        self.reads = 0
        self.now = 1000.0

    def read(self, name: str, namespace: str, **_: Any) -> None:
        self.reads += 1
        if name not in self.existing:
            raise ApiException(status=404, reason="NotFound")


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> Claims:
    made = Claims()

    class Core:
        read_namespaced_persistent_volume_claim = staticmethod(made.read)

    monkeypatch.setattr("cairn.kube.workloads.client.core", lambda: Core())
    monkeypatch.setattr(time, "monotonic", lambda: made.now)
    monkeypatch.setattr(workloads, "_found", {})
    return made


def test_a_found_claim_is_not_asked_for_again_within_the_window(claims: Claims) -> None:
    claims.existing.add("cairn-artifacts")
    assert all(workloads.claim_exists("ml", "cairn-artifacts") for _ in range(200))
    assert claims.reads == 1
    claims.now += workloads.FOUND_KEPT_SECONDS
    assert workloads.claim_exists("ml", "cairn-artifacts")
    assert claims.reads == 2  # the window is over: asked again


def test_a_missing_claim_is_asked_for_every_time_and_found_once_created(claims: Claims) -> None:
    assert not workloads.claim_exists("ml", "cairn-artifacts")
    assert not workloads.claim_exists("ml", "cairn-artifacts")
    assert claims.reads == 2
    claims.existing.add("cairn-artifacts")
    assert workloads.claim_exists("ml", "cairn-artifacts")


def test_the_same_name_in_another_namespace_is_its_own_claim(claims: Claims) -> None:
    claims.existing.add("cairn-artifacts")
    assert workloads.claim_exists("ml", "cairn-artifacts")
    claims.existing.clear()
    assert not workloads.claim_exists("other", "cairn-artifacts")
