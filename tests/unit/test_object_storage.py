"""The pure parts of s3:// support: the digest-keyed cache, how store errors are told (without
secrets), the trainer's failure report, and what the operator gives pods that use a store.
The store itself is exercised for real in tests/integration/test_object_storage.py."""

import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from cairn.api import ContinuousTraining, TrainingRun
from cairn.api.modeldeployment import ModelDeploymentReason
from cairn.api.trainingrun import ChampionRef
from cairn.controllers.continuoustraining import probe
from cairn.controllers.deployment import manifests
from cairn.controllers.deployment.rollout import Plan, TrackPlan
from cairn.controllers.deployment.status import Observed, artifact_problem, compute_status
from cairn.controllers.deployment.target import Target, resolve
from cairn.controllers.trainingrun import jobspec
from cairn.controllers.trainingrun.observe import FailedContainer, describe_failure
from cairn.serving.config import ConfigError, parse_config
from cairn.storage import DigestCache, directory_digest, parse_artifact_uri
from cairn.storage.s3 import REDACTED, failure, redact
from cairn.storage.transfer import _HashingWriter
from cairn.training.summary import encode_failure
from tests.unit.test_deployment_logic import DIGEST, deployment, mdep, spec_of, version

Body = dict[str, Any]
S3_V1 = Target("iris", 1, "s3://models/iris/iris-1", DIGEST)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_ENDPOINT_URL_S3": "http://seaweedfs.cairn-storage.svc:8333",
}


# --- the node's model cache ------------------------------------------------------------------


def stage(cache: DigestCache, content: bytes) -> tuple[Path, str]:
    staged = cache.staging()
    (staged / "model.joblib").write_bytes(content)
    return staged, directory_digest(staged)


def test_an_entry_appears_whole_under_its_digest(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path / "cache")
    staged, digest = stage(cache, b"weights")
    assert cache.lookup(digest) is None

    entry = cache.insert(staged, digest)

    assert entry == tmp_path / "cache" / digest.replace(":", "-")
    assert cache.lookup(digest) == entry and not staged.exists()
    assert directory_digest(entry) == digest


def test_the_second_copy_of_an_entry_is_dropped(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path)
    first, digest = stage(cache, b"same")
    second, _ = stage(cache, b"same")

    assert cache.insert(first, digest) == cache.insert(second, digest)
    assert not second.exists()
    assert [path.name for path in tmp_path.iterdir()] == [digest.replace(":", "-")]


def test_prune_removes_the_least_recently_used_but_never_the_one_in_use(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path)
    digests = []
    for index in range(3):
        staged, digest = stage(cache, bytes([index]) * 1000)
        entry = cache.insert(staged, digest)
        os.utime(entry, (time.time() - 100 + index, time.time() - 100 + index))
        digests.append(digest)
    cache.lookup(digests[0])  # used just now: the most recent
    stale = cache.staging()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    removed = cache.prune(max_bytes=2000, keep=digests[2])

    assert {path.name for path in removed} == {digests[1].replace(":", "-"), stale.name}
    assert cache.lookup(digests[0]) and cache.lookup(digests[2])


# --- downloads hashed as they arrive --------------------------------------------------------


@pytest.mark.parametrize("order", ["in order", "reversed", "shuffled", "retried"])
def test_parts_written_in_any_order_are_hashed_as_the_whole_file(
    tmp_path: Path, order: str
) -> None:
    data = bytes(random.Random(0).randbytes(1000))
    parts = [(offset, data[offset : offset + 64]) for offset in range(0, len(data), 64)]
    if order == "reversed":
        parts.reverse()
    elif order == "shuffled":
        random.Random(1).shuffle(parts)
    elif order == "retried":  # a part sent again from its start, some of it already hashed
        parts = [*parts[:5], (0, data[:100]), *parts[5:]]
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file, len(data)) as writer:
        for offset, chunk in parts:
            writer.write_at(offset, chunk)
        writer.complete(len(data))
    assert writer.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert writer.size == len(data) and (tmp_path / "f").read_bytes() == data


def test_a_download_with_a_gap_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w+b") as file, _HashingWriter(file, 15) as writer:
        writer.write_at(10, b"later")
        with pytest.raises(OSError, match="gap: 0 of 15 bytes"):
            writer.complete(15)
        with pytest.raises(OSError, match="outside the file's 15"):
            writer.write_at(12, b"too long")


# --- telling what the store said, never a secret ----------------------------------------------


def client_error(code: str, message: str, status: int = 403) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (client_error("NoSuchBucket", "The specified bucket does not exist", 404), "NoSuchBucket",
         "the bucket does not exist: create it"),
        (client_error("SignatureDoesNotMatch", f"bad signature for {SECRET}"),
         "SignatureDoesNotMatch", "fix AWS_SECRET_ACCESS_KEY"),
        (EndpointConnectionError(endpoint_url="http://seaweedfs.cairn-storage.svc:8333/models"),
         "EndpointUnreachable", "cannot connect"),
        (NoCredentialsError(), "NoCredentials", "workload identity"),
    ],
)  # fmt: skip
def test_store_failures_name_the_store_the_cause_and_the_fix(
    error: Exception, code: str, said: str
) -> None:
    told = failure(error, "uploading to", parse_artifact_uri("s3://models/iris/1"), ENV)

    assert told.code == code
    text = str(told)
    assert text.startswith("uploading to s3://models/iris/1 at http://seaweedfs.cairn-storage")
    assert said in text
    assert SECRET not in text and "AKIAEXAMPLE" not in text


def test_redact_replaces_every_credential_value() -> None:
    text = f"key AKIAEXAMPLE secret {SECRET} and more"
    assert redact(text, ENV) == f"key {REDACTED} secret {REDACTED} and more"
    assert redact("nothing", {"AWS_SECRET_ACCESS_KEY": ""}) == "nothing"


# --- the trainer's failure report and the run's reason -----------------------------------------


def test_an_upload_failure_is_the_runs_reason_with_the_stores_message() -> None:
    message = encode_failure("ArtifactUploadFailed", "uploading to s3://m/x failed: NoSuchBucket")
    failed = FailedContainer("iris-1-abc", "trainer", "Error", 1, message.decode())

    reason, text = describe_failure(failed)

    assert reason == "ArtifactUploadFailed"
    assert text == "container trainer of pod iris-1-abc: uploading to s3://m/x failed: NoSuchBucket"
    plain = FailedContainer("iris-1-abc", "trainer", "Error", 1, '{"failure": {"reason": "Odd"}}')
    assert describe_failure(plain)[0] == "NonZeroExit"


def test_a_long_failure_message_is_cut_to_fit_the_termination_message() -> None:
    encoded = encode_failure("ArtifactUploadFailed", "x" * 10_000)
    assert len(encoded) <= 4096
    assert json.loads(encoded)["failure"]["message"].endswith("...")


# --- what pods that use a store are given -----------------------------------------------------


def run(**spec: Any) -> TrainingRun:
    return TrainingRun.model_validate(
        {"metadata": {"name": "iris-1", "namespace": "ml"}, "spec": {"model": "iris", **spec}}
    )


def container_of(pod_spec: Body) -> Body:
    containers: list[Body] = pod_spec["containers"]
    return containers[0]


def test_an_s3_output_is_written_to_an_empty_dir_and_uploaded_with_the_named_secret() -> None:
    job = jobspec.build_job(
        run(output={"uri": "s3://models/iris/iris-1"}, storage={"secretName": "store"})
    )
    pod = job["spec"]["template"]["spec"]
    trainer = container_of(pod)
    env = {e["name"]: e["value"] for e in trainer["env"]}

    assert env["CAIRN_OUTPUT_URI"] == "s3://models/iris/iris-1"
    assert env["CAIRN_OUTPUT_DIR"] == jobspec.UPLOAD_DIR
    assert {"name": "output", "emptyDir": {}} in pod["volumes"]
    assert not any("persistentVolumeClaim" in volume for volume in pod["volumes"])
    assert trainer["envFrom"] == [{"secretRef": {"name": "store"}}]


def test_without_a_secret_the_namespace_default_is_optional_and_pvc_runs_get_none() -> None:
    job = jobspec.build_job(run(dataset={"uri": "s3://data/iris.parquet"}))
    trainer = container_of(job["spec"]["template"]["spec"])

    assert trainer["envFrom"] == [{"secretRef": {"name": "cairn-storage", "optional": True}}]
    assert "CAIRN_DATASET_PATH" not in {e["name"] for e in trainer["env"]}
    on_claim = container_of(jobspec.build_job(run())["spec"]["template"]["spec"])
    assert "envFrom" not in on_claim


def test_an_s3_champion_is_downloaded_by_the_sdk_not_mounted() -> None:
    champion = ChampionRef(version=3, uri="s3://models/iris/iris-3", digest=DIGEST)
    job = jobspec.build_job(run(), champion)
    env = {e["name"]: e["value"] for e in container_of(job["spec"]["template"]["spec"])["env"]}

    assert env["CAIRN_CHAMPION_URI"] == "s3://models/iris/iris-3"
    assert "CAIRN_CHAMPION_DIR" not in env and env["CAIRN_CHAMPION_DIGEST"] == DIGEST


def test_an_s3_version_is_a_target_and_its_pods_download_through_the_node_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAIRN_MODEL_CACHE_DIR", "/var/cache/cairn/models")
    assert (
        resolve(spec_of(version=1), 1, version("Approved", True, uri=S3_V1.artifact_uri)) == S3_V1
    )

    built = manifests.build_deployment(
        mdep(storage={"secretName": "store"}, serviceAccountName="reader"), "stable", S3_V1, 2
    )
    pod = built["spec"]["template"]["spec"]
    server = container_of(pod)
    args = server["args"]

    assert args[: args.index("--name")] == [
        "--model-uri", "s3://models/iris/iris-1", "--cache-dir", "/cairn/cache", "--strict"
    ]  # fmt: skip
    assert args[args.index("--expected-digest") + 1] == DIGEST
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["model-cache"]["hostPath"] == {
        "path": "/var/cache/cairn/models",
        "type": "DirectoryOrCreate",
    }
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert server["envFrom"] == [{"secretRef": {"name": "store"}}]
    assert server["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert pod["serviceAccountName"] == "reader"
    assert pod["automountServiceAccountToken"] is False


def test_without_a_node_cache_each_pod_downloads_into_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CAIRN_MODEL_CACHE_DIR", raising=False)  # the default: none
    pod = manifests.build_deployment(mdep(), "stable", S3_V1, 1)["spec"]["template"]["spec"]
    assert {"name": "model-cache", "emptyDir": {}} in pod["volumes"]


def serving_pod(message: str, ready: bool = False) -> Body:
    return {
        "metadata": {"name": "iris-stable-abc"},
        "status": {
            "containerStatuses": [
                {
                    "name": "server",
                    "ready": ready,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 3, "message": message}},
                }
            ]
        },
    }


def test_a_pods_download_failure_degrades_the_deployment_naming_version_and_reason() -> None:
    said = "ArtifactDownloadFailed: model 'iris' version 1 is not served: NoSuchBucket (...)"
    assert artifact_problem([serving_pod("exit"), serving_pod(said, ready=True)], "x") is None
    problem = artifact_problem([serving_pod(said)], "iris-v1 (stable)")
    assert problem == f"pods of iris-v1 (stable) cannot serve it: {said}"

    seen = Observed(
        S3_V1, Plan(TrackPlan(S3_V1, 1)), deployment(S3_V1, ready=0), artifact_problem=problem
    )
    status = compute_status(mdep(), seen)
    degraded = next(c for c in status.conditions or [] if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == (
        "True",
        ModelDeploymentReason.ARTIFACT_UNAVAILABLE,
    )
    assert degraded.message.startswith("pods of iris-v1 (stable) cannot serve it: Artifact")


def test_the_server_needs_a_digest_to_download_and_one_source() -> None:
    with pytest.raises(ConfigError, match="needs --expected-digest"):
        parse_config(["--model-uri", "s3://m/x", "--name", "iris"], {})
    with pytest.raises(ConfigError, match="exactly one of --model-dir"):
        parse_config(["--model-uri", "s3://m/x", "--model-dir", "/m", "--name", "iris"], {})
    with pytest.raises(ConfigError, match="only s3://"):
        parse_config(["--model-uri", "gs://m/x", "--expected-digest", DIGEST, "--name", "i"], {})
    config = parse_config(
        ["--model-uri", "s3://m/x", "--expected-digest", DIGEST, "--name", "iris"],
        {"CAIRN_CACHE_DIR": "/cairn/cache"},
    )
    assert (config.model_dir, config.cache_dir) == (None, Path("/cairn/cache"))


def test_the_probe_of_an_s3_dataset_mounts_nothing_and_reports_the_objects_version() -> None:
    ct = ContinuousTraining.model_validate(
        {
            "metadata": {"name": "churn", "namespace": "ml"},
            "spec": {
                "model": "churn",
                "template": {"dataset": {"uri": "s3://data/churn.csv"}},
                "triggers": {"dataset": {"checkEvery": "1m"}},
            },
        }
    )
    pod = probe.build_pod(ct, "churn-probe-1")
    container = container_of(pod["spec"])

    assert pod["spec"]["volumes"] == []
    assert "CAIRN_DATASET_PATH" not in {e["name"] for e in container["env"]}
    assert container["envFrom"] == [{"secretRef": {"name": "cairn-storage", "optional": True}}]
    finished = {
        "metadata": {"name": "churn-probe-1"},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {"state": {"terminated": {"message": '{"digest":"sha256:1","version":"ETag a"}'}}}
            ],
        },
    }
    assert probe.result_of(finished) == probe.Result("sha256:1", None, "ETag a")
