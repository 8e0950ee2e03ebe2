"""The last serving pod of a ModelDeployment deleted (a node drained, an eviction, a hand's
`kubectl delete pod`) serves on until its replacement is ready: the Service refuses nothing
in between. Its server answers ready while it drains (`--ready-while-draining`), so kube-proxy
keeps sending to it as the Service's only endpoint, terminating but serving (KEP-1669), and it
closes once requests stop arriving. The test holds the replacement back by cordoning the nodes,
long past the moment a server that turned unready on SIGTERM would have been dropped."""

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.deployments import (
    create_deployment,
    describe,
    service_base,
    serving_pods,
    wait_serving,
)
from tests.support.kube import Kube, read_or_none
from tests.support.rollouts import SETOSA, traffic, two_versions
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

# Past the old server's unreadiness (SIGTERM, then two failed probes 2 s apart) and its
# --shutdown-delay (5 s): a gap without any endpoint would have shown by then.
HELD_SECONDS = 15
REPLACEMENT_TIMEOUT = 180


@contextlib.contextmanager
def cordoned(k8s: Kube) -> Iterator[None]:
    """No new pod can be scheduled inside the block: every schedulable node cordoned, then
    uncordoned."""
    nodes = [n.metadata.name for n in k8s.core.list_node().items if not n.spec.unschedulable]
    try:
        for node in nodes:
            k8s.core.patch_node(node, {"spec": {"unschedulable": True}})
        yield
    finally:
        for node in nodes:
            k8s.core.patch_node(node, {"spec": {"unschedulable": None}})


@pytest.mark.usefixtures("operator")
def test_the_last_serving_pod_deleted_serves_until_its_replacement_is_ready(
    k8s: Kube, namespace: str, artifacts: Path
) -> None:
    two_versions(k8s, namespace, artifacts)
    create_deployment(k8s, namespace, "iris", version=1, replicas=1)
    wait_serving(k8s, namespace, "iris", 1)
    base = service_base(k8s, namespace, "iris")
    [victim] = [pod.metadata.name for pod in serving_pods(k8s, namespace, "iris")]

    def replacement_ready() -> bool:
        return any(
            pod.metadata.name != victim
            and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            for pod in serving_pods(k8s, namespace, "iris")
        )

    with traffic(base, [SETOSA.tolist()]) as sent:
        wait_for(lambda: sent.answers[(200, "1")] > 0, timeout=30, message="a first answer")
        with cordoned(k8s):
            k8s.core.delete_namespaced_pod(victim, namespace)
            time.sleep(HELD_SECONDS)
            answered_while_held = sent.answers[(200, "1")]
            time.sleep(1)
            # Nothing else could have answered: the replacement is not even scheduled.
            assert not replacement_ready(), describe(k8s, namespace, "iris")
            assert sent.failures() == 0, f"refused while the replacement was held: {sent.answers}"
            assert sent.answers[(200, "1")] > answered_while_held, sent.answers
            assert read_or_none(k8s.core.read_namespaced_pod, victim, namespace) is not None
        wait_for(
            replacement_ready,
            timeout=REPLACEMENT_TIMEOUT,
            message="the replacement pod to be ready",
            describe=lambda: describe(k8s, namespace, "iris"),
        )
        wait_for(
            lambda: read_or_none(k8s.core.read_namespaced_pod, victim, namespace) is None,
            timeout=REPLACEMENT_TIMEOUT,
            message=f"pod {victim} to be gone once requests went to its replacement",
        )
    assert sent.failures() == 0, sent.answers
