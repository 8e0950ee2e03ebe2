"""The API models read the manifests people write and write what the API server stores."""

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from cairn.api import (
    Condition,
    ConditionStatus,
    ContinuousTraining,
    GateOp,
    ImagePullPolicy,
    Model,
    ModelDeployment,
    ModelVersion,
    Resource,
    TrainingRun,
    TrainingRunPhase,
    TrainingRunStatus,
)
from tests.support.crds import (
    CONTINUOUS_TRAINING,
    DIGEST,
    MODEL,
    MODEL_DEPLOYMENT,
    MODEL_VERSION,
    TRAINING_RUN,
    manifest,
)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (TrainingRun, TRAINING_RUN),
        (Model, MODEL),
        (ModelVersion, MODEL_VERSION),
        (ModelDeployment, MODEL_DEPLOYMENT),
        (ContinuousTraining, CONTINUOUS_TRAINING),
    ],
    ids=["TrainingRun", "Model", "ModelVersion", "ModelDeployment", "ContinuousTraining"],
)
def test_a_complete_manifest_round_trips(kind: type[Resource], text: str) -> None:
    assert kind.model_validate(manifest(text)).to_dict() == manifest(text)


def test_fields_are_snake_case_in_python_and_camel_case_in_json() -> None:
    run = TrainingRun.model_validate(manifest(TRAINING_RUN))

    assert run.spec.image_pull_policy is ImagePullPolicy.NEVER
    assert run.spec.code is not None
    assert run.spec.code.config_map.name == "iris-code"
    assert run.spec.register_ is True
    assert run.status is not None
    assert run.status.phase is TrainingRunPhase.SUCCEEDED
    assert TrainingRunStatus(job_name="iris-1", key_metric="f1=0.5").to_dict() == {
        "jobName": "iris-1",
        "keyMetric": "f1=0.5",
    }


def test_a_minimal_run_gets_the_documented_defaults() -> None:
    run = TrainingRun.model_validate({"metadata": {"name": "r"}, "spec": {"model": "iris"}})

    assert run.to_dict()["spec"] == {
        "model": "iris",
        "imagePullPolicy": "IfNotPresent",
        "backoffLimit": 0,
        "suspend": False,
        "register": True,
    }
    assert run.to_dict()["apiVersion"] == "cairn.dev/v1alpha1"
    assert run.status is None


def test_code_is_mounted_at_the_default_path() -> None:
    spec = {"model": "iris", "code": {"configMap": {"name": "iris-code"}}}
    run = TrainingRun.model_validate({"spec": spec})

    assert run.spec.code is not None
    assert run.spec.code.mount_path == "/opt/cairn/code"
    assert run.spec.code.config_map.key is None


def test_model_and_version_defaults() -> None:
    model = Model.model_validate({"metadata": {"name": "iris"}})
    assert model.spec.policy.require_approval is False
    assert model.spec.policy.gates is None

    version = ModelVersion.model_validate(
        {
            "spec": {
                "model": "iris",
                "version": 1,
                "artifact": {"uri": "file:///tmp/m", "digest": DIGEST},
            }
        }
    )
    # Nobody has decided: a new version carries no approval at all.
    assert version.spec.approval is None


def test_params_keep_their_types() -> None:
    run = TrainingRun.model_validate(manifest(TRAINING_RUN))

    assert run.spec.params == {
        "max_depth": 3,
        "learning_rate": 0.1,
        "criterion": "gini",
        "shuffle": True,
    }
    assert [type(value) for value in run.spec.params.values()] == [int, float, str, bool]


def test_gate_ops_are_the_five_comparisons() -> None:
    assert [op.value for op in GateOp] == [">=", ">", "<=", "<", "=="]


def test_condition_times_are_written_as_rfc3339_utc() -> None:
    condition = Condition(
        type="Succeeded",
        status=ConditionStatus.TRUE,
        last_transition_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        reason="TrainerSucceeded",
        message="",
    )
    assert condition.to_dict() == {
        "type": "Succeeded",
        "status": "True",
        "lastTransitionTime": "2026-01-02T03:04:05Z",
        "reason": "TrainerSucceeded",
        "message": "",
    }


def _error_for(kind: type[TrainingRun] | type[Model] | type[ModelVersion], body: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        kind.model_validate(body)
    return str(raised.value)


@pytest.mark.parametrize(
    ("spec", "location", "message"),
    [
        ({"model": "Iris_Model"}, "spec.model", "must be a lowercase DNS label"),
        ({"model": "m" * 51}, "spec.model", "at most 50 characters"),
        ({"model": "iris", "backoffLimit": -1}, "spec.backoffLimit", "greater than or equal to 0"),
        ({"model": "iris", "imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy", "Always"),
        ({"model": "iris", "params": {"layers": [1, 2]}}, "spec.params.layers", "valid string"),
        ({"model": "iris", "code": {}}, "spec.code.configMap", "Field required"),
        (
            {"model": "iris", "dataset": {"uri": "pvc://d", "digest": "md5:0"}},
            "spec.dataset.digest",
            "sha256:<64 lowercase hexadecimal digits>",
        ),
        ({"model": "iris", "output": {"uri": "http://x"}}, "spec.output.uri", "pvc://<claim>"),
        ({"model": "iris", "resources": {"limits": {"cpu": "lots"}}}, "spec.resources", "cpu"),
    ],
)
def test_invalid_runs_are_refused_in_python_too(
    spec: dict[str, Any], location: str, message: str
) -> None:
    error = _error_for(TrainingRun, {"spec": spec})
    assert location in error
    assert message in error


def test_invalid_alias_names_and_targets_are_refused() -> None:
    assert "every alias name must be a lowercase DNS label" in _error_for(
        Model, {"spec": {"aliases": {"Prod": 1}}}
    )
    assert "greater than or equal to 1" in _error_for(
        Model, {"spec": {"aliases": {"production": 0}}}
    )


def test_nan_metrics_are_refused_since_json_cannot_carry_them() -> None:
    with pytest.raises(ValidationError):
        TrainingRunStatus(metrics={"loss": math.nan})
