"""`cairn-operator` observed from outside: its /metrics after a real training, and its JSON logs."""

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cairn import __version__
from tests.support.http import get_or_none
from tests.support.kube import Kube
from tests.support.operator import (
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    RunningOperator,
    free_local_port,
)
from tests.support.training import kubectl, wait_for_phase, wait_for_run
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

IRIS = Path(__file__).resolve().parents[2] / "examples/iris"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class OperatorProcess:
    """`cairn-operator` as the Helm chart runs it: JSON logs, metrics on their own port."""

    def __init__(self, namespace: str, log: Path) -> None:
        self.log = log
        self.health_url = f"http://127.0.0.1:{free_local_port()}/healthz"
        self.metrics_url = f"http://127.0.0.1:{free_local_port()}/metrics"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    "cairn-operator",
                    "--namespace",
                    namespace,
                    "--health-addr",
                    self.health_url.removeprefix("http://").removesuffix("/healthz"),
                    "--metrics-addr",
                    self.metrics_url.removeprefix("http://").removesuffix("/metrics"),
                    "--log-format",
                    "json",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_until_healthy(self) -> None:
        def healthy() -> bool:
            assert self.process.poll() is None, f"cairn-operator exited:\n{self.log.read_text()}"
            response = get_or_none(self.health_url)
            return response is not None and response.status_code == 200

        wait_for(healthy, timeout=STARTUP_TIMEOUT, message=f"{self.health_url} to answer 200")

    def scrape(self) -> Samples:
        response = get_or_none(self.metrics_url)
        assert response is not None and response.status_code == 200, self.metrics_url
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def operator_process(namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(namespace, tmp_path / "operator.log")
    yield operator
    operator.stop()


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def json_lines(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as error:
            pytest.fail(f"line {number} of the operator's output is not JSON ({error}): {line}")
        assert isinstance(parsed[-1], dict), line
    return parsed


def test_a_training_shows_in_metrics_and_json_logs(
    k8s: Kube, namespace: str, artifacts: Path, operator_process: OperatorProcess
) -> None:
    operator_process.wait_until_healthy()
    before = operator_process.scrape()
    assert value(before, "cairn_operator_reconciles_total", kind="TrainingRun", result="error") == 0
    for manifest in ("configmap.yaml", "model.yaml", "trainingrun.yaml"):
        subprocess.run(
            [kubectl(), "apply", "-n", namespace, "-f", str(IRIS / manifest)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    run = wait_for_run(k8s, namespace, "iris-1", "Succeeded", timeout=240, registered=True)
    wait_for_phase(k8s, namespace, "iris-v1", "Approved")

    # The phase gauge follows the operator's watch of the run: it may lag the API by an event.
    def counted_succeeded() -> Samples | None:
        found = operator_process.scrape()
        succeeded = {"namespace": namespace, "phase": "Succeeded"}
        return found if value(found, "cairn_operator_trainingruns", **succeeded) == 1 else None

    samples = wait_for(
        counted_succeeded,
        timeout=30,
        message="cairn_operator_trainingruns to count the run as Succeeded",
    )
    assert value(samples, "cairn_operator_trainingruns", namespace=namespace, phase="Running") == 0
    assert value(samples, "cairn_operator_training_duration_seconds_count", result="succeeded") == 1
    # The run's Job took at least as long as the pod's training.
    assert value(samples, "cairn_operator_training_duration_seconds_sum", result="succeeded") > 0
    assert value(samples, "cairn_operator_training_duration_seconds_count", result="failed") == 0
    registered_total = "cairn_operator_model_versions_registered_total"
    assert value(samples, registered_total, namespace=namespace) == 1

    # A Model's reconcile may approve the version before the version's own reconcile has run.
    def reconciled_every_kind() -> Samples | None:
        found = operator_process.scrape()
        kinds = ("TrainingRun", "Model", "ModelVersion")
        done = all(
            value(found, "cairn_operator_reconciles_total", kind=kind, result="success") >= 1
            and value(found, "cairn_operator_reconcile_duration_seconds_count", kind=kind) >= 1
            for kind in kinds
        )
        return found if done else None

    samples = wait_for(
        reconciled_every_kind, timeout=30, message="a counted reconcile of every kind"
    )
    assert value(samples, "cairn_operator_build_info", version=__version__) == 1
    assert value(samples, "process_resident_memory_bytes") > 0

    assert operator_process.stop() == 0
    records = json_lines(operator_process.log)
    of_run = [
        r
        for r in records
        if (r.get("object") or {}).get("name") == "iris-1" and r.get("reconcile_id")
    ]
    messages = [r["message"] for r in of_run]
    assert "created Job iris-1" in messages, messages
    assert any(m.startswith("phase ") and m.endswith("→ Succeeded (Succeeded)") for m in messages)
    for record in of_run:
        assert record["object"]["namespace"] == namespace, record
        assert record["object"]["kind"] == "TrainingRun", record
        assert len(record["reconcile_id"]) == 8, record
        assert record["logger"].startswith("cairn."), record
    # The reconcile that registered the run created its version: one id on both lines.
    registered = next(r for r in of_run if r["message"] == "registered as ModelVersion iris-v1")
    created = next(r for r in of_run if r["message"] == "created ModelVersion iris-v1")
    assert created["reconcile_id"] == registered["reconcile_id"]
    assert run["status"]["modelVersion"] == "iris-v1"
    # Every line of Cairn's controllers names its object and reconcile (the resync loop's report
    # of a failed reconcile comes after the reconcile ended, and names the object in its text).
    ours = [
        r
        for r in records
        if str(r.get("logger", "")).startswith("cairn.")
        and r.get("logger") != "cairn.controllers.resync"
    ]
    assert ours, "no log line from cairn's loggers"
    assert all(r.get("object") and r.get("reconcile_id") for r in ours), ours


def test_in_process_operator_serves_metrics_on_the_port_it_was_given(
    operator: RunningOperator,
) -> None:
    """Under `kopf run` the address comes from $CAIRN_METRICS_ADDR (the fixture's free port)."""
    response = get_or_none(operator.metrics_url)

    assert response is not None and response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"cairn_operator_reconciles", "cairn_operator_trainingruns"} <= names
