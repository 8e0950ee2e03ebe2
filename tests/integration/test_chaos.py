"""Chaos: the operator process is SIGKILLed at random moments of a whole workload (runs trained
and registered, a version served, an alias move rolled out through a canary under traffic), and
restarted at once. Afterwards nothing is duplicated, lost, orphaned or moved by anyone but the
user, and no request failed.

CAIRN_CHAOS_KILLS kills (default 20; `make chaos` runs more), at moments drawn with
CAIRN_CHAOS_SEED (printed; set it to replay a failure). The last line printed is
`chaos_runs=N invariant_violations=0`.
"""

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.deployments import create_deployment, service_base, wait_serving
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.rollouts import SETOSA, canary_spec, status_of, traffic
from tests.support.training import (
    GROUP,
    TREE_TRAINER,
    VERSION,
    create_model,
    create_run,
    get,
    script_config_map,
    version_numbers,
    wait_for_phase,
    wait_for_run,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
KILLS = int(os.environ.get("CAIRN_CHAOS_KILLS", "20"))
SEED = int(os.environ.get("CAIRN_CHAOS_SEED") or random.randrange(2**32))
RUNS = 4
TIMEOUT = 600


class Chaos:
    """Kills the operator at random moments, 0.5 to 3 s apart so that the kills fall all over
    the workload, until stopped or out of kills; the process is started again right away."""

    def __init__(self, operator: OperatorProcess, kills: int, seed: int) -> None:
        self.operator, self.left, self.random = operator, kills, random.Random(seed)
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while self.left and not self._stop.wait(self.random.uniform(0.5, 3.0)):
            self.operator.kill()
            self.operator.start()
            self.kills += 1
            self.left -= 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture
def chaos(namespace: str, tmp_path: Path) -> Iterator[Chaos]:
    operator = OperatorProcess(namespace, tmp_path / "operator.log")
    operator.start()
    killer = Chaos(operator, KILLS, SEED)
    yield killer
    killer.stop()
    operator.kill()


def set_production(k8s: Kube, namespace: str, version: int) -> None:
    patch = {"spec": {"aliases": {"production": version}}}
    k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "models", "iris", patch)


def test_the_workload_converges_whatever_moment_the_operator_is_killed(
    k8s: Kube, namespace: str, artifacts: Path, chaos: Chaos
) -> None:
    print(f"CAIRN_CHAOS_SEED={SEED} CAIRN_CHAOS_KILLS={KILLS}")
    script_config_map(k8s, namespace, "tree", TREE_TRAINER)
    create_model(k8s, namespace, "iris", {})
    chaos.start()
    violations: list[str] = []

    # Runs trained and registered, two at once, killed at any moment.
    for number in range(1, RUNS + 1):
        create_run(k8s, namespace, f"chaos-{number}", model="iris", code="tree")
    runs = [
        wait_for_run(k8s, namespace, f"chaos-{n}", "Succeeded", timeout=TIMEOUT, registered=True)
        for n in range(1, RUNS + 1)
    ]
    if sorted(run["status"]["version"] for run in runs) != list(range(1, RUNS + 1)):
        violations.append(f"run versions {[run['status']['version'] for run in runs]}")
    if version_numbers(k8s, namespace, "iris") != list(range(1, RUNS + 1)):
        violations.append(f"ModelVersions {version_numbers(k8s, namespace, 'iris')}")

    # v1 served, then production moved to the last version: a canary under traffic.
    set_production(k8s, namespace, 1)
    wait_for_phase(k8s, namespace, "iris-v1", "Approved")
    steps: list[Body] = [{"setWeight": 50}, {"pause": {"duration": "5s"}}]
    create_deployment(
        k8s,
        namespace,
        "chaos",
        alias="production",
        strategy=canary_spec(steps, analysis=None),
    )
    wait_serving(k8s, namespace, "chaos", 1)
    with traffic(service_base(k8s, namespace, "chaos"), [SETOSA.tolist()]) as sent:
        set_production(k8s, namespace, RUNS)
        wait_for(
            lambda: (
                (lambda s: s.get("phase") == "Available" and not s.get("canary"))(
                    status_of(k8s, namespace, "chaos")
                )
                and (status_of(k8s, namespace, "chaos").get("stable") or {}).get("version") == RUNS
            ),
            timeout=TIMEOUT,
            message=f"the rollout of iris-v{RUNS} to end promoted",
            describe=lambda: str(status_of(k8s, namespace, "chaos")),
        )
    chaos.stop()

    model = get(k8s, namespace, "models", "iris") or {}
    if (model["spec"].get("aliases") or {}).get("production") != RUNS:
        violations.append(f"production moved by someone else: {model['spec'].get('aliases')}")
    if (model.get("status") or {}).get("latestVersion") != RUNS:
        violations.append(f"latestVersion {model.get('status')}")
    jobs = k8s.batch.list_namespaced_job(namespace, label_selector="cairn.dev/model=iris").items
    if sorted(job.metadata.name for job in jobs) != [f"chaos-{n}" for n in range(1, RUNS + 1)]:
        violations.append(f"Jobs {[job.metadata.name for job in jobs]}")
    deployments = [d.metadata.name for d in k8s.apps.list_namespaced_deployment(namespace).items]
    if deployments != ["chaos-stable"]:
        violations.append(f"Deployments {deployments}")
    services = sorted(s.metadata.name for s in k8s.core.list_namespaced_service(namespace).items)
    if services != ["chaos"]:
        violations.append(f"Services {services}")
    if sent.failures():
        violations.append(f"requests failed: {sent.answers}")
    print(f"killed {chaos.kills} times; traffic {dict(sent.answers)}")
    print(f"chaos_runs={RUNS} invariant_violations={len(violations)}")
    assert not violations, violations
