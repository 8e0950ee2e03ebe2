"""A ModelDeployment without a canary moves to a new version by plain replacement: "pod by pod,
never below the desired ready replicas" (the API's strategy.canary, docs/serving.md). Watched
from outside while it happens: the ready serving pods and the Service's ready endpoints after
every change, and requests through the Service all along."""

from pathlib import Path

import pytest

from cairn.api.labels import VERSION_LABEL
from tests.support.deployments import (
    create_deployment,
    describe,
    service_base,
    serving_pods,
    wait_answered_by,
    wait_serving,
)
from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.readiness import ready_counts
from tests.support.rollouts import SETOSA, VIRGINICA, set_version, traffic, two_versions
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

REPLICAS = 3
# What the documentation promises: no ready replica is given up before its replacement is ready.
DOCUMENTED_MAX_UNAVAILABLE = 0
OLD_PODS_GONE_TIMEOUT = 120


@pytest.mark.both_operators
def test_a_replacement_without_a_canary_never_drops_below_the_ready_replicas(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    two_versions(k8s, namespace, artifacts)
    create_deployment(k8s, namespace, "iris", version=1, replicas=REPLICAS)  # no strategy
    wait_serving(k8s, namespace, "iris", 1)
    base = service_base(k8s, namespace, "iris")
    floor = REPLICAS - DOCUMENTED_MAX_UNAVAILABLE

    def only_new_pods() -> bool:
        pods = serving_pods(k8s, namespace, "iris")
        return len(pods) == REPLICAS and all(p.metadata.labels[VERSION_LABEL] == "2" for p in pods)

    with (
        ready_counts(k8s, namespace, "iris") as counts,
        traffic(base, [SETOSA.tolist(), VIRGINICA.tolist()]) as sent,
    ):
        counts.wait_for_both(at_least=REPLICAS)
        changed_at = counts.now()
        set_version(k8s, namespace, "iris", 2)
        wait_serving(k8s, namespace, "iris", 2)
        # Until the last old pod is gone, not only out of the Deployment's count.
        wait_for(
            only_new_pods,
            timeout=OLD_PODS_GONE_TIMEOUT,
            message="only pods of version 2 left",
            describe=lambda: describe(k8s, namespace, "iris"),
        )
        wait_answered_by(base, "2")

    pods_seen = f"ready pods after each change (s, count): {counts.pods}"
    endpoints_seen = f"ready endpoints after each change (s, count): {counts.endpoints}"
    assert counts.fewest_after(counts.pods, changed_at) >= floor, pods_seen
    assert counts.fewest_after(counts.endpoints, changed_at) >= floor, endpoints_seen
    # The replacement happened while watched: new pods came and went ready one by one.
    assert max(count for _, count in counts.pods) > REPLICAS, pods_seen
    assert sent.failures() == 0, sent.answers
    assert sent.versions() == {"1", "2"}, sent.answers
    # And the Deployment is built to keep it so.
    rolling = k8s.apps.read_namespaced_deployment("iris-stable", namespace).spec.strategy
    assert rolling.rolling_update.max_unavailable == DOCUMENTED_MAX_UNAVAILABLE
