"""Which refused requests the chaos tests count apart as Kubernetes' doing: the verdict of a
campaign rests on it, so a window too wide would hide the operator's losses."""

from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.chaos import (
    ENDPOINTS_STALLED,
    READINESS_RESET,
    RESET_REFUSALS_SECONDS,
    RESET_REPORTED_WITHIN_SECONDS,
    Fault,
    RandomFaults,
    bursts,
)
from tests.support.readiness import UnreadySpells

pytestmark = pytest.mark.unit


@pytest.fixture
def faults() -> RandomFaults:
    """No fault to inject: the windows are set by each test, as injections would leave them."""
    return RandomFaults([Fault("none", lambda: None)], 0, seed=1, gap=(0.0, 0.0))


def test_a_refusal_while_endpoint_changes_stalled_is_counted_apart(faults: RandomFaults) -> None:
    faults.stalls.append((100.0, 125.0))
    assert faults.excuse(110.0, []) == ENDPOINTS_STALLED
    assert faults.excuse(125.5, []) is None


def test_a_refusal_around_an_unready_spell_after_a_kubelet_restart_is_counted_apart(
    faults: RandomFaults,
) -> None:
    faults.restarts.append((100.0, 104.0))
    spells = [(105.0, 105.03, "chaos-stable-x")]
    assert faults.excuse(104.5, spells) == READINESS_RESET  # kube-proxy acts before the watch
    assert faults.excuse(105.03 + RESET_REFUSALS_SECONDS - 0.1, spells) == READINESS_RESET
    assert faults.excuse(105.03 + RESET_REFUSALS_SECONDS + 0.1, spells) is None
    assert faults.excuse(103.0, spells) is None


def test_an_unready_spell_without_a_kubelet_restart_excuses_nothing(faults: RandomFaults) -> None:
    spells = [(105.0, 105.03, "chaos-stable-x")]
    assert faults.excuse(105.01, spells) is None
    over = 105.0 - RESET_REPORTED_WITHIN_SECONDS - 1  # too long before: not the restart's
    faults.restarts.append((over - 4, over))
    assert faults.excuse(105.01, spells) is None


def test_a_spell_still_open_excuses_only_its_start(faults: RandomFaults) -> None:
    faults.restarts.append((100.0, 104.0))
    spells = [(105.0, None, "chaos-stable-x")]
    assert faults.excuse(106.0, spells) == READINESS_RESET
    assert faults.excuse(105.0 + RESET_REFUSALS_SECONDS + 1, spells) is None


def test_excused_failures_are_counted_by_reason(faults: RandomFaults) -> None:
    faults.stalls.append((0.0, 10.0))
    faults.restarts.append((100.0, 104.0))
    spells = [(105.0, 105.1, "pod")]
    failed = [1.0, 2.0, 105.5, 50.0]
    assert faults.excused_failures(failed, spells) == {ENDPOINTS_STALLED: 2, READINESS_RESET: 1}


def test_bursts_split_where_the_gap_is_wider_than_two_seconds() -> None:
    assert bursts([]) == []
    assert bursts([1.0, 1.5, 3.5, 6.0, 6.1]) == [[1.0, 1.5, 3.5], [6.0, 6.1]]


def pod(name: str, ready: bool, deleting: bool = False) -> Any:
    condition = SimpleNamespace(type="Ready", status="True" if ready else "False")
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, deletion_timestamp="now" if deleting else None),
        status=SimpleNamespace(conditions=[condition]),
    )


def test_unready_spells_are_those_of_ready_pods_nobody_is_deleting() -> None:
    k8s: Any = SimpleNamespace(core=SimpleNamespace(list_namespaced_pod=None))
    watcher = UnreadySpells(k8s, "ns")
    watcher._changed({"a": pod("a", False), "b": pod("b", True)})  # a starting: not a spell
    watcher._changed({"a": pod("a", True), "b": pod("b", False)})
    assert [(who, until) for _, until, who in watcher.spells] == [("b", None)]
    watcher._changed({"a": pod("a", True), "b": pod("b", True)})
    [(since, until, who)] = watcher.spells
    assert who == "b" and until is not None and until >= since
    watcher._changed({"a": pod("a", False, deleting=True), "b": pod("b", True)})
    watcher._changed({"b": pod("b", True)})  # a gone
    assert len(watcher.spells) == 1
