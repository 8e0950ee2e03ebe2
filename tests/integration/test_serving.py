"""The model server in the cluster: a Deployment of cairn/server:dev serves the iris model from
the artifact volume (read-only, digest verified) and answers V2, V1 and /metrics via a Service."""

from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]

from cairn import training
from tests.support.kube import Kube
from tests.support.wait import wait_for
from tests.support.workloads import SERVER_IMAGE, container, describe_pod, pod_logs, pod_spec

NAME = "iris-server"
LABELS = {"app": NAME}


def deployment(digest: str) -> dict[str, Any]:
    server = container(
        "server",
        SERVER_IMAGE,
        ["cairn-serve"],
        args=["--model-dir", "/models/iris", "--name", "iris", "--version", "1"],
        env=[{"name": "CAIRN_EXPECTED_DIGEST", "value": digest}],
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 1,
        },
        livenessProbe={"httpGet": {"path": "/v2/health/live", "port": "http"}},
        volumeMounts=[
            {"name": "model", "mountPath": "/models/iris", "subPath": "iris/v1", "readOnly": True}
        ],
    )
    server["securityContext"] |= {"runAsUser": 1000, "runAsGroup": 1000}
    spec = pod_spec(
        server,
        restart_policy="Always",
        volumes=[
            {
                "name": "model",
                "persistentVolumeClaim": {"claimName": "cairn-artifacts", "readOnly": True},
            }
        ],
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "labels": LABELS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": LABELS},
            "template": {"metadata": {"labels": LABELS}, "spec": spec},
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME},
        "spec": {
            "type": "ClusterIP",
            "selector": LABELS,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def test_a_deployment_serves_the_iris_model_through_a_service(
    k8s: Kube, namespace: str, artifacts: Path
) -> None:
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    saved = training.save_model(model, path=artifacts / "iris" / "v1", sample_input=X[:1])

    k8s.apps.create_namespaced_deployment(namespace, deployment(saved.digest))
    k8s.core.create_namespaced_service(namespace, service())
    cluster_ip = k8s.core.read_namespaced_service(NAME, namespace).spec.cluster_ip
    base = f"http://{cluster_ip}"

    def pods() -> list[Any]:
        selector = f"app={NAME}"
        return list(k8s.core.list_namespaced_pod(namespace, label_selector=selector).items)

    def describe() -> str:
        found = pods()
        if not found:
            return "no pod yet"
        logs = pod_logs(k8s, namespace, found[0].metadata.name) if found[0].status.phase else ""
        return f"{describe_pod(found[0])}; logs:\n{logs}"

    session = requests.Session()
    session.trust_env = False  # cluster addresses never go to a proxy

    def ready() -> bool:
        try:
            return session.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(ready, timeout=120, message=f"{base}/v2/health/ready", describe=describe)

    rows = X[[0, 75, 149]]
    v2 = {
        "id": "in-cluster",
        "inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP64", "data": rows.tolist()}],
    }
    response = session.post(f"{base}/v2/models/iris/versions/1/infer", json=v2, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "in-cluster" and body["model_version"] == "1"
    assert body["outputs"][0]["data"] == model.predict(rows).tolist()

    v1 = session.post(
        f"{base}/v1/models/iris:predict", json={"instances": rows.tolist()}, timeout=10
    )
    assert v1.json() == {"predictions": model.predict(rows).tolist()}

    bad = session.post(f"{base}/v2/models/iris/infer", data=b"{not json", timeout=10)
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]

    metadata = session.get(f"{base}/v2/models/iris", timeout=10).json()
    assert metadata["inputs"][0]["shape"] == [-1, 4]

    metrics = session.get(f"{base}/metrics", timeout=10).text
    families = {family.name: family for family in text_string_to_metric_families(metrics)}
    info = families["cairn_serving_model_info"].samples[0].labels
    assert info["digest"] == saved.digest
    assert info["runtime"] == "onnx"
    served = {
        (sample.labels["protocol"], sample.labels["code"]): sample.value
        for sample in families["cairn_serving_requests"].samples
        if sample.name == "cairn_serving_requests_total"
    }
    assert served[("v2", "200")] >= 1 and served[("v1", "200")] >= 1
    assert served[("v2", "400")] >= 1
