"""One level-based reconcile of a TrainingRun: every handler (create, resume, timer, Job or pod
event) calls it; it compares the run with its Job and pods and moves the run forward."""

import datetime
import logging
from typing import Any, Final

import kopf
from kubernetes.client.exceptions import ApiException

from cairn.controllers import registration
from cairn.controllers.conditions import is_true, set_condition
from cairn.controllers.exclusive import exclusive
from cairn.controllers.trainingrun import jobspec
from cairn.controllers.trainingrun.observe import Observation, Phase, Reason, observe
from cairn.controllers.trainingrun.output import InvalidOutput, output_mount, output_uri
from cairn.kube import events, objects, ownership, workloads
from cairn.kube.errors import is_conflict
from cairn.observability import metrics
from cairn.observability.reconciles import reconciling
from cairn.registry.gates import key_metric

Body = dict[str, Any]
PLURAL = "trainingruns"
KIND: Final = "TrainingRun"
LOG_TAIL_LINES = 20
FINISHED = {Phase.SUCCEEDED.value, Phase.FAILED.value}

logger = logging.getLogger(__name__)


def is_settled(status: Body, spec: Body) -> bool:
    """Nothing more will ever happen to this run."""
    if status.get("phase") == Phase.FAILED:
        return True
    registered = is_true(status.get("conditions"), "Registered")
    return status.get("phase") == Phase.SUCCEEDED and (registered or not spec.get("register", True))


def ensure_job(run: Body) -> Body:
    namespace = run["metadata"]["namespace"]
    job = jobspec.build_job(run, output_mount(run), output_uri(run))
    ownership.adopt(job, run)  # deleting the run deletes its Job and pods
    try:
        created = workloads.create_job(namespace, job)
    except ApiException as error:
        if not is_conflict(error):
            raise
        found = workloads.get_job(namespace, job["metadata"]["name"])
        if found is None:
            raise kopf.TemporaryError("the Job exists and yet cannot be read", delay=2) from error
        return found
    logger.info("created Job %s", job["metadata"]["name"])
    events.info(run, reason="JobCreated", message=f"created Job {job['metadata']['name']}")
    return created


def failure_message(run: Body, seen: Observation) -> str:
    """The observation's message, with the failed container's last log lines when there are."""
    failed = seen.failed_container
    if failed is None:
        return seen.message
    tail = workloads.log_tail(
        run["metadata"]["namespace"], failed.pod, failed.container, LOG_TAIL_LINES
    ).rstrip()
    return f"{seen.message}; last log lines:\n{tail}" if tail else seen.message


def status_for(run: Body, seen: Observation, message: str) -> Body:
    generation = run["metadata"].get("generation")
    conditions = (run.get("status") or {}).get("conditions")
    phase = seen.phase
    conditions = set_condition(
        conditions, "Running", phase == Phase.RUNNING, seen.reason, message, generation
    )
    conditions = set_condition(
        conditions, "Succeeded", phase == Phase.SUCCEEDED, seen.reason, message, generation
    )
    conditions = set_condition(
        conditions, "Failed", phase == Phase.FAILED, seen.reason, message, generation
    )
    if phase == Phase.SUCCEEDED and run["spec"].get("register", True):
        # Registration is its own write right after this one: until it lands, say it is coming
        # rather than leave `kubectl wait --for=condition=Registered` nothing to read.
        conditions = set_condition(
            conditions,
            "Registered",
            False,
            "Registering",
            "registering the trained model as a ModelVersion",
            generation,
        )
    status: Body = {
        "observedGeneration": generation,
        "phase": phase.value,
        "conditions": conditions,
        "jobName": jobspec.job_name(run["metadata"]["name"]),
        "attempts": seen.attempts,
        "message": message,
    }
    if seen.start_time:
        status["startTime"] = seen.start_time
    if seen.completion_time:
        status["completionTime"] = seen.completion_time
    if phase == Phase.FAILED:
        status["failureReason"] = seen.reason.value
    if seen.summary is not None:
        status.update(summary_fields(seen.summary))
    return status


def summary_fields(summary: Body) -> Body:
    """What the trainer's termination message contributes to the run's status."""
    fields: Body = {}
    if summary.get("metrics"):
        fields["metrics"] = summary["metrics"]
        fields["keyMetric"] = key_metric(summary["metrics"])
    if summary.get("artifact"):
        fields["artifact"] = summary["artifact"]
    if summary.get("dataset"):
        fields["dataset"] = summary["dataset"]
    return fields


def _parse_time(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text) if text else None


def training_seconds(seen: Observation, now: datetime.datetime) -> float | None:
    """From the Job's start to its completion (a failed Job has none: the moment it was seen
    failed); None when the Job never started."""
    started = _parse_time(seen.start_time)
    if started is None:
        return None
    finished = _parse_time(seen.completion_time) or now
    return (finished - started).total_seconds()


def record_transition(run: Body, before: str | None, seen: Observation, message: str) -> None:
    """A phase change: logged, counted when the run finished, and an Event."""
    if before == seen.phase.value:
        return
    logger.info("phase %s → %s (%s)", before or "-", seen.phase.value, seen.reason.value)
    if seen.phase in (Phase.SUCCEEDED, Phase.FAILED):
        seconds = training_seconds(seen, datetime.datetime.now(datetime.UTC))
        if seconds is not None:
            metrics.training_finished(
                "succeeded" if seen.phase == Phase.SUCCEEDED else "failed", seconds
            )
    if seen.phase == Phase.FAILED:
        events.warn(run, reason=seen.reason.value, message=message)
    elif seen.phase == Phase.RUNNING:
        events.info(run, reason="Started", message="training started")
    elif seen.phase == Phase.SUCCEEDED:
        scores = ", ".join(f"{k}={v:g}" for k, v in (seen.summary or {}).get("metrics", {}).items())
        events.info(run, reason="Succeeded", message=f"training finished {scores}".strip())


def register(run: Body, status: Body) -> Body:
    """Register the succeeded run and record it; returns the status fields written."""
    registered_run = {**run, "status": {**(run.get("status") or {}), **status}}
    version, name = registration.register(registered_run)
    conditions = set_condition(
        status.get("conditions"),
        "Registered",
        True,
        "Registered",
        f"registered as ModelVersion {name}",
        run["metadata"].get("generation"),
    )
    # The allocation is released before the run records its version: once the ModelVersion
    # exists, a retry finds it by the run's uid and needs no allocation (see registration).
    registration.release(registered_run, version)
    written = {"version": version, "modelVersion": name, "conditions": conditions}
    meta = run["metadata"]
    objects.patch_status(PLURAL, meta["namespace"], meta["name"], written)
    logger.info("registered as ModelVersion %s", name)
    events.info(run, reason="Registered", message=f"registered as ModelVersion {name}")
    return written


def reconcile(run: Body) -> None:
    if is_settled(run.get("status") or {}, run["spec"]):
        return
    meta = run["metadata"]
    # Timed once this thread has the run: waiting for another reconcile of it is not work.
    with (
        exclusive(PLURAL, meta["namespace"], meta["name"]),
        reconciling(KIND, meta["namespace"], meta["name"]),
    ):
        # Another thread may have moved the run on while this one waited: start from the latest.
        latest = objects.get(PLURAL, meta["namespace"], meta["name"])
        if latest is not None:
            _reconcile(latest)


JOB_LOST_MESSAGE = (
    "the training Job was deleted before the operator read its result (by hand, or by "
    "ttlSecondsAfterFinished while the operator was down); create a new run to train again"
)


def fail(run: Body, seen: Observation) -> None:
    meta = run["metadata"]
    objects.patch_status(
        PLURAL, meta["namespace"], meta["name"], status_for(run, seen, seen.message)
    )
    record_transition(run, (run.get("status") or {}).get("phase"), seen, seen.message)


def _reconcile(run: Body) -> None:
    meta, spec, status = run["metadata"], run["spec"], run.get("status") or {}
    if is_settled(status, spec):
        return
    namespace = meta["namespace"]

    if status.get("phase") == Phase.SUCCEEDED:
        register(run, status)  # succeeded earlier, registration interrupted: finish it
        return

    if status.get("phase"):
        job = workloads.get_job(namespace, jobspec.job_name(meta["name"]))
        if job is None:
            # Its Job existed (the run was observed) and is gone before its result was read:
            # training again would silently produce a different model. Say so and stop.
            fail(run, Observation(Phase.FAILED, Reason.JOB_LOST, JOB_LOST_MESSAGE))
            return
    else:
        # A run that has not been observed yet has no Job: create it without looking first.
        try:
            job = ensure_job(run)
        except InvalidOutput as error:
            fail(run, Observation(Phase.FAILED, Reason.CONFIG_ERROR, str(error)))
            return
    # A Job the controller manager has not touched yet (empty status) has no pods to list.
    selector = f"{jobspec.RUN_LABEL}={meta['name']}"
    pods = workloads.list_pods(namespace, selector) if job.get("status") else []
    seen = observe(job, pods)
    # A Job that would wait forever is stopped; otherwise it follows spec.suspend.
    suspended = seen.stop_job or bool(spec.get("suspend", False))
    if bool(job.get("spec", {}).get("suspend")) != suspended:
        workloads.set_job_suspended(namespace, job["metadata"]["name"], suspended)

    message = failure_message(run, seen) if seen.phase == Phase.FAILED else seen.message
    new_status = status_for(run, seen, message)
    changed = {k: v for k, v in new_status.items() if status.get(k) != v}
    if changed:
        objects.patch_status(PLURAL, namespace, meta["name"], changed)
    record_transition(run, status.get("phase"), seen, message)

    if seen.phase == Phase.SUCCEEDED and spec.get("register", True):
        if not (seen.summary or {}).get("artifact"):
            return
        register(run, new_status)
