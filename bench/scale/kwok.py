"""Fake nodes for bench-scale: kwok (built by hack/kwok/build.sh) as a controller process against
the local cluster, driving nodes that the bench creates and only those.

The nodes carry a taint that only the bench's pods tolerate, so the real pods of other tests and
demos are never scheduled onto them, and a label of the bench's own, the selector that kwok manages
(two benches at once never drive each other's nodes).
"""

import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import free_port
from kubernetes import client

BUILD = Path(__file__).resolve().parents[2] / "hack/kwok/build.sh"
LABEL = "cairn.dev/bench-scale"
TAINT_VALUE = "fake"
# Where kwok's fake pods get their addresses: only ever written into pod status, never routed.
POD_CIDR = "10.254.0.0/16"


def selector(bench_id: str) -> dict[str, str]:
    """The nodeSelector of the bench's pods: its own fake nodes."""
    return {LABEL: bench_id}


def toleration() -> dict[str, str]:
    """The toleration of the bench's pods (TrainingRun spec.tolerations) for its nodes' taint."""
    return {"key": LABEL, "operator": "Equal", "value": TAINT_VALUE, "effect": "NoSchedule"}


def node_body(bench_id: str, index: int) -> dict[str, Any]:
    name = f"kwok-{bench_id}-{index:03d}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                LABEL: bench_id,
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "spec": {"taints": [{"key": LABEL, "value": TAINT_VALUE, "effect": "NoSchedule"}]},
        # What kwok would default to, written here so the scheduler sees room at once.
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def kwok_binary() -> str:
    """The cached kwok, built from its Go module the first time; its Stages beside it."""
    built = subprocess.run([str(BUILD), "--path"], check=True, capture_output=True, text=True)
    return built.stdout.strip()


def start_kwok(kubeconfig: str, bench_id: str, log: Path) -> subprocess.Popen[bytes]:
    """kwok managing the nodes labelled for this bench, with its default stages: nodes become
    Ready and keep their leases; pods become Running and Ready, and a Job's pods then Succeed."""
    binary = kwok_binary()
    command = [
        binary,
        *("--kubeconfig", kubeconfig),
        *("--config", str(Path(binary).with_name("stages.yaml"))),
        *("--node-lease-duration-seconds", "40"),
        *("--manage-nodes-with-label-selector", f"{LABEL}={bench_id}"),
        # Its own HTTP server (logs, exec, metrics of the fake kubelets) on loopback only.
        *("--server-address", f"127.0.0.1:{free_port()}"),
        *("--node-ip", "127.0.0.1"),
        *("--cidr", POD_CIDR),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def create_nodes(core: Any, bench_id: str, count: int) -> list[str]:
    names = []
    for index in range(count):
        body = node_body(bench_id, index)
        core.create_node(body)
        names.append(body["metadata"]["name"])
    return names


def wait_ready(core: Any, bench_id: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        nodes = core.list_node(label_selector=f"{LABEL}={bench_id}").items
        ready = sum(
            any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
            for node in nodes
        )
        if ready >= count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {ready} of {count} fake nodes became Ready in {timeout:g}s")
        time.sleep(1)


def delete_nodes(core: Any, bench_id: str) -> None:
    """Every node of this bench, whatever happened before (their pods go with the namespaces)."""
    for node in core.list_node(label_selector=f"{LABEL}={bench_id}").items:
        try:
            core.delete_node(node.metadata.name)
        except client.ApiException as error:
            if error.status != 404:
                raise
