"""The operator installed by the Helm chart instead of in-process: with CAIRN_TEST_OPERATOR=chart
(`make test-in-cluster`) the `operator` fixture installs charts/cairn into the test's namespace,
watching only it, so every test that uses the fixture runs against the in-cluster operator with
the chart's least-privilege RBAC."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.helm import CHART, helm
from tests.support.kube import Kube
from tests.support.wait import wait_for
from tests.support.workloads import pod_logs

MODE_ENV = "CAIRN_TEST_OPERATOR"
RELEASE = "cairn-operator"
HEALTH_PORT, METRICS_PORT = 8080, 8081


IN_PROCESS_MODE, CHART_MODE = "in-process", "chart"


def wanted() -> bool:
    mode = os.environ.get(MODE_ENV, IN_PROCESS_MODE)
    if mode not in (IN_PROCESS_MODE, CHART_MODE):
        choices = f"{IN_PROCESS_MODE} (the default) or {CHART_MODE}"
        raise ValueError(f"{MODE_ENV}={mode!r}: use {choices}")
    return mode == CHART_MODE


def _pod(k8s: Kube, namespace: str) -> Any:
    pods = k8s.core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}"
    ).items
    live = [p for p in pods if not p.metadata.deletion_timestamp]
    return live[0] if len(live) == 1 else None


@contextmanager
def installed(k8s: Kube, namespace: str) -> Iterator[str]:
    """The chart's operator in `namespace`, watching it; yields its pod's IP once Ready. After
    the test: uninstalled, and an error if the operator restarted or was refused anything."""
    helm(
        "install", RELEASE, str(CHART),
        "--namespace", namespace,
        "--set", f"watchNamespaces={{{namespace}}}",
        "--set", "crds.install=false",  # the tests' fixture installed them
        "--set", "image.pullPolicy=Never",  # only in the node's containerd
        # Cluster-scoped: named after the namespace, so that tests installing at once never
        # collide; the policy is bound to this namespace alone.
        "--set", f"approvals.policyName=cairn-approvals-{namespace}",
        "--set", f"approvals.approverRole.name=cairn-approver-{namespace}",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    try:
        pod = wait_for(
            lambda: _pod(k8s, namespace),
            timeout=60,
            message=f"one operator pod in {namespace}",
        )
        yield str(pod.status.pod_ip)
        pod = _pod(k8s, namespace)
        log = pod_logs(k8s, namespace, pod.metadata.name, container="operator")
        restarts = pod.status.container_statuses[0].restart_count
        assert restarts == 0, f"the in-cluster operator restarted {restarts} times:\n{log[-3000:]}"
        assert "Forbidden" not in log, log[-3000:]
    finally:
        helm("uninstall", RELEASE, "--namespace", namespace, "--wait", check=False)
