"""The cluster the tests use is a real Kubernetes: pods run our images, Services route, the
garbage collector, Job controller and namespace controller all do their work."""

import json
import secrets

from tests.support.http import get_or_none
from tests.support.kube import Kube, read_or_none
from tests.support.namespaces import create_test_namespace, delete_namespace
from tests.support.wait import wait_for
from tests.support.workloads import (
    SERVER_IMAGE,
    TRAINER_IMAGE,
    container,
    describe_pod,
    pod_logs,
    pod_spec,
    python_pod,
    wait_for_pod_success,
)

ROLLOUT_TIMEOUT = 120
GC_TIMEOUT = 60
NAMESPACE_DELETION_TIMEOUT = 120


def test_trainer_image_runs_scikit_learn_and_cairn(k8s: Kube, namespace: str) -> None:
    k8s.core.create_namespaced_pod(
        namespace, python_pod("answer", TRAINER_IMAGE, "import sklearn, cairn; print(6*7)")
    )

    wait_for_pod_success(k8s, namespace, "answer")

    assert pod_logs(k8s, namespace, "answer").strip() == "42"


def _serve_token_over_http(k8s: Kube, namespace: str, token: str) -> str:
    """Deploy the server image serving `token` at /token behind a Service; return host:port."""
    labels = {"app": "web"}
    k8s.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "web-content"}, "data": {"token": token}}
    )
    server = container(
        "web",
        SERVER_IMAGE,
        ["python", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", "/srv"],
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"httpGet": {"path": "/token", "port": "http"}, "periodSeconds": 1},
        volumeMounts=[{"name": "content", "mountPath": "/srv", "readOnly": True}],
    )
    k8s.apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": pod_spec(
                        server,
                        restart_policy="Always",
                        volumes=[{"name": "content", "configMap": {"name": "web-content"}}],
                    ),
                },
            },
        },
    )
    service = k8s.core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "type": "ClusterIP",
                "selector": labels,
                "ports": [{"port": 80, "targetPort": "http"}],
            },
        },
    )
    # An available replica is a ready endpoint behind the Service.
    wait_for(
        lambda: k8s.apps.read_namespaced_deployment("web", namespace).status.available_replicas,
        timeout=ROLLOUT_TIMEOUT,
        message="deployment web to become available",
        describe=lambda: "; ".join(
            describe_pod(pod)
            for pod in k8s.core.list_namespaced_pod(namespace, label_selector="app=web").items
        ),
    )
    # No cluster DNS here: a Service is reached by its ClusterIP.
    return f"{service.spec.cluster_ip}:80"


def test_service_is_reachable_from_the_host_and_from_a_pod(k8s: Kube, namespace: str) -> None:
    token = secrets.token_hex(8)
    address = _serve_token_over_http(k8s, namespace, token)
    url = f"http://{address}/token"

    # kube-proxy's rules may lag a moment behind the endpoint turning ready.
    response = wait_for(
        lambda: get_or_none(url, timeout=2),
        timeout=30,
        message=f"an answer from {url} on the host",
    )
    assert response.status_code == 200
    assert response.text == token

    client_code = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    k8s.core.create_namespaced_pod(namespace, python_pod("client", SERVER_IMAGE, client_code))
    wait_for_pod_success(k8s, namespace, "client")
    assert pod_logs(k8s, namespace, "client").strip() == token


def test_owned_object_is_garbage_collected_with_its_owner(k8s: Kube, namespace: str) -> None:
    owner = k8s.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "owner"}, "data": {"role": "owner"}}
    )
    owner_reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner.metadata.name,
        "uid": owner.metadata.uid,
    }
    k8s.core.create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "owned", "ownerReferences": [owner_reference]}, "data": {}},
    )

    k8s.core.delete_namespaced_config_map("owner", namespace)

    wait_for(
        lambda: read_or_none(k8s.core.read_namespaced_config_map, "owned", namespace) is None,
        timeout=GC_TIMEOUT,
        message="the garbage collector to delete the owned ConfigMap",
    )


def test_job_completes_and_its_termination_message_is_in_pod_status(
    k8s: Kube, namespace: str
) -> None:
    summary = {"metrics": {"accuracy": 0.97}, "answer": 42}
    code = (
        "import json, pathlib; "
        f"pathlib.Path('/dev/termination-log').write_text(json.dumps({summary!r}))"
    )
    k8s.batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "train"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": pod_spec(container("trainer", TRAINER_IMAGE, ["python", "-c", code]))
                },
            },
        },
    )

    def complete() -> bool:
        conditions = k8s.batch.read_namespaced_job("train", namespace).status.conditions or []
        by_type = {c.type: c for c in conditions if c.status == "True"}
        assert "Failed" not in by_type, by_type["Failed"].message
        return "Complete" in by_type

    wait_for(complete, timeout=ROLLOUT_TIMEOUT, message="job train to complete")

    (pod,) = k8s.core.list_namespaced_pod(
        namespace, label_selector="batch.kubernetes.io/job-name=train"
    ).items
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert json.loads(terminated.message) == summary


def test_namespace_deletion_completes(k8s: Kube) -> None:
    name = create_test_namespace(k8s, hint="deletion")
    try:
        # Content that the namespace controller, the kubelet and the container runtime each
        # have to clean up before the namespace can go.
        k8s.core.create_namespaced_config_map(name, {"metadata": {"name": "leftover"}})
        k8s.core.create_namespaced_pod(
            name, python_pod("sleeper", TRAINER_IMAGE, "import time; time.sleep(3600)")
        )
        wait_for(
            lambda: k8s.core.read_namespaced_pod("sleeper", name).status.phase == "Running",
            timeout=ROLLOUT_TIMEOUT,
            message="pod sleeper to run",
        )
    finally:
        delete_namespace(k8s, name)

    wait_for(
        lambda: read_or_none(k8s.core.read_namespace, name) is None,
        timeout=NAMESPACE_DELETION_TIMEOUT,
        message=f"namespace {name} to be deleted",
        describe=lambda: str(k8s.core.read_namespace(name).status),
    )
