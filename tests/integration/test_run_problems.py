"""A run that cannot start says so at once, with the reason and the fix; registration never sticks;
an object the API models refuse is reported on it, never retried in a loop."""

from pathlib import Path
from typing import Any

import pytest

from tests.support.artifacts import create_artifacts_claim, delete_artifacts_claim
from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.training import (
    GROUP,
    TREE_TRAINER,
    VERSION,
    apply_example,
    condition,
    create_run,
    expect_event,
    get,
    script_config_map,
    version_manifest,
    wait_for_run,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

REPO_ROOT = Path(__file__).resolve().parents[2]


def waiting_because(k8s: Kube, namespace: str, name: str, reason: str) -> dict[str, Any]:
    def said() -> dict[str, Any] | None:
        run = get(k8s, namespace, "trainingruns", name) or {}
        status = run.get("status") or {}
        if status.get("phase") == "Pending" and condition(run, "Running").get("reason") == reason:
            return run
        return None

    found: dict[str, Any] = wait_for(
        said,
        timeout=60,
        message=f"run {name} to be Pending with reason {reason}",
        describe=lambda: str((get(k8s, namespace, "trainingruns", name) or {}).get("status")),
    )
    return found


def test_a_run_without_the_artifact_claim_says_so_before_any_job_and_starts_once_it_exists(
    k8s: Kube, namespace: str, operator: RunningOperator
) -> None:
    """`kubectl apply -f examples/iris/` in a namespace that has no cairn-artifacts claim."""
    apply_example(namespace, REPO_ROOT / "examples/iris")
    run = waiting_because(k8s, namespace, "iris-1", "ArtifactClaimMissing")
    message = run["status"]["message"]
    assert "PersistentVolumeClaim cairn-artifacts" in message and "create it" in message
    assert not k8s.batch.list_namespaced_job(namespace).items  # nothing that would hang
    expect_event(k8s, namespace, "iris-1", "ArtifactClaimMissing")

    create_artifacts_claim(namespace)
    try:
        wait_for_run(k8s, namespace, "iris-1", "Succeeded", timeout=240, registered=True)
    finally:
        delete_artifacts_claim(namespace)


def test_a_pod_that_cannot_be_scheduled_makes_the_run_pending_with_the_schedulers_words(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "tiny", TREE_TRAINER)
    create_run(
        k8s, namespace, "nowhere", model="m", code="tiny", nodeSelector={"cairn.dev/gpu": "h100"}
    )
    run = waiting_because(k8s, namespace, "nowhere", "Unschedulable")
    assert "cannot be scheduled" in run["status"]["message"]
    assert "node" in run["status"]["message"]  # the scheduler's own account
    expect_event(k8s, namespace, "nowhere", "Unschedulable")


def test_a_missing_code_config_map_is_named_with_the_fix(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    create_run(k8s, namespace, "no-code", model="m", code="absent")
    run = waiting_because(k8s, namespace, "no-code", "CodeConfigMapMissing")
    assert "kubectl create configmap absent" in run["status"]["message"]


def test_a_version_name_taken_by_another_object_is_skipped(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    """A ModelVersion made by hand holds iris-v1: the run registers as v2 instead of failing
    forever on the name."""
    artifact = {"uri": "pvc://cairn-artifacts/by-hand", "digest": "sha256:" + "0" * 64}
    k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modelversions", version_manifest("taken", 1, artifact)
    )
    script_config_map(k8s, namespace, "tiny", TREE_TRAINER)
    create_run(k8s, namespace, "taken-run", model="taken", code="tiny")
    run = wait_for_run(k8s, namespace, "taken-run", "Succeeded", timeout=240, registered=True)
    assert run["status"]["modelVersion"] == "taken-v2"
    by_hand = get(k8s, namespace, "modelversions", "taken-v1")
    assert by_hand is not None and by_hand["spec"]["artifact"] == artifact  # never overwritten


def test_params_the_api_refuses_fail_the_run_naming_the_field(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    """The CRD cannot say "a string, number or boolean" (a structural schema has no such union);
    the API model can: the run fails at once, saying which parameter, and creates nothing."""
    create_run(k8s, namespace, "nested", model="m", params={"layers": {"hidden": 3}})
    run = wait_for_run(k8s, namespace, "nested", "Failed", timeout=60)
    assert run["status"]["failureReason"] == "InvalidSpec"
    assert "spec.params.layers" in run["status"]["message"]
    assert not k8s.batch.list_namespaced_job(namespace).items
    expect_event(k8s, namespace, "nested", "InvalidSpec")
