"""Models and datasets on a real S3-compatible server (SeaweedFS in the local cluster), with the
in-process operator and real trainer and server pods: iris trained to s3:// and served from it,
the node's model cache (a second pod downloads nothing), a tampered object never served, the
store's failures reported with the store and the cause and never a secret, a 200 MB model
intact both ways, and CSV and Parquet objects of the same rows with one digest."""

import filecmp
import io
import json
import uuid
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.neighbors import KNeighborsClassifier  # type: ignore[import-untyped]

from cairn.serving.fetch import fetch
from cairn.training import TrainingSession
from cairn.training.datasets import load_dataset
from tests.support.deployments import (
    create_deployment,
    infer,
    service_base,
    serving_pods,
    wait_degraded,
    wait_serving,
)
from tests.support.kube import Kube
from tests.support.object_store import ObjectStore
from tests.support.operator import RunningOperator
from tests.support.training import (
    GROUP,
    TREE_TRAINER,
    VERSION,
    condition,
    create_model,
    create_run,
    get,
    script_config_map,
    version_manifest,
    wait_for_phase,
    wait_for_run,
)
from tests.support.wait import wait_for
from tests.support.workloads import TRAINER_IMAGE, pod_logs

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
TRAIN_TIMEOUT = 240
SERVE_TIMEOUT = 240
X, Y = load_iris(return_X_y=True)


# hack/localkube makes it on the node, writable by the serving pods (uid 1000).
NODE_CACHE = Path("/var/cache/cairn/models")


@pytest.fixture
def node_cache(k8s: Kube, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The node's model cache turned on, as a platform team opts in (chart value
    defaults.modelCacheDir): a hostPath, which the restricted Pod Security Standard the test
    namespaces enforce refuses, so this namespace allows privileged pods."""
    monkeypatch.setenv("CAIRN_MODEL_CACHE_DIR", str(NODE_CACHE))  # read at each pod build
    level = {"pod-security.kubernetes.io/enforce": "privileged"}
    k8s.core.patch_namespace(namespace, {"metadata": {"labels": level}})
    return NODE_CACHE


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # cluster addresses never go to a proxy
    return session


def upload_model(store: ObjectStore, uri: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real model saved and uploaded by the SDK from this machine; returns its digest."""
    for name, value in store.environ().items():
        monkeypatch.setenv(name, value)
    session = TrainingSession(
        {"CAIRN_OUTPUT_DIR": str(tmp), "CAIRN_OUTPUT_URI": uri}, finish_at_exit=False
    )
    session.save_model(LogisticRegression(max_iter=500).fit(X, Y), sample_input=X[:1])
    digest: str = json.loads(session.summary())["artifact"]["digest"]
    return digest


def create_version(k8s: Kube, namespace: str, uri: str, digest: str, number: int = 1) -> None:
    body = version_manifest("iris", number, {"uri": uri, "digest": digest}, metrics={"a": 1.0})
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", body)


def fetch_metrics(pod: Any) -> dict[str, float]:
    """The pod's artifact metrics, by sample name and source."""
    text = http().get(f"http://{pod.status.pod_ip}:8080/metrics", timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("cairn_serving_artifact_"):
                source = sample.labels.get("source")
                found[sample.name + (f"/{source}" if source else "")] = sample.value
    return found


def test_iris_trained_to_s3_is_served_from_it_and_a_second_pod_downloads_nothing(
    k8s: Kube,
    namespace: str,
    node_cache: Path,
    operator: RunningOperator,
    object_store: ObjectStore,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The namespace's default Secret: neither the run nor the ModelDeployment names one.
    k8s.core.create_namespaced_secret(namespace, object_store.credentials_secret("cairn-storage"))
    script_config_map(k8s, namespace, "train", TREE_TRAINER)
    output = f"s3://{bucket}/iris/iris-1"
    create_run(
        k8s, namespace, "iris-1", model="iris", code="train", image=TRAINER_IMAGE,
        output={"uri": output},
    )  # fmt: skip

    run = wait_for_run(
        k8s, namespace, "iris-1", "Succeeded", timeout=TRAIN_TIMEOUT, registered=True
    )
    artifact = run["status"]["artifact"]
    assert artifact["uri"] == output
    keys = {
        item["Key"] for item in object_store.client().list_objects_v2(Bucket=bucket)["Contents"]
    }
    # The model, its metadata and its training data's profile (for drift monitoring).
    assert keys == {
        f"iris/iris-1/{name}" for name in ("model.joblib", "cairn-model.json", "baseline.json")
    }
    # What the store holds is what the run recorded.
    for name, value in object_store.environ().items():
        monkeypatch.setenv(name, value)
    got = fetch(output, artifact["digest"], tmp_path / "cache")
    assert not got.cache_hit and got.manifest and got.manifest.digest == artifact["digest"]
    assert got.downloaded_bytes == artifact["size"]
    wait_for_phase(k8s, namespace, "iris-v1", "Approved")

    create_deployment(k8s, namespace, "iris", version=1)
    wait_serving(k8s, namespace, "iris", 1)
    answer = infer(service_base(k8s, namespace, "iris"))
    assert answer["model_version"] == "1" and len(answer["outputs"][0]["data"]) == 3
    [first] = serving_pods(k8s, namespace, "iris")
    downloaded = fetch_metrics(first)
    assert downloaded["cairn_serving_artifact_fetches_total/store"] == 1
    assert downloaded["cairn_serving_artifact_downloaded_bytes_total"] == artifact["size"]

    # A second pod of the version on the node finds it in the node's cache.
    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", "iris", {"spec": {"replicas": 2}}
    )
    wait_for(
        lambda: (
            (get(k8s, namespace, "modeldeployments", "iris") or {})
            .get("status", {})
            .get("readyReplicas")
            == 2
        ),
        timeout=SERVE_TIMEOUT,
        message="a second ready serving pod",
    )
    [second] = [
        p for p in serving_pods(k8s, namespace, "iris") if p.metadata.name != first.metadata.name
    ]
    cached = fetch_metrics(second)
    assert cached["cairn_serving_artifact_fetches_total/cache"] == 1
    assert "cairn_serving_artifact_fetches_total/store" not in cached
    assert cached["cairn_serving_artifact_downloaded_bytes_total"] == 0
    assert "nothing downloaded" in pod_logs(k8s, namespace, second.metadata.name)


def test_a_200_mb_model_uploads_in_parts_and_downloads_intact(
    object_store: ObjectStore, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in object_store.environ().items():
        monkeypatch.setenv(name, value)
    rng = np.random.default_rng(0)
    features = rng.random((3_200_000, 8))  # 205 MB of float64 the model keeps
    labels = rng.integers(0, 3, len(features))
    model = KNeighborsClassifier(algorithm="brute").fit(features, labels)
    uri = f"s3://{bucket}/big/v1"
    session = TrainingSession(
        {"CAIRN_OUTPUT_DIR": str(tmp_path / "saved"), "CAIRN_OUTPUT_URI": uri},
        finish_at_exit=False,
    )
    saved = session.save_model(model, sample_input=features[:1])
    reported = json.loads(session.summary())["artifact"]
    assert reported["digest"] == saved.digest and reported["size"] > 200_000_000

    head = object_store.client().head_object(Bucket=bucket, Key="big/v1/model.joblib")
    assert head["ContentLength"] > 200_000_000
    assert "-" in head["ETag"]  # a multipart upload's ETag: <md5 of the parts' md5s>-<parts>

    got = fetch(uri, saved.digest, tmp_path / "cache")
    assert got.manifest is not None and got.manifest.digest == saved.digest
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path / "saved", got.directory, ["model.joblib", "cairn-model.json"], shallow=False
    )
    assert (mismatch, errors) == ([], []) and len(match) == 2
    again = fetch(uri, saved.digest, tmp_path / "cache")
    assert again.cache_hit and again.downloaded_bytes == 0 and again.directory == got.directory


def test_a_tampered_object_is_never_served(
    k8s: Kube,
    namespace: str,
    node_cache: Path,
    operator: RunningOperator,
    object_store: ObjectStore,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = f"s3://{bucket}/iris/v1"
    digest = upload_model(object_store, uri, tmp_path, monkeypatch)
    create_model(k8s, namespace, "iris", {})
    create_version(k8s, namespace, uri, digest)
    wait_for_phase(k8s, namespace, "iris-v1", "Approved")
    other = io.BytesIO()
    joblib.dump(LogisticRegression(C=0.01, max_iter=500).fit(X, Y), other)
    object_store.client().put_object(
        Bucket=bucket, Key="iris/v1/model.joblib", Body=other.getvalue()
    )
    k8s.core.create_namespaced_secret(namespace, object_store.credentials_secret("store"))

    create_deployment(k8s, namespace, "iris", version=1, storage={"secretName": "store"})
    mdep = wait_degraded(k8s, namespace, "iris", "ArtifactUnavailable", SERVE_TIMEOUT)

    message = condition(mdep, "Degraded")["message"]
    assert "iris-v1 (stable)" in message and "ArtifactDigestMismatch" in message
    assert digest in message
    assert condition(mdep, "Available")["status"] == "False"
    assert not any(
        status.ready
        for pod in serving_pods(k8s, namespace, "iris")
        for status in pod.status.container_statuses or []
    )
    # Nothing that failed its digest is kept in the node's cache.
    assert not (node_cache / digest.replace(":", "-")).exists()


def everything_said(k8s: Kube, namespace: str, pods: list[Any], *objects: Body) -> str:
    """Statuses, every Event of the namespace, the pods' logs and termination messages."""
    said = [json.dumps(obj.get("status")) for obj in objects]
    said += [f"{e.reason} {e.message}" for e in k8s.core.list_namespaced_event(namespace).items]
    for pod in pods:
        said.append(pod_logs(k8s, namespace, pod.metadata.name))
        for status in pod.status.container_statuses or []:
            for state in (status.state, status.last_state):
                if state and state.terminated and state.terminated.message:
                    said.append(state.terminated.message)
    return "\n".join(said)


def store_failure_secrets(k8s: Kube, namespace: str, store: ObjectStore) -> str:
    """Secrets `wrong-key` (a wrong secret key, returned) `good` and `unreachable` (an endpoint
    no one serves)."""
    wrong = f"wrong-{uuid.uuid4().hex}"
    k8s.core.create_namespaced_secret(
        namespace, store.credentials_secret("wrong-key", secret_key=wrong)
    )
    k8s.core.create_namespaced_secret(namespace, store.credentials_secret("good"))
    k8s.core.create_namespaced_secret(
        namespace,
        store.credentials_secret("unreachable", endpoint="http://nothing.cairn-storage.svc:8333"),
    )
    return wrong


def test_store_failures_fail_the_run_with_the_store_and_the_cause_and_no_secret(
    k8s: Kube, namespace: str, operator: RunningOperator, object_store: ObjectStore, bucket: str
) -> None:
    wrong = store_failure_secrets(k8s, namespace, object_store)
    script_config_map(k8s, namespace, "train", TREE_TRAINER)
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    cases = {
        "wrong-key": (f"s3://{bucket}/a", "wrong-key", "SignatureDoesNotMatch"),
        "no-bucket": (f"s3://{missing}/a", "good", "NoSuchBucket"),
        "unreachable": (f"s3://{bucket}/c", "unreachable", "cannot connect"),
    }
    for name, (uri, secret, _) in cases.items():
        create_run(
            k8s, namespace, name, model="iris", code="train", image=TRAINER_IMAGE,
            output={"uri": uri}, storage={"secretName": secret},
        )  # fmt: skip

    runs = {
        name: wait_for_run(k8s, namespace, name, "Failed", timeout=TRAIN_TIMEOUT) for name in cases
    }
    for name, (uri, _, cause) in cases.items():
        status = runs[name]["status"]
        assert status["failureReason"] == "ArtifactUploadFailed", status
        failed = condition(runs[name], "Failed")
        assert failed["reason"] == "ArtifactUploadFailed"
        assert f"uploading to {uri}/" in failed["message"] and cause in failed["message"]
    assert "http://nothing.cairn-storage.svc:8333" in runs["unreachable"]["status"]["message"]
    assert object_store.host_endpoint not in runs["wrong-key"]["status"]["message"]

    pods = list(k8s.core.list_namespaced_pod(namespace, label_selector="cairn.dev/run").items)
    said = everything_said(k8s, namespace, pods, *runs.values())
    assert "SignatureDoesNotMatch" in said  # the check reads what was really said
    assert wrong not in said and object_store.secret_key not in said
    assert object_store.access_key not in said


def test_store_failures_keep_a_deployment_unready_naming_the_version_and_cause(
    k8s: Kube,
    namespace: str,
    operator: RunningOperator,
    object_store: ObjectStore,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = store_failure_secrets(k8s, namespace, object_store)
    uri = f"s3://{bucket}/iris/v1"
    digest = upload_model(object_store, uri, tmp_path, monkeypatch)
    create_model(k8s, namespace, "iris", {})
    create_version(k8s, namespace, uri, digest, 1)
    create_version(k8s, namespace, f"s3://missing-{uuid.uuid4().hex[:12]}/iris/v2", digest, 2)
    for number in (1, 2):
        wait_for_phase(k8s, namespace, f"iris-v{number}", "Approved")
    cases = {
        "wrong-key": (1, "wrong-key", "SignatureDoesNotMatch"),
        "no-bucket": (2, "good", "NoSuchBucket"),
        "unreachable": (1, "unreachable", "cannot connect"),
    }
    for name, (version, secret, _) in cases.items():
        create_deployment(k8s, namespace, name, version=version, storage={"secretName": secret})

    found = {
        name: wait_degraded(k8s, namespace, name, "ArtifactUnavailable", SERVE_TIMEOUT)
        for name in cases
    }
    for name, (version, _, cause) in cases.items():
        message = condition(found[name], "Degraded")["message"]
        assert f"iris-v{version} (stable)" in message and "ArtifactDownloadFailed" in message
        assert cause in message, message
    pods = [pod for name in cases for pod in serving_pods(k8s, namespace, name)]
    said = everything_said(k8s, namespace, pods, *found.values())
    assert "NoSuchBucket" in said
    assert wrong not in said and object_store.secret_key not in said
    assert object_store.access_key not in said


def test_csv_and_parquet_objects_of_the_same_rows_give_one_dataset_digest(
    k8s: Kube, namespace: str, operator: RunningOperator, object_store: ObjectStore, bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    columns = {f"x{i}": X[:, i] for i in range(4)} | {"target": Y}
    csv = tmp_path / "iris.csv"
    csv.write_text(
        ",".join(columns)
        + "\n"
        + "".join(
            ",".join(str(v) for v in row) + "\n" for row in zip(*columns.values(), strict=True)
        )
    )
    parquet = tmp_path / "iris.parquet"
    pq.write_table(pa.table(columns), parquet)
    s3 = object_store.client()
    s3.upload_file(str(csv), bucket, "data/iris.csv")
    s3.upload_file(str(parquet), bucket, "data/iris.parquet")
    k8s.core.create_namespaced_secret(namespace, object_store.credentials_secret("cairn-storage"))
    script_config_map(k8s, namespace, "train", TREE_TRAINER)
    for kind in ("csv", "parquet"):
        create_run(
            k8s, namespace, f"from-{kind}", model="iris", code="train", image=TRAINER_IMAGE,
            dataset={"uri": f"s3://{bucket}/data/iris.{kind}"},
            output={"uri": f"s3://{bucket}/runs/{kind}"},
        )  # fmt: skip

    digests = {
        kind: wait_for_run(k8s, namespace, f"from-{kind}", "Succeeded", timeout=TRAIN_TIMEOUT)[
            "status"
        ]["dataset"]
        for kind in ("csv", "parquet")
    }
    assert digests["csv"]["uri"].endswith(".csv") and digests["parquet"]["uri"].endswith(".parquet")
    assert digests["csv"]["digest"] == digests["parquet"]["digest"]
    assert digests["csv"]["digest"] == load_dataset(f"file://{csv}").digest
