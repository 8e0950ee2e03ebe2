"""No Secret value, token or credential ever appears where Cairn reports (issue #15): after a
workload that used object-store keys from Secrets — iris trained from an s3:// dataset to s3://
and served from it, and the same with a wrong secret key, so that the store refuses and errors
are reported — every object in the namespace (each Cairn kind with its status, the pods, Jobs
and Deployments the operator made), every Event, the operator's debug log, every container's
log and termination message and what `cairn` prints are searched for the keys, as they are and
base64-encoded. None may be there."""

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiextensionsV1Api
from kubernetes.client.exceptions import ApiException

from tests.support.cli import ok
from tests.support.cluster import Cluster
from tests.support.deployments import (
    X,
    Y,
    create_deployment,
    infer,
    service_base,
    wait_degraded,
    wait_serving,
)
from tests.support.kube import Kube
from tests.support.object_store import ObjectStore
from tests.support.operator import OperatorProcess
from tests.support.training import (
    GROUP,
    TREE_TRAINER,
    VERSION,
    condition,
    create_run,
    script_config_map,
    wait_for_phase,
    wait_for_run,
)
from tests.support.workloads import TRAINER_IMAGE, pod_logs

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
TRAIN_TIMEOUT = 240
SERVE_TIMEOUT = 240


def cairn_objects(k8s: Kube, namespace: str) -> dict[str, Body]:
    """Every object of every Cairn kind in the namespace, whole (spec, metadata, status)."""
    found = {}
    for crd in ApiextensionsV1Api(k8s.api_client).list_custom_resource_definition().items:
        if crd.spec.group != GROUP or crd.spec.scope != "Namespaced":
            continue
        plural = crd.spec.names.plural
        listing = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        for obj in listing["items"]:
            found[f"{crd.spec.names.kind} {obj['metadata']['name']}"] = obj
    return found


def made_objects(k8s: Kube, namespace: str) -> dict[str, Body]:
    """The pods, Jobs, Deployments, ReplicaSets, Services and ConfigMaps in the namespace."""
    lists = {
        "Pod": k8s.core.list_namespaced_pod,
        "Job": k8s.batch.list_namespaced_job,
        "Deployment": k8s.apps.list_namespaced_deployment,
        "ReplicaSet": k8s.apps.list_namespaced_replica_set,
        "Service": k8s.core.list_namespaced_service,
        "ConfigMap": k8s.core.list_namespaced_config_map,
    }
    serialize = k8s.api_client.sanitize_for_serialization
    return {
        f"{kind} {item.metadata.name}": serialize(item)
        for kind, list_them in lists.items()
        for item in list_them(namespace).items
    }


def container_logs(k8s: Kube, namespace: str, pod: Body) -> dict[str, str]:
    """Each container's log, and that of its previous run when it restarted."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    logs = {}
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        runs = [False] + ([True] if container.get("restartCount") else [])
        for previous in runs:
            try:
                said = pod_logs(k8s, namespace, name, container["name"], previous=previous)
            except ApiException as error:  # a container that never started has no log
                said = f"(no log: {error.status} {error.reason})"
            logs[f"log of {name}/{container['name']}{' (previous)' if previous else ''}"] = said
    return logs


def everything_said(
    k8s: Kube, namespace: str, operator_log: Path, cli: dict[str, str]
) -> dict[str, str]:
    """Where each thing a user can read came from → its text."""
    said = {where: json.dumps(obj) for where, obj in cairn_objects(k8s, namespace).items()}
    made = made_objects(k8s, namespace)
    said |= {where: json.dumps(obj) for where, obj in made.items()}
    for where, pod in made.items():
        if where.startswith("Pod "):
            said |= container_logs(k8s, namespace, pod)
    serialize = k8s.api_client.sanitize_for_serialization
    for event in k8s.core.list_namespaced_event(namespace).items:
        said[f"Event {event.metadata.name} ({event.reason})"] = json.dumps(serialize(event))
    said["the operator's log"] = operator_log.read_text(errors="replace")
    return said | cli


def leaks(said: dict[str, str], secrets: dict[str, str]) -> set[tuple[str, str]]:
    """(which secret, where) for each secret value found; the values are never repeated."""
    return {
        (what, where)
        for where, text in said.items()
        for what, value in secrets.items()
        if value in text
    }


def operator_credentials(kubeconfig: str) -> dict[str, str]:
    """What the operator (with the tests' kubeconfig) proves who it is with: tokens, passwords,
    client keys, and the lines of a client key's PEM."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    found = {}
    for user in config.get("users") or []:
        for field in ("token", "password", "client-key-data"):
            value = (user.get("user") or {}).get(field)
            if value:
                found[f"the kubeconfig's {field} of {user['name']}"] = str(value)
        key = (user.get("user") or {}).get("client-key-data")
        if key:
            pem = base64.b64decode(key).decode()
            body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
            found |= {
                f"line {n} of the client key of {user['name']}": line
                for n, line in enumerate(body, 1)
                if len(line) >= 32
            }
    return found


def iris_csv() -> bytes:
    rows = (",".join(str(v) for v in [*x, y]) for x, y in zip(X, Y, strict=True))
    return ("x0,x1,x2,x3,target\n" + "\n".join(rows) + "\n").encode()


def test_no_key_appears_in_a_status_an_event_a_log_or_an_error(
    cluster: Cluster,
    k8s: Kube,
    namespace: str,
    operator_process: OperatorProcess,
    object_store: ObjectStore,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The operator as users run it, logging all it ever logs (read by its startup).
    monkeypatch.setenv("CAIRN_LOG_LEVEL", "debug")
    operator_process.start()
    # A wrong secret key that the store will refuse, distinctive enough to be found anywhere.
    wrong = f"WrongKey{uuid.uuid4().hex}"
    k8s.core.create_namespaced_secret(namespace, object_store.credentials_secret("s3-keys"))
    k8s.core.create_namespaced_secret(
        namespace, object_store.credentials_secret("s3-wrong-key", secret_key=wrong)
    )
    object_store.client().put_object(Bucket=bucket, Key="data/iris.csv", Body=iris_csv())
    script_config_map(k8s, namespace, "train", TREE_TRAINER)
    dataset = {"uri": f"s3://{bucket}/data/iris.csv"}
    for name, secret in (("iris-1", "s3-keys"), ("iris-wrong-key", "s3-wrong-key")):
        create_run(
            k8s, namespace, name, model="iris", code="train", image=TRAINER_IMAGE,
            dataset=dataset, output={"uri": f"s3://{bucket}/runs/{name}"},
            storage={"secretName": secret},
        )  # fmt: skip

    # The keys were really used: the good run read its dataset from the store and wrote its
    # model there; the store refused the wrong key (with its own error code) as the other run
    # read the same dataset.
    run = wait_for_run(k8s, namespace, "iris-1", "Succeeded", timeout=TRAIN_TIMEOUT)
    assert run["status"]["dataset"]["uri"] == dataset["uri"]
    assert run["status"]["artifact"]["uri"] == f"s3://{bucket}/runs/iris-1"
    stored = object_store.client().list_objects_v2(Bucket=bucket, Prefix="runs/iris-1/")
    assert {item["Key"] for item in stored["Contents"]} >= {"runs/iris-1/model.joblib"}
    failed = wait_for_run(k8s, namespace, "iris-wrong-key", "Failed", timeout=TRAIN_TIMEOUT)
    message = condition(failed, "Failed")["message"]
    assert f"downloading {dataset['uri']}" in message and "SignatureDoesNotMatch" in message

    # Served from the store with the keys, and refused it with the wrong one.
    wait_for_phase(k8s, namespace, "iris-v1", "Approved")
    create_deployment(k8s, namespace, "iris", version=1, storage={"secretName": "s3-keys"})
    create_deployment(
        k8s, namespace, "iris-wrong-key", version=1, storage={"secretName": "s3-wrong-key"}
    )
    wait_serving(k8s, namespace, "iris", 1)
    assert infer(service_base(k8s, namespace, "iris"))["model_version"] == "1"
    refused = wait_degraded(k8s, namespace, "iris-wrong-key", "ArtifactUnavailable", SERVE_TIMEOUT)
    assert "SignatureDoesNotMatch" in condition(refused, "Degraded")["message"]

    # What `cairn` shows a user about all of it.
    cli = {
        f"cairn {' '.join(args)}": ok(*args, "-n", namespace)
        for args in (
            ("runs",),
            ("versions", "iris"),
            ("lineage", "iris", "1"),
            ("status", "iris"),
            ("status", "iris-wrong-key"),
            ("status", "iris-wrong-key", "-o", "json"),
        )
    }
    said = everything_said(k8s, namespace, operator_process.log, cli)
    # What was searched holds what was reported: the operator's own log of this workload, the
    # trainers' and servers' logs, the store's refusals.
    assert operator_process.process and operator_process.process.poll() is None  # still running
    for evidence in ("iris-wrong-key", "SignatureDoesNotMatch"):
        assert evidence in said["the operator's log"], evidence
    logs = [where for where in said if where.startswith("log of ")]
    for pod, container in (("iris-1-", "trainer"), ("iris-wrong-key-", "trainer")):
        assert any(w.startswith(f"log of {pod}") and f"/{container}" in w for w in logs), logs
    for pod in ("iris-stable-", "iris-wrong-key-stable-"):
        assert any(w.startswith(f"log of {pod}") and "/server" in w for w in logs), logs

    secrets = {
        "the access key id": object_store.access_key,
        "the secret access key": object_store.secret_key,
        "the wrong secret access key": wrong,
        **operator_credentials(cluster.kubeconfig),
    }
    secrets |= {
        f"{what} (base64)": base64.b64encode(value.encode()).decode()
        for what, value in secrets.items()
    }
    # The search finds them where they belong: in the Secrets themselves.
    serialize = k8s.api_client.sanitize_for_serialization
    kept = {
        name: json.dumps(serialize(k8s.core.read_namespaced_secret(name, namespace)))
        for name in ("s3-keys", "s3-wrong-key")
    }
    encoded = {f"{what} (base64)" for what in ("the access key id", "the secret access key")}
    encoded.add("the wrong secret access key (base64)")
    assert {what for what, _ in leaks(kept, secrets)} == encoded
    # And nowhere else.
    assert sorted(leaks(said, secrets)) == []
