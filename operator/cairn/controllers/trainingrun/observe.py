"""What a training Job and its pods say about the run: pure, so every failure mode is unit-tested.

Kubernetes reports a failed training in several places (Job conditions, container waiting and
terminated states); this module turns them into one outcome with a precise reason.
"""

import dataclasses
import json
from typing import Any

from cairn.api import TrainingRunPhase as Phase
from cairn.api.trainingrun import ChampionRef
from cairn.api.trainingrun import TrainingRunReason as Reason

Body = dict[str, Any]

# Waiting reasons that mean the image will never run: there is nothing to wait for.
IMAGE_MISSING_REASONS = frozenset(
    {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName"}
)
# Waiting reasons that mean the pod spec itself cannot start, not a transient state.
CONFIG_ERROR_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
# A config error the kubelet clears by itself: its watch of a Secret or ConfigMap the pod uses
# has not synced yet ("failed to sync secret cache: timed out waiting for the condition", seen
# on a busy node). A missing Secret, ConfigMap or key says "not found" and fails the run.
PASSING_CONFIG_ERRORS = ("failed to sync ",)
SUSPENDED_MESSAGE = "the run is suspended"


@dataclasses.dataclass(frozen=True)
class FailedContainer:
    """The container whose end explains a failure; its log tail is read by the caller."""

    pod: str
    container: str
    reason: str
    exit_code: int | None
    message: str = ""  # the container's termination message


@dataclasses.dataclass(frozen=True)
class Observation:
    phase: Phase
    reason: Reason
    message: str
    attempts: int = 0
    start_time: str | None = None
    completion_time: str | None = None
    summary: Body | None = None  # the trainer's termination message, on success
    failed_container: FailedContainer | None = None
    stop_job: bool = False  # the Job would wait forever (missing image): suspend it
    image: str | None = None  # what the training container ran, as the kubelet reports it
    image_id: str | None = None
    waiting_pod: str | None = None  # a pod that has not started: its Events may say why
    champion: ChampionRef | None = None  # the version the run was given to compare with


def _job_condition(job: Body, kind: str) -> Body | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _finished_at(job: Body) -> str | None:
    """When the Job reached its end, from its conditions: the Job's completionTime comes only
    with Complete (after SuccessCriteriaMet, and never for a failed Job)."""
    for kind in ("SuccessCriteriaMet", "Complete", "FailureTarget", "Failed"):
        condition = _job_condition(job, kind)
        if condition and condition.get("lastTransitionTime"):
            return str(condition["lastTransitionTime"])
    return None


def _containers(pod: Body) -> list[Body]:
    return list(pod.get("status", {}).get("containerStatuses") or [])


def _last_terminated_failure(pods: list[Body]) -> FailedContainer | None:
    """The most recent container that ended in failure, across all attempts."""
    failures: list[tuple[str, FailedContainer]] = []
    for pod in pods:
        for container in _containers(pod):
            terminated = (container.get("state") or {}).get("terminated")
            if terminated and terminated.get("exitCode", 0) != 0:
                failures.append(
                    (
                        terminated.get("finishedAt") or "",
                        FailedContainer(
                            pod=pod["metadata"]["name"],
                            container=container["name"],
                            reason=terminated.get("reason") or "Error",
                            exit_code=terminated.get("exitCode"),
                            message=terminated.get("message") or "",
                        ),
                    )
                )
    return max(failures, key=lambda item: item[0])[1] if failures else None


def _waiting_problem(pods: list[Body], reasons: frozenset[str]) -> tuple[str, str] | None:
    for pod in pods:
        for container in _containers(pod):
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in reasons:
                return waiting["reason"], waiting.get("message") or ""
    return None


def _ran_image(pods: list[Body]) -> dict[str, str | None]:
    """The image and image digest the training container ran (the latest pod that has one)."""
    for pod in reversed(pods):
        for container in _containers(pod):
            if container.get("imageID"):
                return {"image": container.get("image"), "image_id": container["imageID"]}
    return {}


def _unscheduled(pods: list[Body]) -> str | None:
    """The scheduler's message for a pod it cannot place (a missing claim, no node that fits)."""
    for pod in pods:
        for condition in pod.get("status", {}).get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                return str(condition.get("message") or "no node can run the pod")
    return None


def _started(pods: list[Body]) -> bool:
    return any(
        pod.get("status", {}).get("phase") == "Running"
        or any((c.get("state") or {}).get("running") for c in _containers(pod))
        for pod in pods
    )


def _not_started(pods: list[Body]) -> tuple[str, str] | None:
    """A pod that is neither running nor finished, and what it waits for."""
    for pod in pods:
        if pod.get("status", {}).get("phase") != "Pending":
            continue
        for container in _containers(pod):
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                return pod["metadata"]["name"], str(waiting["reason"])
        return pod["metadata"]["name"], "Pending"
    return None


def _success_summary(pods: list[Body]) -> Body | None:
    for pod in pods:
        if pod.get("status", {}).get("phase") != "Succeeded":
            continue
        for container in _containers(pod):
            terminated = (container.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode") == 0 and terminated.get("message"):
                summary: Body = json.loads(terminated["message"])
                return summary
    return None


# Failures the trainer SDK reports in its termination message ({"failure": {reason, message}}).
TRAINER_REPORTED = frozenset({Reason.ARTIFACT_UPLOAD_FAILED})


def _reported_failure(message: str) -> tuple[Reason, str] | None:
    try:
        said = json.loads(message) if message.startswith("{") else {}
    except json.JSONDecodeError:
        return None
    failure = said.get("failure") if isinstance(said, dict) else None
    if not isinstance(failure, dict) or failure.get("reason") not in TRAINER_REPORTED:
        return None
    return Reason(failure["reason"]), str(failure.get("message") or failure["reason"])


def describe_failure(failed: FailedContainer) -> tuple[Reason, str]:
    reported = _reported_failure(failed.message.strip())
    if reported is not None:
        reason, said = reported
        return reason, f"container {failed.container} of pod {failed.pod}: {said}"
    if failed.reason == "OOMKilled":
        return Reason.OOM_KILLED, (
            f"container {failed.container} of pod {failed.pod} ran out of memory (OOMKilled); "
            "raise spec.resources.limits.memory or train on less data"
        )
    return Reason.NON_ZERO_EXIT, (
        f"container {failed.container} of pod {failed.pod} exited with code {failed.exit_code}"
    )


def observe(job: Body | None, pods: list[Body]) -> Observation:
    """The run's state from its Job and pods; `job` is None when it has not been created yet."""
    if job is None:
        return Observation(Phase.PENDING, Reason.JOB_CREATED, "creating the training Job")
    status = job.get("status", {})
    times: dict[str, Any] = {
        "attempts": int(status.get("failed", 0))
        + int(status.get("succeeded", 0))
        + int(status.get("active", 0)),
        "start_time": status.get("startTime"),
        "completion_time": status.get("completionTime") or _finished_at(job),
        **_ran_image(pods),
    }

    complete = _job_condition(job, "Complete")
    if complete or _job_condition(job, "SuccessCriteriaMet"):
        try:
            summary = _success_summary(pods)
        except json.JSONDecodeError as error:
            return Observation(
                Phase.FAILED,
                Reason.BAD_SUMMARY,
                f"the trainer's termination message is not JSON ({error}); write it with "
                "cairn.training (save_model and finish)",
                **times,
            )
        if summary is None and not complete:
            # SuccessCriteriaMet comes first; the pod's final state may not be visible yet.
            return Observation(Phase.RUNNING, Reason.RUNNING, "training finishing", **times)
        if summary is None:
            return Observation(
                Phase.FAILED,
                Reason.BAD_SUMMARY,
                "the training pod succeeded but left no termination message; "
                "save the model with cairn.training.save_model",
                **times,
            )
        return Observation(
            Phase.SUCCEEDED, Reason.SUCCEEDED, "training finished", summary=summary, **times
        )

    failed_condition = _job_condition(job, "Failed") or _job_condition(job, "FailureTarget")
    if failed_condition:
        last = _last_terminated_failure(pods)
        if failed_condition.get("reason") == "DeadlineExceeded":
            deadline = job.get("spec", {}).get("activeDeadlineSeconds")
            return Observation(
                Phase.FAILED,
                Reason.DEADLINE_EXCEEDED,
                f"training ran longer than spec.activeDeadlineSeconds ({deadline}s) and was "
                "stopped; raise the deadline or make training faster",
                failed_container=last,
                **times,
            )
        if last is not None:
            reason, message = describe_failure(last)
            retries = job.get("spec", {}).get("backoffLimit", 0)
            if retries:
                message += f"; retries exhausted (spec.backoffLimit={retries})"
            return Observation(Phase.FAILED, reason, message, failed_container=last, **times)
        return Observation(
            Phase.FAILED,
            Reason.RETRIES_EXHAUSTED,
            failed_condition.get("message") or "the training Job failed",
            **times,
        )

    image_problem = _waiting_problem(pods, IMAGE_MISSING_REASONS)
    if image_problem:
        image = job["spec"]["template"]["spec"]["containers"][0].get("image")
        return Observation(
            Phase.FAILED,
            Reason.IMAGE_MISSING,
            f"image {image} cannot be pulled ({image_problem[0]}: {image_problem[1]}); "
            "fix spec.image or load the image into the cluster, then create a new run",
            stop_job=True,
            **times,
        )
    config_problem = _waiting_problem(pods, CONFIG_ERROR_REASONS)
    if config_problem and not config_problem[1].startswith(PASSING_CONFIG_ERRORS):
        return Observation(
            Phase.FAILED,
            Reason.CONFIG_ERROR,
            f"the training container cannot start ({config_problem[0]}: {config_problem[1]})",
            stop_job=True,
            **times,
        )

    if job.get("spec", {}).get("suspend"):
        return Observation(Phase.PENDING, Reason.SUSPENDED, SUSPENDED_MESSAGE, **times)
    if _started(pods):
        return Observation(Phase.RUNNING, Reason.RUNNING, "training", **times)
    # The Job counts a pod as active from its creation: until one runs, the run is Pending.
    unscheduled = _unscheduled(pods)
    if unscheduled:
        return Observation(
            Phase.PENDING,
            Reason.UNSCHEDULABLE,
            f"the training pod cannot be scheduled: {unscheduled}",
            **times,
        )
    waiting = _not_started(pods)
    if waiting:
        pod_name, why = waiting
        return Observation(
            Phase.PENDING,
            Reason.POD_PENDING,
            f"the training pod {pod_name} has not started ({why})",
            waiting_pod=pod_name,
            **times,
        )
    return Observation(Phase.PENDING, Reason.JOB_CREATED, "waiting for the training pod", **times)
