"""The Job built from a TrainingRun's spec."""

import json
from typing import Any

import pytest

from cairn.api import TrainingRun
from cairn.api.trainingrun import ChampionRef
from cairn.controllers.trainingrun import jobspec
from cairn.storage import ARTIFACTS_MOUNT


def run(**spec: Any) -> TrainingRun:
    return TrainingRun.model_validate(
        {
            "metadata": {"name": "iris-1", "namespace": "ml", "uid": "u1"},
            "spec": {"model": "iris", **spec},
        }
    )


def build_job(r: TrainingRun, champion: ChampionRef | None = None) -> dict[str, Any]:
    return jobspec.build_job(r, champion)


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


@pytest.mark.parametrize("uri", ["pvc://claim", "pvc://claim/../x", "s3://b/k", "s3://bucket"])
def test_unusable_output_uris_are_refused(uri: str) -> None:
    with pytest.raises(jobspec.Unmountable, match=r"spec\.output\.uri"):
        build_job(run(output={"uri": uri}))


DIGEST = "sha256:" + "c" * 64


def mounts_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {
        m["mountPath"]: {**m, **volumes[m["name"]]} for m in pod["containers"][0]["volumeMounts"]
    }


def test_a_dataset_on_a_claim_is_mounted_read_only_where_the_sdk_finds_it() -> None:
    job = build_job(run(dataset={"uri": "pvc://datasets/wine/wine.csv"}))
    env = env_of(job)
    assert env["CAIRN_DATASET_URI"] == "pvc://datasets/wine/wine.csv"
    assert env["CAIRN_DATASET_PATH"] == "/cairn/claims/datasets/wine/wine.csv"
    mounted = mounts_of(job)["/cairn/claims/datasets"]
    assert mounted["readOnly"] and mounted["persistentVolumeClaim"]["claimName"] == "datasets"
    # On the artifacts claim, the run's one writable mount serves it: the claim is mounted once.
    shared = build_job(run(dataset={"uri": "pvc://cairn-artifacts/data/wine.csv"}))
    assert env_of(shared)["CAIRN_DATASET_PATH"] == f"{ARTIFACTS_MOUNT}/data/wine.csv"
    assert len(mounts_of(shared)) == 1
    # Built-in data needs no mount.
    assert "CAIRN_DATASET_PATH" not in env_of(build_job(run(dataset={"uri": "sklearn://iris"})))


def test_the_champion_is_mounted_read_only_with_its_version_and_digest() -> None:
    champion = ChampionRef(version=3, uri="pvc://models/iris/iris-3", digest=DIGEST)
    job = build_job(run(), champion)
    env = env_of(job)
    assert env["CAIRN_CHAMPION_DIR"] == "/cairn/claims/models/iris/iris-3"
    assert (env["CAIRN_CHAMPION_VERSION"], env["CAIRN_CHAMPION_DIGEST"]) == ("3", DIGEST)
    assert mounts_of(job)["/cairn/claims/models"]["readOnly"]
    # The Job remembers what it was given, for the run's status after a restart.
    assert jobspec.champion_of(job) == champion
    assert jobspec.champion_of(build_job(run())) is None
