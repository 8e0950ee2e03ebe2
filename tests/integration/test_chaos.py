"""Chaos: the operator process is SIGKILLed at random moments of a whole workload (runs trained
and registered, one started by a ContinuousTraining's retrain request, a version served, an
alias move rolled out through a canary under traffic, a broken version's canary rolled back by
its analysis), and restarted at once. Afterwards nothing is duplicated, lost, orphaned or moved
by anyone but the user, and no request failed (but the broken version's answers to the rows it
fails on, which are what its analysis judges).

CAIRN_CHAOS_KILLS kills (default 20; `make chaos` runs more), at moments drawn with
CAIRN_CHAOS_SEED (printed; set it to replay a failure). The last line printed is
`chaos_runs=N invariant_violations=0`. test_control_plane_chaos.py does the same through
restarts of the API server, etcd and the kubelet.
"""

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chaos import RUNS, TIMEOUT, Fault, RandomFaults, run_workload
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.usefixtures("crds_installed")

KILLS = int(os.environ.get("CAIRN_CHAOS_KILLS", "20"))
SEED = int(os.environ.get("CAIRN_CHAOS_SEED") or random.randrange(2**32))


@pytest.fixture
def operator_process(namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(namespace, tmp_path / "operator.log")
    operator.start()
    yield operator
    operator.kill()


@pytest.mark.timeout(TIMEOUT)
def test_the_workload_converges_whatever_moment_the_operator_is_killed(
    k8s: Kube, namespace: str, artifacts: Path, operator_process: OperatorProcess
) -> None:
    print(f"CAIRN_CHAOS_SEED={SEED} CAIRN_CHAOS_KILLS={KILLS}")

    def kill_and_restart() -> None:
        operator_process.kill()
        operator_process.start()

    # Kills 0.5 to 3 s apart, so that they fall all over the workload.
    kills = RandomFaults([Fault("operator SIGKILL", kill_and_restart)], KILLS, SEED, (0.5, 3.0))
    try:
        violations, sent, _ = run_workload(k8s, namespace, artifacts, kills)
    finally:
        kills.close()
    print(f"{kills.summary()}; traffic {dict(sent.answers)}")
    # Whole, on their own lines: pytest would cut a long assertion message short.
    for violation in violations:
        print(f"violation: {violation}")
    print(f"chaos_runs={RUNS} invariant_violations={len(violations)}")
    assert not violations, violations
