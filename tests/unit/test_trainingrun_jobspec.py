"""The Job built from a TrainingRun's spec."""

import json
from typing import Any

import pytest

from cairn.api import TrainingRun
from cairn.controllers.trainingrun import jobspec
from cairn.controllers.trainingrun.output import (
    ARTIFACTS_MOUNT,
    InvalidOutput,
    output_mount,
    output_uri,
)


def run(**spec: Any) -> TrainingRun:
    return TrainingRun.model_validate(
        {
            "metadata": {"name": "iris-1", "namespace": "ml", "uid": "u1"},
            "spec": {"model": "iris", **spec},
        }
    )


def build_job(r: TrainingRun) -> dict[str, Any]:
    return jobspec.build_job(r, output_mount(r), output_uri(r))


def env_of(job: dict[str, Any]) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_contract_env_and_default_output() -> None:
    r = run(params={"n": 3}, dataset={"uri": "sklearn://iris"})
    job = build_job(r)
    env = env_of(job)
    assert env["CAIRN_RUN"] == "iris-1"
    assert env["CAIRN_MODEL"] == "iris"
    assert json.loads(env["CAIRN_PARAMS"]) == {"n": 3}
    assert env["CAIRN_DATASET_URI"] == "sklearn://iris"
    assert env["CAIRN_OUTPUT_URI"] == "pvc://cairn-artifacts/iris/iris-1"
    assert env["CAIRN_OUTPUT_DIR"] == f"{ARTIFACTS_MOUNT}/iris/iris-1"
    volume = job["spec"]["template"]["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == "cairn-artifacts"


def test_user_env_cannot_replace_the_contract() -> None:
    r = run(env=[{"name": "CAIRN_RUN", "value": "spoof"}])
    container = build_job(r)["spec"]["template"]["spec"]["containers"][0]
    last = {e["name"]: e["value"] for e in container["env"]}  # the kubelet keeps the last one
    assert last["CAIRN_RUN"] == "iris-1"


def test_code_from_a_config_map_becomes_the_command() -> None:
    r = run(code={"configMap": {"name": "iris-code", "key": "train.py"}})
    pod = build_job(r)["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["python", "/opt/cairn/code/train.py"]
    code = next(v for v in pod["volumes"] if v["name"] == "code")
    assert code["configMap"]["items"] == [{"key": "train.py", "path": "train.py"}]


def test_job_fields_pass_through() -> None:
    r = run(
        backoffLimit=2,
        activeDeadlineSeconds=60,
        suspend=True,
        ttlSecondsAfterFinished=30,
        resources={"limits": {"nvidia.com/gpu": 1, "memory": "1Gi"}},
        nodeSelector={"gpu": "yes"},
        serviceAccountName="trainer",
    )
    job = build_job(r)
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 60
    assert job["spec"]["suspend"] is True
    assert job["spec"]["ttlSecondsAfterFinished"] == 30
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"gpu": "yes"}
    assert pod["serviceAccountName"] == "trainer"
    assert pod["restartPolicy"] == "Never"


@pytest.mark.parametrize("uri", ["pvc://claim", "pvc://claim/../x", "s3://b/k"])
def test_unusable_output_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidOutput, match=r"spec\.output\.uri"):
        output_mount(run(output={"uri": uri}))
