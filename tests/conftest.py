"""Shared fixtures: the real cluster, API clients, throwaway namespaces, the in-process operator.

Every test gets the marker of its folder (tests/unit → unit, tests/integration → integration,
tests/e2e → e2e), so `pytest -m unit` needs no cluster. Integration and e2e tests reach the
cluster only through the `cluster` fixture; when no cluster can be found or started they fail
and say what was tried: a missing cluster never passes for a green run.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kopf.testing import KopfRunner
from kubernetes.config import kube_config

from tests.support import in_cluster
from tests.support.artifacts import create_artifacts_claim, delete_artifacts_claim
from tests.support.cluster import (
    Cluster,
    ClusterUnavailable,
    find_or_start_cluster,
    is_localkube,
    localkube_kubeconfig,
)
from tests.support.crds import crds_installed  # noqa: F401  (a fixture: imported to register it)
from tests.support.kube import Kube
from tests.support.namespaces import create_test_namespace, delete_namespace
from tests.support.object_store import ObjectStore, ObjectStoreUnavailable, ensure_object_store
from tests.support.operator import (
    METRICS_ENV,
    STOP_TIMEOUT,
    OperatorProcess,
    RunningOperator,
    free_local_port,
    kopf_run_args,
    wait_until_healthy,
)
from tests.support.wait import wait_for

TESTS_DIR = Path(__file__).parent
FOLDER_MARKERS = ("unit", "integration", "e2e")
CLUSTER_MARKERS = ("integration", "e2e")
BOTH_OPERATORS_MARKER = "both_operators"
OPERATOR_MODES = [in_cluster.IN_PROCESS_MODE, in_cluster.CHART_MODE]
NODE_READY_TIMEOUT = 180

FOUND_CLUSTER = pytest.StashKey[str | ClusterUnavailable]()


def pytest_configure(config: pytest.Config) -> None:
    # Every operator a test starts (in-process or as `cairn-operator`) would otherwise serve
    # metrics on the default port 8081, which concurrent test runs would fight over: they serve
    # none unless a test asks for a port (the `operator` fixture picks a free one).
    os.environ.setdefault(METRICS_ENV, "0")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The slice marked both_operators runs twice in the default run: with the in-process operator
    # and with the one the Helm chart installs, so that CI covers the in-cluster mode too.
    # Under CAIRN_TEST_OPERATOR=chart every test already runs against the chart: once is enough.
    marked = metafunc.definition.get_closest_marker(BOTH_OPERATORS_MARKER)
    if marked and "operator" in metafunc.fixturenames and not in_cluster.wanted():
        metafunc.parametrize("operator_mode", OPERATOR_MODES, indirect=True)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(TESTS_DIR):
            folder = item.path.relative_to(TESTS_DIR).parts[0]
            if folder in FOLDER_MARKERS:
                item.add_marker(folder)


def pytest_collection_finish(session: pytest.Session) -> None:
    # The cluster is found (or started, which can take many minutes) here rather than in a
    # fixture, so that no test's timeout is spent on it.
    needs_cluster = any(
        item.get_closest_marker(marker) for item in session.items for marker in CLUSTER_MARKERS
    )
    if not needs_cluster or session.config.option.collectonly:
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # show `make cluster-up` progress live
        try:
            found: str | ClusterUnavailable = find_or_start_cluster()
        except ClusterUnavailable as error:
            found = error
    session.config.stash[FOUND_CLUSTER] = found


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The real cluster; $KUBECONFIG points at it while the tests run."""
    found = pytestconfig.stash.get(FOUND_CLUSTER, None)
    if found is None:
        pytest.fail("the cluster fixture is only for tests under tests/integration or tests/e2e")
    if isinstance(found, ClusterUnavailable):
        pytest.fail(str(found), pytrace=False)

    with pytest.MonkeyPatch.context() as patch:
        # kopf, kubectl and any subprocess of a test then talk to the same cluster.
        patch.setenv("KUBECONFIG", found)
        # The kubernetes client read $KUBECONFIG once, on import, before the cluster was known;
        # kopf's in-process login goes through it.
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", found)
        yield Cluster(kubeconfig=found)


def _node_ready(kube: Kube) -> bool:
    return any(
        condition.type == "Ready" and condition.status == "True"
        for node in kube.core.list_node().items
        for condition in node.status.conditions or []
    )


@pytest.fixture(scope="session")
def k8s(cluster: Cluster) -> Iterator[Kube]:
    """API clients for the cluster (.core, .apps, .batch, .custom), once a node is Ready."""
    kube = Kube.from_kubeconfig(cluster.kubeconfig)
    wait_for(
        lambda: _node_ready(kube),
        timeout=NODE_READY_TIMEOUT,
        message=f"a Ready node in the cluster of {cluster.kubeconfig}",
    )
    yield kube
    kube.api_client.close()


@pytest.fixture
def namespace(k8s: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace for this test alone, deleted afterwards (without waiting)."""
    name = create_test_namespace(k8s, hint=request.node.name)
    yield name
    delete_namespace(k8s, name)


@pytest.fixture
def operator_mode(request: pytest.FixtureRequest) -> str:
    """in-process or chart: the test's parameter (the both_operators tests), else
    CAIRN_TEST_OPERATOR's."""
    mode: str = getattr(request, "param", None) or (
        in_cluster.CHART_MODE if in_cluster.wanted() else in_cluster.IN_PROCESS_MODE
    )
    return mode


@pytest.fixture
def operator(
    k8s: Kube, namespace: str, operator_mode: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningOperator]:
    """The Cairn controllers running in-process, watching `namespace`, once kopf is healthy;
    their metrics are served on a free port. With CAIRN_TEST_OPERATOR=chart, and in the chart
    run of a both_operators test: the operator the Helm chart installs in `namespace` instead
    (tests/support/in_cluster.py).

    At teardown the operator is stopped, and the test fails unless it exited cleanly.
    """
    if operator_mode == in_cluster.CHART_MODE:
        with in_cluster.installed(k8s, namespace) as ip:
            yield RunningOperator(
                namespace=namespace,
                health_url=f"http://{ip}:{in_cluster.HEALTH_PORT}/healthz",
                metrics_url=f"http://{ip}:{in_cluster.METRICS_PORT}/metrics",
                runner=None,
            )
        return
    health_url = f"http://127.0.0.1:{free_local_port()}/healthz"
    metrics_address = f"127.0.0.1:{free_local_port()}"
    monkeypatch.setenv(METRICS_ENV, metrics_address)  # read by the operator's startup
    runner = KopfRunner(kopf_run_args(namespace, health_url), timeout=STOP_TIMEOUT)
    with runner:
        running = RunningOperator(
            namespace=namespace,
            health_url=health_url,
            metrics_url=f"http://{metrics_address}/metrics",
            runner=runner,
        )
        wait_until_healthy(running)
        yield running
    # An exception in the operator has already been re-raised when the `with` block ended.
    assert runner.exit_code == 0, runner.output


@pytest.fixture
def operator_process(namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """`cairn-operator` in a process of its own, watching `namespace`, as users run it; the test
    starts it (and may SIGKILL and restart it). Its output goes to the file `.log` names, in
    tmp_path; it is killed at teardown."""
    operator = OperatorProcess(namespace, tmp_path / "operator.log")
    yield operator
    operator.kill()


@pytest.fixture
def artifacts(cluster: Cluster, namespace: str) -> Iterator[Path]:
    """The namespace's `cairn-artifacts` claim; yields the directory on this machine behind it."""
    if not is_localkube(cluster.kubeconfig):
        # A skip here once hid half of the suite when the same kubeconfig was named another
        # way: a cluster these tests cannot use fails the run.
        pytest.fail(
            f"the cluster under test ({cluster.kubeconfig}) is not hack/localkube's "
            f"({localkube_kubeconfig()}): this test reads its artifact volume's directory",
            pytrace=False,
        )
    directory = create_artifacts_claim(namespace)
    yield directory
    delete_artifacts_claim(namespace)


@pytest.fixture(scope="session")
def object_store(k8s: Kube) -> ObjectStore:
    """The local cluster's S3-compatible server (hack/storage/up.sh), started when missing."""
    try:
        return ensure_object_store(k8s)
    except ObjectStoreUnavailable as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def bucket(object_store: ObjectStore, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new bucket for this test alone, emptied and deleted afterwards."""
    name = object_store.create_bucket(request.node.name.replace("_", "-").strip("-"))
    yield name
    object_store.delete_bucket(name)
