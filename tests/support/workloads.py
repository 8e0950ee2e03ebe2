"""Pods, Jobs and Deployments for tests: small, locked down, using images already on the node."""

import os
from typing import Any

from tests.support.kube import Kube
from tests.support.wait import wait_for

TRAINER_IMAGE = os.environ.get("CAIRN_TRAINER_IMAGE", "docker.io/cairn/trainer:dev")
SERVER_IMAGE = os.environ.get("CAIRN_SERVER_IMAGE", "docker.io/cairn/server:dev")

Manifest = dict[str, Any]


def container(name: str, image: str, command: list[str], **fields: Any) -> Manifest:
    """A container that runs as its image's non-root user with nothing it does not need."""
    return {
        "name": name,
        "image": image,
        # The images are loaded into the node's containerd, never pulled.
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "512Mi"},
        },
        **fields,
    }


def pod_spec(*containers: Manifest, restart_policy: str = "Never", **fields: Any) -> Manifest:
    return {
        "containers": list(containers),
        "restartPolicy": restart_policy,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        **fields,
    }


def python_pod(name: str, image: str, code: str) -> Manifest:
    """A Pod that runs `python -c code` once."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": pod_spec(container("main", image, ["python", "-c", code])),
    }


def describe_pod(pod: Any) -> str:
    """The part of a pod's status that explains why it is not where a test wants it."""
    status = pod.status
    parts = [f"pod {pod.metadata.name} is {status.phase}"]
    parts += [
        f"{c.type}={c.status} ({c.reason}: {c.message})"
        for c in status.conditions or []
        if c.status != "True"
    ]
    for container_status in status.container_statuses or []:
        state = container_status.state
        if state.waiting:
            parts.append(
                f"{container_status.name} waiting: {state.waiting.reason} {state.waiting.message}"
            )
        if state.terminated:
            parts.append(
                f"{container_status.name} terminated: {state.terminated.reason}, "
                f"exit code {state.terminated.exit_code}"
            )
    return "; ".join(parts)


def wait_for_pod_success(kube: Kube, namespace: str, name: str, timeout: float = 120) -> Any:
    """Wait until the pod has Succeeded and return it; fail at once if it Failed."""

    def succeeded() -> Any:
        pod = kube.core.read_namespaced_pod(name, namespace)
        if pod.status.phase == "Failed":
            logs = pod_logs(kube, namespace, name)
            raise AssertionError(f"{describe_pod(pod)}; logs:\n{logs}")
        return pod if pod.status.phase == "Succeeded" else None

    return wait_for(
        succeeded,
        timeout=timeout,
        message=f"pod {namespace}/{name} to succeed",
        describe=lambda: describe_pod(kube.core.read_namespaced_pod(name, namespace)),
    )


def pod_logs(
    kube: Kube, namespace: str, name: str, container: str | None = None, previous: bool = False
) -> str:
    """The container's log (`previous`: of its last terminated run)."""
    # Raw bytes: the client otherwise parses logs that look like JSON and returns their repr.
    options: dict[str, Any] = {"container": container} if container else {}
    if previous:
        options["previous"] = True
    response = kube.core.read_namespaced_pod_log(name, namespace, _preload_content=False, **options)
    return bytes(response.data).decode()
