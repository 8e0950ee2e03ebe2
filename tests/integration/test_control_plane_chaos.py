"""Chaos in the control plane: while the whole chaos workload runs (runs trained and registered,
one started by a ContinuousTraining's retrain request, a version served, an alias move rolled
out through a canary under traffic, a broken version's canary rolled back), the API server is
stopped for 10 s, etcd is stopped for 10 s, the kubelet is restarted, at seeded random moments;
and a serving pod is deleted while the canary is in flight. Afterwards nothing is duplicated,
lost, orphaned or moved by anyone but the user, no request through the Service failed (but those
refused while the API server or etcd was away kept an ended pod's endpoint in kube-proxy, or
while a restarted kubelet reported every pod unready until its first probe: counted apart), and
the operator's memory grew by no more than a workload's worth.

The faults restart components every other test shares: the suite runs its tests one at a time,
and each fault waits until the cluster is whole again (hack/localkube/restart.sh) before the next.
CAIRN_CONTROL_PLANE_FAULTS faults (default 6, in one round of the workload; `make chaos` runs 20 of
each kind over as many rounds as they take, CAIRN_CHAOS_ROUNDS at most), at moments drawn with
CAIRN_CHAOS_SEED (printed; set it to replay a failure). The last line printed is
`chaos_runs=N invariant_violations=0`.
"""

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.api.labels import DEPLOYMENT_LABEL
from tests.support.artifacts import create_artifacts_claim, delete_artifacts_claim
from tests.support.chaos import (
    RUNS,
    WATCHES_BACK_SECONDS,
    RandomFaults,
    patient_retries,
    restart_component,
    rss_mib,
    run_workload,
)
from tests.support.cluster import Cluster
from tests.support.kube import Kube, read_or_none
from tests.support.namespaces import create_test_namespace, delete_namespace
from tests.support.operator import OperatorProcess
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

FAULTS = int(os.environ.get("CAIRN_CONTROL_PLANE_FAULTS", "6"))
# Workloads, one after another in namespaces of their own, while faults are left to inject.
MAX_ROUNDS = int(os.environ.get("CAIRN_CHAOS_ROUNDS", "1"))
SEED = int(os.environ.get("CAIRN_CHAOS_SEED") or random.randrange(2**32))
DOWN_SECONDS = 10
# Room for what a workload itself adds to the operator (its objects in the watch caches, a
# rollout's state): a watch re-listed after every restart that kept its old objects besides the
# new ones, or a client per reconnect never closed, grows far beyond it over the faults.
MEMORY_GROWTH_MIB = 64
# A round takes 4 to 8 minutes under faults.
TIMEOUT = 600 * MAX_ROUNDS


@pytest.fixture
def patient(cluster: Cluster) -> Iterator[Kube]:
    """API clients that wait out the faults instead of failing the test's reads."""
    kube = Kube.from_kubeconfig(cluster.kubeconfig, retries=patient_retries())
    yield kube
    kube.api_client.close()


@contextlib.contextmanager
def round_namespace(
    k8s: Kube, tmp_path: Path, number: int
) -> Iterator[tuple[OperatorProcess, Path]]:
    """A namespace of its own with its artifact claim (and the claim's directory here), and an
    operator watching it."""
    # The controller manager may still be backing off its watches after the last round's API
    # server restart (its ServiceAccount controller once took more than 60 s).
    namespace = create_test_namespace(
        k8s, hint=f"control-plane-chaos-{number}", service_account_timeout=WATCHES_BACK_SECONDS
    )
    operator = OperatorProcess(namespace, tmp_path / f"operator-{number}.log")
    try:
        artifacts = create_artifacts_claim(namespace)
        operator.start()
        yield operator, artifacts
    finally:
        operator.kill()
        delete_artifacts_claim(namespace)
        delete_namespace(k8s, namespace)


@pytest.mark.timeout(TIMEOUT)
def test_the_workload_converges_through_api_server_etcd_and_kubelet_restarts(
    k8s: Kube, patient: Kube, tmp_path: Path
) -> None:
    print(f"CAIRN_CHAOS_SEED={SEED} CAIRN_CONTROL_PLANE_FAULTS={FAULTS}")
    faults = RandomFaults(
        [
            restart_component("kube-apiserver", DOWN_SECONDS),
            restart_component("etcd", DOWN_SECONDS),
            restart_component("kubelet", 0),
        ],
        FAULTS,
        SEED,
        gap=(1.0, 8.0),
    )
    pick = random.Random(SEED)
    violations: list[str] = []
    rounds = 0
    try:
        while rounds == 0 or (faults.pending and rounds < MAX_ROUNDS):
            rounds += 1
            with round_namespace(k8s, tmp_path, rounds) as (operator, artifacts):
                found = one_round(patient, operator, artifacts, faults, pick)
            # Printed as each round ends: a later round that raises must not lose them.
            for violation in found:
                print(f"violation: {violation}")
            violations += found
    finally:
        faults.close()
    print(f"faults: {faults.summary()}")
    print(f"chaos_runs={RUNS * rounds} invariant_violations={len(violations)}")
    assert not violations, violations


def one_round(
    patient: Kube,
    operator: OperatorProcess,
    artifacts: Path,
    faults: RandomFaults,
    pick: random.Random,
) -> list[str]:
    namespace = operator.namespace
    killed: list[str] = []

    def delete_a_serving_pod() -> None:
        # Alone: with the control plane whole, a pod deleted gracefully loses no request (its
        # server serves on through --shutdown-delay while kube-proxy drops its endpoint, and,
        # when no other pod is ready yet, until one is: test_last_pod_deleted.py).
        with faults.held():
            pods = patient.core.list_namespaced_pod(namespace, label_selector=DEPLOYMENT_LABEL)
            victim = pick.choice(sorted(pod.metadata.name for pod in pods.items))
            faults.note(f"pod {victim} deleted")
            patient.core.delete_namespaced_pod(victim, namespace)
            killed.append(victim)
            wait_for(
                lambda: read_or_none(patient.core.read_namespaced_pod, victim, namespace) is None,
                timeout=120,
                message=f"pod {victim} to be gone",
            )
            faults.note(f"pod {victim} gone")

    pid = operator.wait_until_healthy()
    start_mib = rss_mib(pid)
    violations, sent, spells = run_workload(
        patient, namespace, artifacts, faults, during_canary=delete_a_serving_pod
    )
    end_mib = rss_mib(pid)
    if end_mib - start_mib > MEMORY_GROWTH_MIB:
        violations.append(f"operator memory {start_mib:.0f} → {end_mib:.0f} MiB")
    print(
        f"{namespace}: serving pod deleted {killed}; traffic {dict(sent.answers)}, refusals "
        f"counted apart {faults.excused_failures(sent.failed_at, spells)}; "
        f"operator {start_mib:.0f} → {end_mib:.0f} MiB; faults so far: {faults.summary()}"
    )
    return [f"{namespace}: {violation}" for violation in violations]
