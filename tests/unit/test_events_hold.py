"""Events wait while the operator is in a burst (kube.events.hold_while): a courtesy posted after
the burst's creates, never lost, and never held longer than HOLD_SECONDS."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cairn.kube import events

RUN = {"metadata": {"name": "iris-1", "namespace": "ml", "uid": "u"}, "kind": "TrainingRun"}


class Posted:
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.arrived = threading.Event()

    def create_namespaced_event(self, namespace: str, event: dict[str, Any]) -> None:
        self.reasons.append(event["reason"])
        self.arrived.set()


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Posted]:
    made = Posted()
    monkeypatch.setattr("cairn.kube.events.client.core", lambda: made)
    yield made
    events.hold_while(events._never_busy)


def test_an_event_waits_for_the_burst_to_pass(posted: Posted) -> None:
    burst = threading.Event()
    burst.set()
    events.hold_while(burst.is_set)
    events.info(RUN, reason="JobCreated", message="created Job iris-1")
    assert not posted.arrived.wait(0.5)  # held while busy
    burst.clear()
    assert posted.arrived.wait(5)
    assert posted.reasons == ["JobCreated"]


def test_an_event_is_held_no_longer_than_the_limit(
    posted: Posted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "HOLD_SECONDS", 0.3)
    events.hold_while(lambda: True)  # a burst that never ends
    started = time.monotonic()
    events.warn(RUN, reason="Failed", message="the pod failed")
    assert posted.arrived.wait(5)
    assert time.monotonic() - started >= 0.3


def test_events_decided_together_are_held_together_not_one_after_another(
    posted: Posted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "HOLD_SECONDS", 0.3)
    events.hold_while(lambda: True)  # a burst that lasts: thousands of objects at once
    started = time.monotonic()
    for index in range(20):  # more than there are posters
        events.info(RUN, reason=f"Reason{index}", message="something happened")
    deadline = started + 5
    while len(posted.reasons) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(posted.reasons) == 20
    # Each waited HOLD_SECONDS from when it was decided, not from when a poster took it up
    # (20 Events on 4 posters, 0.3 s each in turn, would take 1.5 s).
    assert time.monotonic() - started < 1.0
