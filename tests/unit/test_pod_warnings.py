"""A pending training pod's Events are asked of the API server only once it has waited a while,
then at most every ASK_EVERY_SECONDS: each ask is a field-selector list that reads every Event of
the namespace."""

import pytest

from cairn.controllers.trainingrun import podwarnings
from cairn.kube import workloads


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def pod_warning(namespace: str, pod: str) -> str | None:
        calls.append(pod)
        return f"FailedMount: volume of {pod} cannot be mounted"

    monkeypatch.setattr(workloads, "pod_warning", pod_warning)
    monkeypatch.setattr(podwarnings, "_waiting", {})
    monkeypatch.setattr(podwarnings, "_swept", 0.0)
    return calls


def test_a_pod_is_asked_about_once_it_has_waited(asked: list[str]) -> None:
    assert podwarnings.latest("ml", "p", now=1000.0) is None
    assert podwarnings.latest("ml", "p", now=1000.0 + podwarnings.ASK_AFTER_SECONDS - 1) is None
    assert asked == []
    said = podwarnings.latest("ml", "p", now=1000.0 + podwarnings.ASK_AFTER_SECONDS)
    assert said == "FailedMount: volume of p cannot be mounted"
    assert asked == ["p"]


def test_the_answer_stands_between_asks(asked: list[str]) -> None:
    start = 1000.0
    podwarnings.latest("ml", "p", now=start)
    first_ask = start + podwarnings.ASK_AFTER_SECONDS
    for offset in range(0, int(podwarnings.ASK_EVERY_SECONDS), 5):  # a reconcile every 5 s
        assert podwarnings.latest("ml", "p", now=first_ask + offset) is not None
    assert asked == ["p"]
    podwarnings.latest("ml", "p", now=first_ask + podwarnings.ASK_EVERY_SECONDS)
    assert asked == ["p", "p"]


def test_pods_are_asked_about_apart(asked: list[str]) -> None:
    podwarnings.latest("ml", "a", now=1000.0)
    podwarnings.latest("ml", "b", now=1005.0)
    podwarnings.latest("ml", "a", now=1010.0)
    podwarnings.latest("ml", "b", now=1010.0)
    assert asked == ["a"]


def test_pods_no_longer_asked_about_are_forgotten(asked: list[str]) -> None:
    podwarnings.latest("ml", "old", now=1000.0)
    later = 1000.0 + podwarnings.FORGET_SECONDS
    podwarnings.latest("ml", "new", now=later)
    assert ("ml", "old") not in podwarnings._waiting
    assert ("ml", "new") in podwarnings._waiting
