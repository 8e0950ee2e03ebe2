"""ModelDeployments on the real cluster with the in-process operator: a Ready version is served
by real cairn-serve pods behind a Service, a version that is not Ready never is, an alias move
switches the served version, and deleting the ModelDeployment removes what it made."""

from pathlib import Path
from typing import Any

import pytest
import tritonclient.grpc as triton_grpc  # type: ignore[import-untyped]

from tests.support.deployments import (
    ROWS,
    create_deployment,
    create_version,
    infer,
    save_version,
    service_base,
    serving,
    wait_answered_by,
    wait_serving,
    wait_version_phase,
)
from tests.support.kube import Kube, read_or_none
from tests.support.operator import RunningOperator
from tests.support.training import (
    GROUP,
    VERSION,
    approve,
    condition,
    create_model,
    expect_event,
    expect_events,
    get,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]


@pytest.mark.both_operators
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
    expect_events(k8s, namespace, "iris", {"Serving", "Available"})
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

    def left() -> str:
        """What deletion still waits for: the objects left with their finalizers, and the pods
        with their phase and when their deletion began."""
        mdep = get(k8s, namespace, "modeldeployments", "iris")
        deployment = read_or_none(k8s.apps.read_namespaced_deployment, "iris-stable", namespace)
        service = read_or_none(k8s.core.read_namespaced_service, "iris", namespace)
        pods = k8s.core.list_namespaced_pod(namespace, label_selector="cairn.dev/deployment=iris")
        return "; ".join(
            [
                f"Service finalizers {service.metadata.finalizers}" if service else "",
                f"ModelDeployment finalizers {mdep['metadata'].get('finalizers')}" if mdep else "",
                f"Deployment finalizers {deployment.metadata.finalizers}" if deployment else "",
                *(
                    f"pod {pod.metadata.name} {pod.status.phase}, deleted at "
                    f"{pod.metadata.deletion_timestamp}"
                    for pod in pods.items
                ),
            ]
        )

    wait_for(
        gone, timeout=60, message="the Deployment and the Service to be deleted", describe=left
    )
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
