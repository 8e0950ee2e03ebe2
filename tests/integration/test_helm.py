"""The Helm chart on the real cluster: install in namespaced mode, train under the in-cluster
operator with only the chart's RBAC, upgrade, uninstall.

Namespaced mode only: the cluster-wide mode, whose operator would see every other test's objects,
is tested fenced in test_helm_cluster_wide.py. The operator image must be in the node's
containerd (`make images`).
"""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.cluster import REPO_ROOT
from tests.support.helm import (
    CHART,
    can_i,
    granted_resources,
    helm,
    operator_log,
    ready_operator_pod,
    service_account_user,
)
from tests.support.kube import Kube, read_or_none
from tests.support.namespaces import create_test_namespace, delete_namespace
from tests.support.training import apply_example, condition, get, kubectl, wait_for_run
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

RELEASE = "cairn"  # the chart's full name is then "cairn": Deployment, ServiceAccount, Roles
HELM_TIMEOUT = "180s"
TRAINING_TIMEOUT = 240
# Helm's marks of ownership, which --take-ownership puts on the CRDs the tests had installed.
HELM_CRD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
HELM_CRD_ANNOTATIONS = (
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
    "helm.sh/resource-policy",
)


@pytest.fixture
def release_namespace(k8s: Kube) -> Iterator[str]:
    name = create_test_namespace(k8s, hint="helm-release")
    yield name
    delete_namespace(k8s, name)


@pytest.fixture
def crds_restored(k8s: Kube, crds_installed: list[str]) -> Iterator[list[str]]:
    """The CRDs the tests installed; afterwards rid of the ownership marks the release put on them
    (they stay installed: other tests use them)."""
    yield crds_installed
    nulls: dict[str, Any] = {
        "metadata": {
            "labels": dict.fromkeys(HELM_CRD_LABELS),
            "annotations": dict.fromkeys(HELM_CRD_ANNOTATIONS),
        }
    }
    for name in crds_installed:
        subprocess.run(
            [kubectl(), "patch", "crd", name, "--type=merge", "-p", json.dumps(nulls)],
            check=True,
            capture_output=True,
        )


def test_install_train_upgrade_uninstall(
    k8s: Kube, release_namespace: str, namespace: str, artifacts: Path, crds_restored: list[str]
) -> None:
    watched = namespace  # with its cairn-artifacts claim (the `artifacts` fixture)
    installed = True
    try:
        helm(
            "install", RELEASE, str(CHART),
            "--namespace", release_namespace,
            "--set", f"watchNamespaces={{{watched}}}",
            # The image is only in the node's containerd; never try a registry.
            "--set", "image.pullPolicy=Never",
            # The CRDs are already installed (by the tests' fixture): the release adopts them.
            "--take-ownership",
            # Cluster-scoped names of this test's own: no other installation is disturbed.
            "--set", f"approvals.policyName=cairn-approvals-{watched}",
            "--set", f"approvals.approverRole.name=cairn-approver-{watched}",
            "--wait", "--timeout", HELM_TIMEOUT,
        )  # fmt: skip
        # The operator runs with the chart's RBAC alone and is Ready.
        pod = ready_operator_pod(k8s, release_namespace, RELEASE)
        assert pod.spec.service_account_name == RELEASE
        service_account = service_account_user(release_namespace, RELEASE)

        # Least privilege as the API server sees it: no wildcard, only the watched namespace.
        rows = granted_resources(watched, service_account)
        assert any(row[0] == "jobs.batch" for row in rows), rows
        for resource, names, verbs in rows:
            assert "*" not in resource and "*" not in verbs, (resource, names, verbs)
        assert can_i("create", "jobs.batch", watched, service_account)
        assert not can_i("create", "jobs.batch", release_namespace, service_account)
        assert not can_i("list", "namespaces", None, service_account)
        assert not can_i("list", "customresourcedefinitions", None, service_account)
        assert not can_i("get", "secrets", watched, service_account)
        # The operator records what people decide; it never approves a version itself.
        assert not can_i("approve", "modelversions", watched, service_account)

        # A real training run in the watched namespace succeeds under the in-cluster operator.
        apply_example(watched, REPO_ROOT / "examples/iris")
        run = wait_for_run(k8s, watched, "iris-1", "Succeeded", timeout=TRAINING_TIMEOUT)
        wait_for(
            lambda: (
                condition(get(k8s, watched, "trainingruns", "iris-1") or {}, "Registered").get(
                    "status"
                )
                == "True"
            ),
            timeout=60,
            message="TrainingRun iris-1 to be registered",
        )
        assert get(k8s, watched, "modelversions", "iris-v1") is not None
        # The example's ModelDeployment serves it: Deployments, Services, the pod proxy.
        wait_for(
            lambda: (
                condition(get(k8s, watched, "modeldeployments", "iris") or {}, "Available").get(
                    "status"
                )
                == "True"
            ),
            timeout=TRAINING_TIMEOUT,
            message="ModelDeployment iris to be Available",
        )
        assert run["status"]["jobName"]
        log = operator_log(k8s, release_namespace, pod.metadata.name)
        assert "Forbidden" not in log and "Not enough permissions" not in log, log[-3000:]

        # An upgrade that changes a value rolls the pod, and the new one stays Ready.
        helm(
            "upgrade", RELEASE, str(CHART),
            "--namespace", release_namespace,
            "--reuse-values", "--set", "logFormat=json",
            "--wait", "--timeout", HELM_TIMEOUT,
        )  # fmt: skip
        upgraded = ready_operator_pod(k8s, release_namespace, RELEASE)
        assert upgraded.metadata.name != pod.metadata.name
        env = {e.name: e.value for e in upgraded.spec.containers[0].env}
        assert env["CAIRN_LOG_FORMAT"] == "json"
        lines = wait_for(
            lambda: operator_log(k8s, release_namespace, upgraded.metadata.name).splitlines(),
            timeout=30,
            message="the upgraded operator to log",
        )
        assert all(json.loads(line)["message"] for line in lines), lines[:5]
        wait_for(
            lambda: (
                ready_operator_pod(k8s, release_namespace, RELEASE).metadata.name
                == upgraded.metadata.name
            ),
            timeout=30,
            message="the upgraded operator to stay Ready",
        )

        # Uninstalling removes the operator and its RBAC, and keeps the CRDs and the objects.
        helm("uninstall", RELEASE, "--namespace", release_namespace, "--wait")
        installed = False
        assert read_or_none(k8s.apps.read_namespaced_deployment, RELEASE, release_namespace) is None
        assert not can_i("create", "jobs.batch", watched, service_account)
        extensions = client.ApiextensionsV1Api(k8s.api_client)
        for name in crds_restored:
            assert read_or_none(extensions.read_custom_resource_definition, name), name
        assert get(k8s, watched, "trainingruns", "iris-1") is not None
    finally:
        if installed:
            helm("uninstall", RELEASE, "--namespace", release_namespace, "--wait", check=False)
