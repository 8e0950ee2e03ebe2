"""The Helm chart in its cluster-wide mode (`watchNamespaces: []`) on the real cluster: one
ClusterRole and ClusterRoleBinding, the operator with --all-namespaces reconciling namespaces it
was never told about, and an uninstall that leaves nothing cluster-scoped behind.

A cluster-wide operator sees every other test's objects, including those of other runs on the
same cluster at the same time, and would fight their operators over them. So this test fences it
(tests/support/fence.py): an admission policy, enforced by the API server, refuses every write of
the operator's ServiceAccount outside this test's namespaces. The operator still watches and reads
everything with its ClusterRole; a namespace outside the fence shows it tried, and was refused.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.support.artifacts import create_artifacts_claim, delete_artifacts_claim
from tests.support.fence import MESSAGE, fenced
from tests.support.helm import (
    CHART,
    can_i,
    helm,
    operator_log,
    ready_operator_pod,
    service_account_user,
)
from tests.support.kube import Kube, read_or_none
from tests.support.namespaces import create_test_namespace, delete_namespace
from tests.support.training import (
    TREE_TRAINER,
    create_run,
    get,
    kubectl,
    script_config_map,
    wait_for_run,
)
from tests.support.wait import wait_for
from tests.support.workloads import describe_pod

pytestmark = pytest.mark.usefixtures("crds_installed")

HELM_TIMEOUT = "180s"
TRAINING_TIMEOUT = 240
INSTANCE_LABEL = "app.kubernetes.io/instance"


@pytest.fixture
def release_namespace(k8s: Kube) -> Iterator[str]:
    name = create_test_namespace(k8s, hint="helm-cluster-wide")
    yield name
    delete_namespace(k8s, name)


@pytest.fixture
def second_namespace(k8s: Kube, artifacts: Path) -> Iterator[str]:
    """A second team's namespace, with its own cairn-artifacts claim."""
    name = create_test_namespace(k8s, hint="helm-cluster-wide-team")
    create_artifacts_claim(name)
    yield name
    delete_artifacts_claim(name)
    delete_namespace(k8s, name)


@pytest.fixture
def outside_namespace(k8s: Kube) -> Iterator[str]:
    """A namespace outside the fence: there the operator may read but change nothing."""
    name = create_test_namespace(k8s, hint="helm-cluster-wide-outside")
    yield name
    delete_namespace(k8s, name)


def cluster_scoped_objects(label_selector: str) -> list[str]:
    """Every cluster-scoped object (of any listable kind) with these labels, as kind/name."""
    kinds = subprocess.run(
        [kubectl(), "api-resources", "--namespaced=false", "--verbs=list", "-o", "name"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    found = subprocess.run(
        [kubectl(), "get", ",".join(kinds), "-l", label_selector, "-o", "name"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return found.split()


def start_run(k8s: Kube, namespace: str, name: str) -> None:
    script_config_map(k8s, namespace, "tree", TREE_TRAINER)
    create_run(k8s, namespace, name, model="tree", code="tree")


def test_cluster_wide_release_reconciles_every_namespace_with_its_cluster_role(
    k8s: Kube,
    release_namespace: str,
    namespace: str,
    second_namespace: str,
    outside_namespace: str,
) -> None:
    def refused_in(log: str) -> str | None:
        return log if MESSAGE in log and outside_namespace in log else None

    teams = [namespace, second_namespace]  # each with its cairn-artifacts claim
    # Cluster-scoped names of this test's own (the ClusterRole and its binding take the
    # release's full name, which is the release's when it contains "cairn").
    release = f"cairn-cw-{release_namespace.rsplit('-', 1)[1]}"
    approver_role = f"cairn-approver-{release}"
    operator = service_account_user(release_namespace, release)
    fence = f"cairn-test-fence-{release}"
    with fenced(fence, operator, [release_namespace, *teams], outside=outside_namespace):
        installed = True
        try:
            helm(
                "install", release, str(CHART),
                "--namespace", release_namespace,
                # watchNamespaces stays [], the chart's default: every namespace.
                "--set", "crds.install=false",  # the tests' fixture installed them
                "--set", "image.pullPolicy=Never",  # only in the node's containerd
                # Bound cluster-wide, the approval policy would judge every other test's
                # ModelVersions; its ClusterRole for approvers is still installed.
                "--set", "approvals.enforce=false",
                "--set", f"approvals.approverRole.name={approver_role}",
                "--wait", "--timeout", HELM_TIMEOUT,
            )  # fmt: skip
            pod = ready_operator_pod(k8s, release_namespace, release)
            container = pod.spec.containers[0]
            assert "--all-namespaces" in (container.args or []), container.args
            assert "CAIRN_NAMESPACES" not in {e.name for e in container.env}

            # Its RBAC is one ClusterRole, bound cluster-wide; no Role in any namespace.
            rbac = client.RbacAuthorizationV1Api(k8s.api_client)
            binding = read_or_none(rbac.read_cluster_role_binding, release)
            assert binding is not None, f"no ClusterRoleBinding {release}"
            assert (binding.role_ref.kind, binding.role_ref.name) == ("ClusterRole", release)
            assert [(s.kind, s.namespace, s.name) for s in binding.subjects] == [
                ("ServiceAccount", release_namespace, release)
            ]
            for team in teams:
                assert not rbac.list_namespaced_role(
                    team, label_selector=f"{INSTANCE_LABEL}={release}"
                ).items
            # As the API server's authorizer sees it: granted in any namespace, even one that
            # does not exist yet, and still nothing beyond what the operator needs.
            anywhere = f"cairn-nowhere-{release}"
            for where in (anywhere, outside_namespace, "default"):
                assert can_i("create", "jobs.batch", where, operator), where
                assert can_i("patch", "modeldeployments.cairn.dev/status", where, operator), where
                assert not can_i("get", "secrets", where, operator), where
            assert can_i("watch", "customresourcedefinitions", None, operator)
            assert not can_i("list", "namespaces", None, operator)
            assert not can_i("approve", "modelversions", anywhere, operator)

            # Runs in two namespaces it was never told about train and are registered; one
            # outside the fence is seen but left as it was.
            start_run(k8s, outside_namespace, "outside-1")
            for team in teams:
                start_run(k8s, team, "tree-1")
            for team in teams:
                try:
                    wait_for_run(
                        k8s, team, "tree-1", "Succeeded", timeout=TRAINING_TIMEOUT, registered=True
                    )
                except TimeoutError as error:
                    # What the run's pods and the operator did: a busy cluster-wide operator
                    # (thousands of other objects) is one way to get here.
                    pods = [describe_pod(p) for p in k8s.core.list_namespaced_pod(team).items]
                    tail = operator_log(k8s, release_namespace, pod.metadata.name)[-4000:]
                    raise AssertionError(f"{error}\npods: {pods}\noperator: {tail}") from None
                assert get(k8s, team, "modelversions", "tree-v1") is not None, team
            log = wait_for(
                lambda: refused_in(operator_log(k8s, release_namespace, pod.metadata.name)),
                timeout=60,
                message=f"the operator to be refused a write in {outside_namespace}",
            )
            outside = get(k8s, outside_namespace, "trainingruns", "outside-1") or {}
            assert not outside.get("status"), outside.get("status")
            assert not k8s.batch.list_namespaced_job(outside_namespace).items
            assert "Not enough permissions" not in log, log[-3000:]
            state = ready_operator_pod(k8s, release_namespace, release).status.container_statuses[0]
            assert state.restart_count == 0, f"{state.last_state}\n{log[-3000:]}"

            # Uninstalled: nothing cluster-scoped of the release is left, nor its permissions.
            of_release = f"{INSTANCE_LABEL}={release}"
            assert sorted(cluster_scoped_objects(of_release)) == [
                f"clusterrole.rbac.authorization.k8s.io/{approver_role}",
                f"clusterrole.rbac.authorization.k8s.io/{release}",
                f"clusterrolebinding.rbac.authorization.k8s.io/{release}",
            ]
            helm("uninstall", release, "--namespace", release_namespace, "--wait")
            installed = False
            assert cluster_scoped_objects(of_release) == []
            for name in (release, approver_role):
                assert read_or_none(rbac.read_cluster_role, name) is None, name
            assert not can_i("create", "jobs.batch", namespace, operator)
            assert get(k8s, namespace, "trainingruns", "tree-1") is not None
        finally:
            if installed:
                helm("uninstall", release, "--namespace", release_namespace, "--wait", check=False)
