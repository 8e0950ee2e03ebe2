"""Version allocation, gates, approval and alias resolution: the registry's pure rules."""

from cairn.registry import allocation
from cairn.registry.aliases import resolve
from cairn.registry.approval import VersionPhase, decide
from cairn.registry.gates import judge_all
from cairn.registry.retention import versions_to_delete


def test_allocation_is_stable_for_a_run_and_never_reuses_numbers() -> None:
    v1, status = allocation.allocate({}, "run-a")
    v2, status = allocation.allocate(status, "run-b")
    again, same = allocation.allocate(status, "run-a")
    assert (v1, v2, again) == (1, 2, 1)
    assert same is status  # a retried run changes nothing
    status = allocation.release(status, "run-a", v1)
    v3, status = allocation.allocate(status, "run-c")
    assert v3 == 3  # released numbers are not handed out again
    assert status["allocations"] == {"run-b": 2, "run-c": 3}
    assert status["latestVersion"] == 1


def test_gates() -> None:
    gates = [
        {"metric": "accuracy", "op": ">=", "threshold": 0.9},
        {"metric": "latency", "op": "<", "threshold": 10},
    ]
    ok, results = judge_all(gates, {"accuracy": 0.95, "latency": 3})
    assert ok and all(r.passed for r in results)
    ok, results = judge_all(gates, {"accuracy": 0.5})
    assert not ok
    assert results[0].message == "accuracy=0.5 fails >= 0.9"
    assert "was not reported" in results[1].message and results[1].value is None


def test_approval_decisions() -> None:
    def phase(validated: bool, required: bool, state: str = "Pending") -> VersionPhase:
        return decide(
            validated=validated,
            require_approval=required,
            approval={"state": state},
            model="iris",
            version=2,
        ).phase

    assert phase(True, False) == VersionPhase.APPROVED
    assert phase(True, True) == VersionPhase.PENDING_APPROVAL
    assert phase(True, True, "Approved") == VersionPhase.APPROVED
    assert phase(False, False, "Approved") == VersionPhase.INVALID
    assert phase(True, False, "Rejected") == VersionPhase.REJECTED
    pending = decide(validated=True, require_approval=True, approval={}, model="iris", version=2)
    assert "cairn approve iris 2" in pending.message


def test_aliases_resolve_only_to_ready_versions() -> None:
    resolved, problems = resolve(
        {"production": 1, "staging": 2, "next": 9}, {1}, {1: "Approved", 2: "Invalid"}, "iris"
    )
    assert resolved == {"production": 1}
    assert problems == [
        "next → 9: iris-v9 does not exist",
        "staging → 2: iris-v2 is Invalid, not Validated and Approved",
    ]


def test_retention_keeps_the_newest_and_the_protected_versions() -> None:
    assert versions_to_delete([1, 2, 3, 4, 5], keep=3, protected=set()) == [1, 2]
    assert versions_to_delete([1, 2, 3, 4, 5], keep=3, protected={1}) == [2]
    assert versions_to_delete([1, 2], keep=1, protected={1}) == []
    assert versions_to_delete([1, 2, 3], keep=1, protected={1, 2, 3}) == []
    assert versions_to_delete([1, 2], keep=5, protected=set()) == []
