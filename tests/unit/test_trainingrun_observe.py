"""How a training Job and its pods are read into a run's phase and reason."""

import json
from typing import Any

from cairn.api import TrainingRunPhase as Phase
from cairn.api import TrainingRunReason as Reason
from cairn.controllers.trainingrun.observe import observe

Body = dict[str, Any]


def job(*conditions: tuple[str, str], active: int = 0, failed: int = 0, **spec: Any) -> Body:
    return {
        "metadata": {"name": "r1"},
        "spec": {"template": {"spec": {"containers": [{"image": "img:1"}]}}, **spec},
        "status": {
            "active": active,
            "failed": failed,
            "conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions],
        },
    }


def pod(name: str, phase: str, state: Body) -> Body:
    return {
        "metadata": {"name": name},
        "status": {"phase": phase, "containerStatuses": [{"name": "trainer", "state": state}]},
    }


def terminated(code: int, reason: str = "Error", message: str = "", at: str = "t1") -> Body:
    return {
        "terminated": {"exitCode": code, "reason": reason, "message": message, "finishedAt": at}
    }


def test_no_job_yet_is_pending() -> None:
    assert observe(None, []).phase == Phase.PENDING


def test_active_job_is_running() -> None:
    seen = observe(job(active=1), [pod("p", "Running", {"running": {}})])
    assert (seen.phase, seen.reason) == (Phase.RUNNING, Reason.RUNNING)


def test_success_reads_the_termination_message() -> None:
    summary = {"metrics": {"accuracy": 0.97}, "artifact": {"uri": "pvc://a/b"}}
    pods = [pod("p", "Succeeded", terminated(0, "Completed", json.dumps(summary)))]
    seen = observe(job(("Complete", "")), pods)
    assert seen.phase == Phase.SUCCEEDED
    assert seen.summary == summary


def test_success_without_a_summary_fails_with_a_hint() -> None:
    seen = observe(job(("Complete", "")), [pod("p", "Succeeded", terminated(0, "Completed"))])
    assert (seen.phase, seen.reason) == (Phase.FAILED, Reason.BAD_SUMMARY)
    assert "save_model" in seen.message


def test_garbage_termination_message_is_reported() -> None:
    pods = [pod("p", "Succeeded", terminated(0, "Completed", "not json"))]
    seen = observe(job(("Complete", "")), pods)
    assert (seen.phase, seen.reason) == (Phase.FAILED, Reason.BAD_SUMMARY)


def test_non_zero_exit_names_the_container_and_code() -> None:
    pods = [pod("p", "Failed", terminated(3))]
    seen = observe(job(("Failed", "BackoffLimitExceeded"), failed=1), pods)
    assert (seen.phase, seen.reason) == (Phase.FAILED, Reason.NON_ZERO_EXIT)
    assert "exited with code 3" in seen.message
    assert seen.failed_container is not None and seen.failed_container.pod == "p"


def test_retries_are_mentioned_when_the_job_had_them() -> None:
    pods = [
        pod("p1", "Failed", terminated(1, at="t1")),
        pod("p2", "Failed", terminated(2, at="t2")),
    ]
    seen = observe(job(("Failed", "BackoffLimitExceeded"), failed=2, backoffLimit=1), pods)
    assert "retries exhausted (spec.backoffLimit=1)" in seen.message
    assert seen.failed_container is not None and seen.failed_container.pod == "p2"
    assert seen.attempts == 2


def test_oom_killed_says_so() -> None:
    pods = [pod("p", "Failed", terminated(137, "OOMKilled"))]
    seen = observe(job(("Failed", "BackoffLimitExceeded")), pods)
    assert seen.reason == Reason.OOM_KILLED
    assert "limits.memory" in seen.message


def test_deadline_exceeded() -> None:
    seen = observe(job(("Failed", "DeadlineExceeded"), activeDeadlineSeconds=5), [])
    assert seen.reason == Reason.DEADLINE_EXCEEDED
    assert "activeDeadlineSeconds (5s)" in seen.message


def test_missing_image_fails_and_stops_the_job() -> None:
    waiting = {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}
    seen = observe(job(active=1), [pod("p", "Pending", waiting)])
    assert (seen.phase, seen.reason) == (Phase.FAILED, Reason.IMAGE_MISSING)
    assert seen.stop_job
    assert "img:1" in seen.message


def test_a_missing_secret_fails_the_run_but_a_kubelet_cache_not_yet_synced_does_not() -> None:
    missing = {"reason": "CreateContainerConfigError", "message": 'secret "s3" not found'}
    seen = observe(job(active=1), [pod("p", "Pending", {"waiting": missing})])
    assert (seen.phase, seen.reason) == (Phase.FAILED, Reason.CONFIG_ERROR)
    assert seen.stop_job and 'secret "s3" not found' in seen.message
    lagging = {
        "reason": "CreateContainerConfigError",
        "message": "failed to sync secret cache: timed out waiting for the condition",
    }
    seen = observe(job(active=1), [pod("p", "Pending", {"waiting": lagging})])
    assert (seen.phase, seen.reason) == (Phase.PENDING, Reason.POD_PENDING)
    assert not seen.stop_job and "CreateContainerConfigError" in seen.message


def test_suspended_job_is_pending() -> None:
    seen = observe(job(suspend=True), [])
    assert (seen.phase, seen.reason) == (Phase.PENDING, Reason.SUSPENDED)


def test_success_criteria_met_waits_for_the_pods_final_state() -> None:
    seen = observe(job(("SuccessCriteriaMet", "")), [pod("p", "Running", {"running": {}})])
    assert seen.phase == Phase.RUNNING


def test_a_run_that_ends_before_the_job_is_complete_still_has_a_completion_time() -> None:
    """SuccessCriteriaMet comes before Complete, and a failed Job never gets completionTime:
    the end is the condition's transition time."""
    summary = {"metrics": {}, "artifact": {"uri": "pvc://a/b"}}
    pods = [pod("p", "Succeeded", terminated(0, "Completed", json.dumps(summary)))]
    criteria_met = job(("SuccessCriteriaMet", ""))
    criteria_met["status"]["conditions"][0]["lastTransitionTime"] = "2026-11-26T10:00:00Z"
    seen = observe(criteria_met, pods)
    assert seen.phase == Phase.SUCCEEDED
    assert seen.completion_time == "2026-11-26T10:00:00Z"

    failed = job(("Failed", "BackoffLimitExceeded"), failed=1)
    failed["status"]["conditions"][0]["lastTransitionTime"] = "2026-11-26T10:05:00Z"
    seen = observe(failed, [pod("p", "Failed", terminated(1))])
    assert seen.phase == Phase.FAILED and seen.completion_time == "2026-11-26T10:05:00Z"


def test_a_job_whose_pod_cannot_be_scheduled_is_pending_with_the_schedulers_reason() -> None:
    """The Job counts the pod as active from its creation: that is not Running."""
    unschedulable = pod("p", "Pending", {})
    unschedulable["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: "
            'persistentvolumeclaim "cairn-artifacts" not found.',
        }
    ]
    seen = observe(job(active=1), [unschedulable])
    assert (seen.phase, seen.reason) == (Phase.PENDING, Reason.UNSCHEDULABLE)
    assert 'persistentvolumeclaim "cairn-artifacts" not found' in seen.message


def test_a_pod_that_has_not_started_is_pending_and_named() -> None:
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    seen = observe(job(active=1), [pod("p", "Pending", waiting)])
    assert (seen.phase, seen.reason) == (Phase.PENDING, Reason.POD_PENDING)
    assert seen.waiting_pod == "p"  # the reconcile adds what the pod's Events say
    assert "ContainerCreating" in seen.message


def test_the_image_the_pod_ran_is_observed_with_its_digest() -> None:
    summary = {"metrics": {}, "artifact": {"uri": "pvc://a/b"}}
    done = pod("p", "Succeeded", terminated(0, "Completed", json.dumps(summary)))
    done["status"]["containerStatuses"][0].update(
        image="docker.io/cairn/trainer:dev", imageID="docker.io/cairn/trainer@sha256:" + "f" * 64
    )
    seen = observe(job(("Complete", "")), [done])
    assert seen.image == "docker.io/cairn/trainer:dev"
    assert seen.image_id == "docker.io/cairn/trainer@sha256:" + "f" * 64
