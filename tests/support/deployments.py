"""ModelDeployments for tests: real models saved on the artifact claim, their ModelVersions, the
ModelDeployment serving them, and waiting until its Service answers."""

from pathlib import Path
from typing import Any

import requests
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn import training
from tests.support.kube import Kube
from tests.support.training import GROUP, VERSION, condition, get, version_manifest
from tests.support.wait import wait_for
from tests.support.workloads import SERVER_IMAGE, describe_pod

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


def serving_pods(k8s: Kube, namespace: str, name: str) -> list[Any]:
    selector = f"cairn.dev/deployment={name}"
    return list(k8s.core.list_namespaced_pod(namespace, label_selector=selector).items)


def wait_degraded(
    k8s: Kube, namespace: str, name: str, reason: str, timeout: float = SERVE_TIMEOUT
) -> Body:
    """The ModelDeployment once its Degraded condition has `reason`."""

    def degraded() -> Body | None:
        found = get(k8s, namespace, "modeldeployments", name) or {}
        return found if condition(found, "Degraded").get("reason") == reason else None

    result: Body = wait_for(
        degraded,
        timeout=timeout,
        message=f"ModelDeployment {name} Degraded with {reason}",
        describe=lambda: str(
            [
                ((get(k8s, namespace, "modeldeployments", name) or {}).get("status")),
                [describe_pod(p) for p in serving_pods(k8s, namespace, name)],
            ]
        ),
    )
    return result
