"""ModelDeployments on the real cluster with the in-process operator: a Ready version is served
by real cairn-serve pods behind a Service, a version that is not Ready never is, an alias move
switches the served version, and deleting the ModelDeployment removes what it made."""

from pathlib import Path
from typing import Any

import pytest
import requests
import tritonclient.grpc as triton_grpc  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn import training
from tests.support.kube import Kube, read_or_none
from tests.support.operator import RunningOperator
from tests.support.training import (
    GROUP,
    VERSION,
    approve,
    condition,
    create_model,
    event_reasons,
    expect_event,
    get,
    version_manifest,
)
from tests.support.wait import wait_for
from tests.support.workloads import SERVER_IMAGE, describe_pod

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
SERVE_TIMEOUT = 180
X, Y = load_iris(return_X_y=True)
ROWS = X[[0, 75, 149]]


def save_version(artifacts: Path, directory: str, c: float) -> tuple[str, Any]:
    """A real model saved where the claim cairn-artifacts has it: its pvc:// URI and digest."""
    model = LogisticRegression(C=c, max_iter=500).fit(X, Y)
    saved = training.save_model(model, path=artifacts / "iris" / directory, sample_input=X[:1])
    return saved.digest, model


def create_version(k8s: Kube, namespace: str, number: int, directory: str, digest: str) -> None:
    artifact = {"uri": f"pvc://cairn-artifacts/iris/{directory}", "digest": digest}
    body = version_manifest("iris", number, artifact, metrics={"accuracy": 0.97})
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", body)


def create_deployment(k8s: Kube, namespace: str, name: str, **spec: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": "iris", "image": SERVER_IMAGE, "imagePullPolicy": "Never", **spec},
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", body)


def wait_version_phase(k8s: Kube, namespace: str, name: str, phase: str) -> None:
    wait_for(
        lambda: (
            ((get(k8s, namespace, "modelversions", name) or {}).get("status") or {}).get("phase")
            == phase
        ),
        timeout=60,
        message=f"{name} to be {phase}",
    )


def describe(k8s: Kube, namespace: str, name: str) -> str:
    mdep = get(k8s, namespace, "modeldeployments", name) or {}
    pods = k8s.core.list_namespaced_pod(
        namespace, label_selector=f"cairn.dev/deployment={name}"
    ).items
    return f"status: {mdep.get('status')}; pods: {[describe_pod(p) for p in pods]}"


def wait_serving(k8s: Kube, namespace: str, name: str, version: int) -> Body:
    """The ModelDeployment once it is Available and done rolling out `version`."""

    def done() -> Body | None:
        mdep = get(k8s, namespace, "modeldeployments", name) or {}
        status = mdep.get("status") or {}
        ok = (
            status.get("phase") == "Available"
            and (status.get("stable") or {}).get("version") == version
            and condition(mdep, "Progressing").get("status") == "False"
        )
        return mdep if ok else None

    found: Body = wait_for(
        done,
        timeout=SERVE_TIMEOUT,
        message=f"{name} to serve iris-v{version}",
        describe=lambda: describe(k8s, namespace, name),
    )
    return found


def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # cluster addresses never go to a proxy
    return http


def infer(base: str) -> Body:
    body = {
        "inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP64", "data": ROWS.tolist()}]
    }
    response = session().post(f"{base}/v2/models/iris/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer: Body = response.json()
    return answer


def service_base(k8s: Kube, namespace: str, name: str) -> str:
    """The Service's address, once kube-proxy forwards it to a ready pod."""
    service = k8s.core.read_namespaced_service(name, namespace)
    base = f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}"

    def answers() -> bool:
        try:
            return session().get(f"{base}/v2/health/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(answers, timeout=30, message=f"{base} to answer")
    return base


def wait_answered_by(base: str, version: str) -> None:
    """Until the Service's answers come from `version`: pods of the old version leave the
    endpoints as they terminate, and kube-proxy follows a moment later."""
    wait_for(
        lambda: all(infer(base)["model_version"] == version for _ in range(10)),
        timeout=30,
        message=f"{base} to answer with version {version}",
    )


def serving(k8s: Kube, namespace: str, version: str) -> list[str] | None:
    """The ModelVersion's status.deployments."""
    found = get(k8s, namespace, "modelversions", version) or {}
    names: list[str] | None = (found.get("status") or {}).get("deployments")
    return names


def test_a_pinned_ready_version_is_served_and_deletion_cleans_up(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    create_model(k8s, namespace, "iris", {})
    digest, model = save_version(artifacts, "iris-x", 1.0)
    create_version(k8s, namespace, 1, "iris-x", digest)
    wait_version_phase(k8s, namespace, "iris-v1", "Approved")

    create_deployment(k8s, namespace, "iris", version=1)
    mdep = wait_serving(k8s, namespace, "iris", 1)

    status = mdep["status"]
    assert status["url"] == f"http://iris.{namespace}.svc:8080"
    assert status["selector"] == "cairn.dev/deployment=iris"
    assert status["stable"] == {"version": 1, "replicas": 1, "readyReplicas": 1}
    assert status["replicas"] == 1 and "canary" not in status
    assert condition(mdep, "Available")["status"] == "True"
    assert condition(mdep, "Degraded")["status"] == "False"

    deployment = k8s.apps.read_namespaced_deployment("iris-stable", namespace)
    assert deployment.metadata.owner_references[0].uid == mdep["metadata"]["uid"]
    assert deployment.metadata.labels["cairn.dev/track"] == "stable"
    assert deployment.metadata.labels["cairn.dev/version"] == "1"
    pod_spec = deployment.spec.template.spec
    server = pod_spec.containers[0]
    assert server.args[server.args.index("--expected-digest") + 1] == digest
    assert server.security_context.read_only_root_filesystem is True
    assert server.security_context.allow_privilege_escalation is False
    assert pod_spec.security_context.run_as_user == 1000
    assert server.volume_mounts[0].read_only and server.volume_mounts[0].sub_path == "iris/iris-x"

    answer = infer(service_base(k8s, namespace, "iris"))
    assert answer["model_name"] == "iris" and answer["model_version"] == "1"
    assert answer["outputs"][0]["data"] == model.predict(ROWS).tolist()
    # The same model over the protocol's gRPC form, by the official client, through the
    # Service's port named grpc.
    service = k8s.core.read_namespaced_service("iris", namespace)
    grpc_port = next(p for p in service.spec.ports if p.name == "grpc")
    assert (grpc_port.port, grpc_port.app_protocol) == (8081, "grpc")
    grpc = triton_grpc.InferenceServerClient(f"{service.spec.cluster_ip}:8081")
    assert grpc.is_model_ready("iris", "1")
    tensor = triton_grpc.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS)
    result = grpc.infer("iris", [tensor])
    assert result.as_numpy("predict").tolist() == model.predict(ROWS).tolist()
    grpc.close()
    assert {"Serving", "Available"} <= event_reasons(k8s, namespace, "iris")
    wait_for(
        lambda: serving(k8s, namespace, "iris-v1") == ["iris"],
        timeout=30,
        message="iris-v1 to list the ModelDeployment serving it",
    )

    # The scale subresource drives the Deployment.
    k8s.custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, "modeldeployments", "iris", {"spec": {"replicas": 2}}
    )
    wait_for(
        lambda: k8s.apps.read_namespaced_deployment("iris-stable", namespace).spec.replicas == 2,
        timeout=30,
        message="the stable Deployment to be scaled to 2",
    )

    k8s.custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", "iris", propagation_policy="Foreground"
    )

    def gone() -> bool:
        deployment = read_or_none(k8s.apps.read_namespaced_deployment, "iris-stable", namespace)
        service = read_or_none(k8s.core.read_namespaced_service, "iris", namespace)
        return deployment is None and service is None

    wait_for(gone, timeout=60, message="the Deployment and the Service to be deleted")
    wait_for(
        lambda: serving(k8s, namespace, "iris-v1") is None,
        timeout=30,
        message="iris-v1 to be served by nothing once its ModelDeployment is deleted",
    )
    # A ModelDeployment deleted while the operator was down leaves its name behind: the Model's
    # reconcile prunes names of ModelDeployments that no longer exist.
    k8s.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "modelversions", "iris-v1",
        {"status": {"deployments": ["deleted-while-down"]}},
    )  # fmt: skip
    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "models", "iris", {"metadata": {"labels": {"touched": "1"}}}
    )
    wait_for(
        lambda: serving(k8s, namespace, "iris-v1") is None,
        timeout=60,
        message="the stale name to be pruned from iris-v1",
        describe=lambda: str(serving(k8s, namespace, "iris-v1")),
    )


def test_a_version_that_is_not_ready_is_never_served(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    create_model(k8s, namespace, "iris", {"policy": {"requireApproval": True}})
    digest, _ = save_version(artifacts, "iris-x", 1.0)
    create_version(k8s, namespace, 1, "iris-x", digest)
    wait_version_phase(k8s, namespace, "iris-v1", "PendingApproval")

    create_deployment(k8s, namespace, "pending", version=1)
    create_deployment(k8s, namespace, "missing", version=7)

    def degraded(name: str) -> Body:
        found: Body = wait_for(
            lambda: (
                condition(get(k8s, namespace, "modeldeployments", name) or {}, "Degraded") or None
            ),
            timeout=30,
            message=f"{name} to be judged",
        )
        return found

    pending = degraded("pending")
    assert pending["status"] == "True" and pending["reason"] == "VersionNotReady"
    assert "iris-v1 is PendingApproval; run `cairn approve iris 1`" in pending["message"]
    missing = degraded("missing")
    assert missing["reason"] == "VersionNotFound" and "iris-v7" in missing["message"]
    for name in ("pending", "missing"):
        mdep = get(k8s, namespace, "modeldeployments", name) or {}
        assert mdep["status"]["phase"] == "Degraded"
        assert condition(mdep, "Available")["status"] == "False"
        assert (
            read_or_none(k8s.apps.read_namespaced_deployment, f"{name}-stable", namespace) is None
        )
    expect_event(k8s, namespace, "pending", "VersionNotReady")

    # Approving the version is noticed without touching the ModelDeployment.
    approve(k8s, namespace, "iris-v1")
    wait_serving(k8s, namespace, "pending", 1)


def test_moving_the_followed_alias_switches_the_served_version(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    create_model(k8s, namespace, "iris", {"aliases": {"production": 1}})
    digest1, _ = save_version(artifacts, "iris-a", 1.0)
    digest2, _ = save_version(artifacts, "iris-b", 0.01)
    create_version(k8s, namespace, 1, "iris-a", digest1)
    create_version(k8s, namespace, 2, "iris-b", digest2)
    wait_version_phase(k8s, namespace, "iris-v2", "Approved")

    create_deployment(k8s, namespace, "iris-prod", alias="production")
    wait_serving(k8s, namespace, "iris-prod", 1)
    base = service_base(k8s, namespace, "iris-prod")
    assert infer(base)["model_version"] == "1"

    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "models", "iris", {"spec": {"aliases": {"production": 2}}}
    )
    wait_serving(k8s, namespace, "iris-prod", 2)

    wait_answered_by(base, "2")
    expect_event(k8s, namespace, "iris-prod", "VersionChanged")
    labels = k8s.apps.read_namespaced_deployment("iris-prod-stable", namespace).metadata.labels
    assert labels["cairn.dev/version"] == "2"
