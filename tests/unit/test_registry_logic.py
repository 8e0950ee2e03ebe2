"""Version numbering, gates, approval and alias resolution: the registry's pure rules."""

import pytest

from cairn.api import Approval, Gate, ModelVersionPhase, TrainingRun
from cairn.api.labels import RUN_UID_LABEL
from cairn.registry.aliases import resolve
from cairn.registry.approval import decide
from cairn.registry.gates import judge_all
from cairn.registry.registration import RegistrationError, first_number, made_by, version_for
from cairn.registry.retention import versions_to_delete


def test_the_first_number_tried_is_above_every_number_used_or_recorded() -> None:
    assert first_number([], None) == 1
    assert first_number([1, 2, 5], None) == 6
    # The Model's latest version remembers a deleted version 7: its number is not given again.
    assert first_number([1, 2], 7) == 8


def run(status: dict[str, object] | None = None) -> TrainingRun:
    return TrainingRun.model_validate(
        {
            "metadata": {"name": "iris-3", "namespace": "ml", "uid": "u-3"},
            "spec": {
                "model": "iris",
                "params": {"depth": 3},
                "code": {"configMap": {"name": "code"}, "revision": "abc123"},
            },
            "status": status,
        }
    )


ARTIFACT = {"uri": "pvc://cairn-artifacts/iris/iris-3", "digest": "sha256:" + "a" * 64}


def test_a_version_records_the_run_and_the_image_the_pod_ran() -> None:
    version = version_for(
        run(
            {
                "artifact": ARTIFACT,
                "metrics": {"accuracy": 0.9},
                "image": "docker.io/cairn/trainer:dev",
                "imageId": "docker.io/cairn/trainer@sha256:" + "b" * 64,
                "dataset": {"uri": "sklearn://iris", "digest": "sha256:" + "c" * 64},
            }
        ),
        4,
    )
    assert version.name == "iris-v4"
    assert version.labels[RUN_UID_LABEL] == "u-3"
    source = version.spec.source
    assert source is not None
    assert (source.run, source.run_uid, source.code_revision) == ("iris-3", "u-3", "abc123")
    assert source.image == "docker.io/cairn/trainer:dev"
    assert source.image_id == "docker.io/cairn/trainer@sha256:" + "b" * 64
    assert source.dataset is not None and source.dataset.uri == "sklearn://iris"
    assert made_by(version.to_dict(), run())
    assert not made_by({"metadata": {"labels": {RUN_UID_LABEL: "other"}}}, run())


def test_a_run_without_an_artifact_cannot_be_registered_and_is_not_retried() -> None:
    with pytest.raises(RegistrationError) as raised:
        version_for(run({"metrics": {"accuracy": 0.9}}), 1)
    assert not raised.value.retry
    assert "save_model" in raised.value.message


def test_gates() -> None:
    gates = [
        Gate.model_validate({"metric": "accuracy", "op": ">=", "threshold": 0.9}),
        Gate.model_validate({"metric": "latency", "op": "<", "threshold": 10}),
    ]
    ok, results = judge_all(gates, {"accuracy": 0.95, "latency": 3})
    assert ok and all(r.passed for r in results)
    ok, results = judge_all(gates, {"accuracy": 0.5})
    assert not ok
    assert results[0].message == "accuracy=0.5 fails >= 0.9"
    assert "was not reported" in (results[1].message or "") and results[1].value is None


def test_approval_decisions() -> None:
    def phase(validated: bool, required: bool, state: str = "Pending") -> ModelVersionPhase:
        return decide(
            validated=validated,
            require_approval=required,
            approval=Approval.model_validate({"state": state}),
            model="iris",
            version=2,
        ).phase

    assert phase(True, False) == ModelVersionPhase.APPROVED
    assert phase(True, True) == ModelVersionPhase.PENDING_APPROVAL
    assert phase(True, True, "Approved") == ModelVersionPhase.APPROVED
    assert phase(False, False, "Approved") == ModelVersionPhase.INVALID
    assert phase(True, False, "Rejected") == ModelVersionPhase.REJECTED
    pending = decide(validated=True, require_approval=True, approval=None, model="iris", version=2)
    assert "cairn approve iris 2" in pending.message


def test_aliases_resolve_only_to_ready_versions() -> None:
    phases = {1: ModelVersionPhase.APPROVED, 2: ModelVersionPhase.INVALID, 3: None}
    resolved, problems = resolve(
        {"production": 1, "staging": 2, "next": 9, "new": 3}, {1}, phases, "iris"
    )
    assert resolved == {"production": 1}
    assert problems == [
        "new → 3: iris-v3 is not judged yet, not Validated and Approved",
        "next → 9: iris-v9 does not exist",
        "staging → 2: iris-v2 is Invalid, not Validated and Approved",
    ]


def test_retention_keeps_the_newest_and_the_protected_versions() -> None:
    assert versions_to_delete([1, 2, 3, 4, 5], keep=3, protected=set()) == [1, 2]
    assert versions_to_delete([1, 2, 3, 4, 5], keep=3, protected={1}) == [2]
    assert versions_to_delete([1, 2], keep=1, protected={1}) == []
    assert versions_to_delete([1, 2, 3], keep=1, protected={1, 2, 3}) == []
    assert versions_to_delete([1, 2], keep=5, protected=set()) == []
