"""Training and registration end to end: real pods train, the operator registers what they made."""

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from kubernetes import watch

from cairn.storage.digest import directory_digest
from tests.support.kube import Kube, read_or_none
from tests.support.operator import RunningOperator
from tests.support.training import (
    apply_example,
    condition,
    create_model,
    create_run,
    expect_event,
    expect_events,
    get,
    script_config_map,
    version_numbers,
    wait_for_phase,
    wait_for_run,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

REPO_ROOT = Path(__file__).resolve().parents[2]
# No node has this label: the run's Job exists and its pod waits, unscheduled.
NO_NODE = {"cairn.dev/test": "no-such-node"}
TINY_TRAINER = textwrap.dedent(
    """
    from sklearn.linear_model import LogisticRegression
    from cairn import training

    data = training.load_dataset()
    model = LogisticRegression(max_iter=200).fit(data.X, data.y)
    training.log_metric("accuracy", float(model.score(data.X, data.y)))
    training.save_model(model)
    """
)


@pytest.mark.both_operators
def test_iris_example_trains_and_registers_version_1(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    apply_example(namespace, REPO_ROOT / "examples/iris")
    # Succeeded is written first, Registered right after it (its own write, for crash safety).
    run = wait_for_run(k8s, namespace, "iris-1", "Succeeded", timeout=240, registered=True)
    assert condition(run, "Registered")["status"] == "True"

    version = get(k8s, namespace, "modelversions", "iris-v1")
    assert version is not None
    assert version["spec"]["metrics"]["accuracy"] >= 0.9
    assert version["spec"]["source"]["run"] == "iris-1"
    assert version["spec"]["source"]["dataset"]["digest"].startswith("sha256:")
    # Lineage names the image the pod ran and its digest, as the kubelet reported them.
    assert version["spec"]["source"]["image"] == "docker.io/cairn/trainer:dev"
    assert "sha256:" in version["spec"]["source"]["imageId"]
    # The digest the registry recorded is the digest of the files the pod wrote on the volume.
    uri = version["spec"]["artifact"]["uri"]
    run_dir = artifacts / uri.removeprefix("pvc://cairn-artifacts/")
    assert version["spec"]["artifact"]["digest"] == directory_digest(run_dir)
    assert run["status"]["artifact"] == version["spec"]["artifact"]
    expect_events(k8s, namespace, "iris-1", {"JobCreated", "Succeeded", "Registered"})
    # No finalizer: objects stay deletable when the operator is not running.
    assert not run["metadata"].get("finalizers")
    assert not version["metadata"].get("finalizers")

    wait_for_phase(k8s, namespace, "iris-v1", "Approved")
    model = wait_for(
        lambda: (
            (m := get(k8s, namespace, "models", "iris"))
            and (m.get("status") or {}).get("aliases") == {"production": 1}
            and m
        ),
        timeout=60,
        message="Model iris to resolve production to version 1",
    )
    assert model["status"]["latestVersion"] == 1
    assert condition(model, "AliasesResolved")["status"] == "True"


def test_failing_script_fails_with_its_log_tail_and_registers_nothing(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script = "import sys\nprint('loading data')\nprint('bad column: petal_size')\nsys.exit(3)\n"
    script_config_map(k8s, namespace, "broken", script)
    create_run(k8s, namespace, "broken-1", model="broken", code="broken")

    run = wait_for_run(k8s, namespace, "broken-1", "Failed", timeout=120)
    failed = condition(run, "Failed")
    assert failed["reason"] == "NonZeroExit"
    assert "exited with code 3" in failed["message"]
    assert "bad column: petal_size" in failed["message"]
    assert run["status"]["failureReason"] == "NonZeroExit"
    assert get(k8s, namespace, "modelversions", "broken-v1") is None
    expect_event(k8s, namespace, "broken-1", "NonZeroExit")


def test_a_log_that_is_json_is_kept_as_written(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    """Structured logging: the log tail in status is the text the trainer wrote, not the repr
    the Kubernetes client makes of a body that parses as JSON."""
    line = '{"level": "error", "message": "bad column", "column": "petal_size"}'
    script_config_map(k8s, namespace, "jsonlog", f"import sys\nprint({line!r})\nsys.exit(3)\n")
    create_run(k8s, namespace, "jsonlog-1", model="jsonlog", code="jsonlog")

    run = wait_for_run(k8s, namespace, "jsonlog-1", "Failed", timeout=120)
    assert line in condition(run, "Failed")["message"], condition(run, "Failed")


def test_missing_image_fails_at_once(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    create_run(k8s, namespace, "noimage-1", model="noimage", image="docker.io/cairn/nope:dev")
    run = wait_for_run(k8s, namespace, "noimage-1", "Failed", timeout=60)
    assert condition(run, "Failed")["reason"] == "ImageMissing"
    assert "docker.io/cairn/nope:dev" in condition(run, "Failed")["message"]


def test_failed_gate_keeps_the_version_out_of_aliases(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    create_model(
        k8s,
        namespace,
        "strict",
        {
            "policy": {"gates": [{"metric": "accuracy", "op": ">=", "threshold": 1.01}]},
            "aliases": {"production": 1},
        },
    )
    script_config_map(k8s, namespace, "tiny", TINY_TRAINER)
    create_run(k8s, namespace, "strict-1", model="strict", code="tiny")
    wait_for_run(k8s, namespace, "strict-1", "Succeeded", timeout=180)

    version = wait_for_phase(k8s, namespace, "strict-v1", "Invalid")
    assert condition(version, "Validated")["status"] == "False"
    assert "fails >= 1.01" in condition(version, "Validated")["message"]
    model = wait_for(
        lambda: (
            (m := get(k8s, namespace, "models", "strict"))
            and condition(m, "AliasesResolved").get("status") == "False"
            and "strict-v1 is Invalid" in condition(m, "AliasesResolved")["message"]
            and m
        ),
        timeout=60,
        message="the alias to an invalid version to be refused",
    )
    assert "production" not in (model["status"].get("aliases") or {})


def test_approval_is_required_and_given_with_the_cli(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    create_model(
        k8s, namespace, "gated", {"policy": {"requireApproval": True}, "aliases": {"production": 1}}
    )
    script_config_map(k8s, namespace, "tiny", TINY_TRAINER)
    create_run(k8s, namespace, "gated-1", model="gated", code="tiny")
    wait_for_run(k8s, namespace, "gated-1", "Succeeded", timeout=180)
    wait_for_phase(k8s, namespace, "gated-v1", "PendingApproval")

    subprocess.run(
        ["cairn", "approve", "gated", "1", "-n", namespace, "--reason", "reviewed"], check=True
    )
    version = wait_for_phase(k8s, namespace, "gated-v1", "Approved")
    assert version["spec"]["approval"]["reason"] == "reviewed"
    wait_for(
        lambda: (
            ((get(k8s, namespace, "models", "gated") or {}).get("status") or {}).get("aliases")
            == {"production": 1}
        ),
        timeout=60,
        message="production to resolve to the approved version",
    )


def test_twenty_concurrent_runs_get_versions_1_to_20_once_each(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "tiny", TINY_TRAINER)
    names = [f"many-{i}" for i in range(20)]
    for name in names:
        create_run(k8s, namespace, name, model="many", code="tiny")
    runs: list[dict[str, Any]] = [
        wait_for_run(k8s, namespace, name, "Succeeded", timeout=600, registered=True)
        for name in names
    ]
    assert sorted(run["status"]["version"] for run in runs) == list(range(1, 21))
    assert version_numbers(k8s, namespace, "many") == list(range(1, 21))
    model = get(k8s, namespace, "models", "many")
    assert model is not None
    assert model["status"]["latestVersion"] == 20


def test_deleting_a_run_deletes_its_job(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "tiny", TINY_TRAINER)
    create_run(k8s, namespace, "gone-1", model="gone", code="tiny", nodeSelector=NO_NODE)
    wait_for(
        lambda: read_or_none(k8s.batch.read_namespaced_job, "gone-1", namespace),
        timeout=60,
        message="the run's Job",
    )
    k8s.custom.delete_namespaced_custom_object(
        "cairn.dev", "v1alpha1", namespace, "trainingruns", "gone-1"
    )
    wait_for(
        lambda: read_or_none(k8s.batch.read_namespaced_job, "gone-1", namespace) is None,
        timeout=60,
        message="garbage collection of the Job",
    )


def test_retention_keeps_the_newest_and_the_aliased_versions(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    create_model(
        k8s, namespace, "kept", {"retention": {"keepVersions": 1}, "aliases": {"production": 1}}
    )
    script_config_map(k8s, namespace, "tiny", TINY_TRAINER)
    for i in range(3):
        create_run(k8s, namespace, f"kept-{i}", model="kept", code="tiny")
        wait_for_run(k8s, namespace, f"kept-{i}", "Succeeded", timeout=180, registered=True)
    wait_for(
        lambda: version_numbers(k8s, namespace, "kept") == [1, 3],
        timeout=90,
        message="version 2 to be retired while 1 (aliased) and 3 (newest) stay",
        describe=lambda: f"versions: {version_numbers(k8s, namespace, 'kept')}",
    )


def test_a_suspended_run_has_no_job_until_it_is_resumed_and_then_trains(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "tiny", TINY_TRAINER)
    create_run(k8s, namespace, "later-1", model="later", code="tiny", suspend=True)
    run = wait_for_run(k8s, namespace, "later-1", "Pending", timeout=60)
    assert condition(run, "Running")["reason"] == "Suspended"
    assert "jobName" not in run["status"]
    assert read_or_none(k8s.batch.read_namespaced_job, "later-1", namespace) is None

    k8s.custom.patch_namespaced_custom_object(
        "cairn.dev", "v1alpha1", namespace, "trainingruns", "later-1", {"spec": {"suspend": False}}
    )
    run = wait_for_run(k8s, namespace, "later-1", "Succeeded", timeout=180, registered=True)
    assert run["status"]["jobName"] == "later-1"
    assert version_numbers(k8s, namespace, "later") == [1]


def test_suspending_a_training_run_ends_its_code_with_sigterm_not_the_grace_periods_sigkill(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    """Training code that installs no SIGTERM handler (most do not) still ends when the kubelet
    asks: its process is not PID 1 of its pod, whose signals the kernel would drop."""
    script = "import time\nprint('training started', flush=True)\ntime.sleep(600)\n"
    script_config_map(k8s, namespace, "forever", script)
    create_run(k8s, namespace, "forever-1", model="forever", code="forever")
    selector = "batch.kubernetes.io/job-name=forever-1"

    def started() -> str | None:
        for pod in k8s.core.list_namespaced_pod(namespace, label_selector=selector).items:
            if pod.status.phase != "Running":
                continue  # no log to read yet
            log = read_or_none(k8s.core.read_namespaced_pod_log, pod.metadata.name, namespace)
            if log and "training started" in log:
                return str(pod.metadata.name)
        return None

    pod = wait_for(started, timeout=120, message="the training code to start")
    since = k8s.core.list_namespaced_pod(namespace, label_selector=selector).metadata
    k8s.custom.patch_namespaced_custom_object(
        "cairn.dev", "v1alpha1", namespace, "trainingruns", "forever-1", {"spec": {"suspend": True}}
    )
    # The kubelet writes the container's end before the pod goes: 143 is SIGTERM's default
    # action, 137 the SIGKILL that ends the grace period (30 s) of a process that ignored it.
    exit_codes = []
    for event in watch.Watch().stream(
        k8s.core.list_namespaced_pod,
        namespace,
        label_selector=selector,
        resource_version=since.resource_version,
        timeout_seconds=90,
    ):
        found = event["object"]
        for status in (found.status.container_statuses or []) if found.metadata.name == pod else []:
            if status.state.terminated is not None:
                exit_codes.append(status.state.terminated.exit_code)
        if event["type"] == "DELETED" or exit_codes:
            break
    assert exit_codes[:1] == [143], f"the training container ended with {exit_codes}"
    # Stopped by its suspension, not failed by it.
    run = wait_for_run(k8s, namespace, "forever-1", "Pending", timeout=60)
    assert condition(run, "Running")["reason"] == "Suspended"


def test_a_run_whose_job_vanished_fails_instead_of_training_again(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "tiny", TINY_TRAINER)
    create_run(k8s, namespace, "lost-1", model="lost", code="tiny", nodeSelector=NO_NODE)
    wait_for_run(k8s, namespace, "lost-1", "Pending", timeout=60)  # observed: its Job exists
    assert read_or_none(k8s.batch.read_namespaced_job, "lost-1", namespace) is not None
    k8s.batch.delete_namespaced_job("lost-1", namespace, propagation_policy="Background")

    run = wait_for_run(k8s, namespace, "lost-1", "Failed", timeout=60)
    assert condition(run, "Failed")["reason"] == "JobLost"
    assert "create a new run" in condition(run, "Failed")["message"]
    assert read_or_none(k8s.batch.read_namespaced_job, "lost-1", namespace) is None
