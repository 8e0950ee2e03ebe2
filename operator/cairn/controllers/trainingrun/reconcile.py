"""One level-based reconcile of a TrainingRun: every handler (create, resume, resync, Job or pod
event) calls it; it compares the run with its Job and pods and moves the run forward, registering
a succeeded run's model, and writes the run's status once."""

import dataclasses
import datetime
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from cairn.api import TrainingRun, TrainingRunConditionType, TrainingRunPhase, TrainingRunStatus
from cairn.api.common import ArtifactRef, DatasetRef
from cairn.api.conditions import find, set_condition
from cairn.api.trainingrun import RegistrationReason, TrainingRunReason
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import describe, parse
from cairn.controllers.trainingrun import jobspec
from cairn.controllers.trainingrun.observe import Observation, observe
from cairn.controllers.trainingrun.output import (
    InvalidOutput,
    output_claim,
    output_mount,
    output_uri,
)
from cairn.controllers.trainingrun.registration import register
from cairn.kube import events, objects, ownership, status, workloads
from cairn.kube.errors import is_conflict
from cairn.observability import metrics
from cairn.observability.reconciles import reconciling
from cairn.registry.gates import key_metric
from cairn.registry.registration import RegistrationError, version_name

Body = dict[str, Any]
Phase, Reason, Condition = TrainingRunPhase, TrainingRunReason, TrainingRunConditionType
LOG_TAIL_LINES = 20
# Reasons a run waits for a person to fix something: each becomes a Warning Event when it starts.
WAITING_ON_PEOPLE = frozenset(
    {
        Reason.ARTIFACT_CLAIM_MISSING,
        Reason.CODE_MISSING,
        Reason.UNSCHEDULABLE,
        Reason.POD_PENDING,
    }
)
# Registration outcomes after which nothing more is tried.
FINAL_REGISTRATION = frozenset({RegistrationReason.VERSION_REFUSED, RegistrationReason.NO_ARTIFACT})
JOB_LOST_MESSAGE = (
    "the training Job was deleted before the operator read its result (by hand, or by "
    "ttlSecondsAfterFinished while the operator was down); create a new run to train again"
)

logger = logging.getLogger(__name__)


def is_settled(run: TrainingRun) -> bool:
    """Nothing more will ever happen to this run."""
    current = run.status or TrainingRunStatus()
    if current.phase == Phase.FAILED:
        return True
    if current.phase != Phase.SUCCEEDED:
        return False
    if not run.spec.register_:
        return True
    registered = find(current.conditions, Condition.REGISTERED)
    return registered is not None and (
        registered.status == "True" or registered.reason in FINAL_REGISTRATION
    )


def reconcile(namespace: str, name: str, seen: Body | None = None) -> None:
    """Reconcile the run; `seen`: the body a handler was given, which spares reading a finished
    run again."""
    if seen is not None:
        try:
            if is_settled(TrainingRun.model_validate(seen)):
                return  # the common case for every event of a finished run: no API call
        except ValidationError:
            pass  # the latest object is parsed, and reported, below
    # Timed once this thread has the run: waiting for another reconcile of it is not work.
    with (
        exclusive(TrainingRun.plural(), namespace, name),
        reconciling("TrainingRun", namespace, name),
    ):
        # Another thread may have moved the run on while this one waited: start from the latest.
        latest = objects.get(TrainingRun, namespace, name)
        run = parse(TrainingRun, latest) if latest is not None else None
        if run is not None and not is_settled(run):
            _reconcile(run)


def _reconcile(run: TrainingRun) -> None:
    current = run.status or TrainingRunStatus()
    if current.phase == Phase.SUCCEEDED:
        # Succeeded earlier; registration was interrupted or is being retried.
        _write(run, with_registration(run, current))
        return

    if current.phase is not None and current.job_name is not None:
        job = workloads.get_job(run.namespace, jobspec.job_name(run.name))
        if job is None:
            # Its Job existed (the run was observed) and is gone before its result was read:
            # training again would silently produce a different model. Say so and stop.
            lost = Observation(Phase.FAILED, Reason.JOB_LOST, JOB_LOST_MESSAGE)
            _advance(run, lost, current.job_name)
            return
    else:
        missing = missing_inputs(run)
        if missing is not None:
            _advance(run, missing, None)
            return
        try:
            job = ensure_job(run)
        except InvalidOutput as error:
            _advance(run, Observation(Phase.FAILED, Reason.CONFIG_ERROR, str(error)), None)
            return
    # A Job the controller manager has not touched yet (empty status) has no pods to list.
    selector = jobspec.pod_selector(run.name)
    pods = workloads.list_pods(run.namespace, selector) if job.get("status") else []
    seen = observe(job, pods)
    # A Job that would wait forever is stopped; otherwise it follows spec.suspend.
    suspended = seen.stop_job or run.spec.suspend
    if bool(job.get("spec", {}).get("suspend")) != suspended:
        workloads.set_job_suspended(run.namespace, job["metadata"]["name"], suspended)
    _advance(run, seen, job["metadata"]["name"])


def _advance(run: TrainingRun, seen: Observation, job_name: str | None) -> None:
    """Write what `seen` says of the run (registering it when it succeeded), then tell people.
    `job_name`: the run's Job, None while it has none."""
    seen = with_summary_checked(seen)
    message = explain(run, seen)
    new = status_for(run, seen, message, job_name)
    if seen.phase == Phase.SUCCEEDED and run.spec.register_:
        new = with_registration(run, new)
    before = run.status or TrainingRunStatus()
    status.write(run, run.status, new)
    record_transition(run, before, seen, message)
    announce_registration(run, before, new)


def _write(run: TrainingRun, new: TrainingRunStatus) -> None:
    before = run.status or TrainingRunStatus()
    status.write(run, run.status, new)
    announce_registration(run, before, new)


def missing_inputs(run: TrainingRun) -> Observation | None:
    """What the run needs before its Job can run: its output claim and its code ConfigMap. A
    Job without them would sit unschedulable or stuck mounting until its deadline."""
    claim = output_claim(run)
    if claim is not None and not workloads.claim_exists(run.namespace, claim):
        where = "spec.output.uri" if run.spec.output and run.spec.output.uri else "the default"
        return Observation(
            Phase.PENDING,
            Reason.ARTIFACT_CLAIM_MISSING,
            f"PersistentVolumeClaim {claim} ({where} {output_uri(run)}) does not exist in "
            f"namespace {run.namespace}: create it, or create the run with spec.output.uri on a "
            "claim that exists; the run starts once the claim exists",
        )
    code = run.spec.code
    if code is not None and not workloads.config_map_exists(run.namespace, code.config_map.name):
        return Observation(
            Phase.PENDING,
            Reason.CODE_MISSING,
            f"ConfigMap {code.config_map.name} (spec.code.configMap) does not exist in namespace "
            f"{run.namespace}: create it with the training code (kubectl create configmap "
            f"{code.config_map.name} --from-file=train.py); the run starts once it exists",
        )
    return None


def ensure_job(run: TrainingRun) -> Body:
    job = jobspec.build_job(run, output_mount(run), output_uri(run))
    ownership.adopt(job, run)  # deleting the run deletes its Job and pods
    try:
        created = workloads.create_job(run.namespace, job)
    except ApiException as error:
        if not is_conflict(error):
            raise
        found = workloads.get_job(run.namespace, job["metadata"]["name"])
        if found is None:
            raise  # created and deleted in between: the next reconcile creates it again
        return found
    logger.info("created Job %s", job["metadata"]["name"])
    events.info(run, reason="JobCreated", message=f"created Job {job['metadata']['name']}")
    return created


def with_summary_checked(seen: Observation) -> Observation:
    """A success whose summary breaks the API (a hand-written termination message, say) is a
    failure that names the field, not a status write the API server refuses forever."""
    if seen.summary is None:
        return seen
    try:
        summary_fields(seen.summary)
    except ValidationError as error:
        return dataclasses.replace(
            seen,
            phase=Phase.FAILED,
            reason=Reason.BAD_SUMMARY,
            message=f"the trainer's summary is not valid: {describe(error)}; write it with "
            "cairn.training (log_metric, save_model)",
            summary=None,
        )
    return seen


def explain(run: TrainingRun, seen: Observation) -> str:
    """The observation's message, with the failed container's last log lines, or with what the
    kubelet says of a pod that does not start."""
    if seen.failed_container is not None:
        failed = seen.failed_container
        tail = workloads.log_tail(run.namespace, failed.pod, failed.container, LOG_TAIL_LINES)
        return f"{seen.message}; last log lines:\n{tail.rstrip()}" if tail.strip() else seen.message
    if seen.waiting_pod is not None:
        warning = workloads.pod_warning(run.namespace, seen.waiting_pod)
        return f"{seen.message}: {warning}" if warning else seen.message
    return seen.message


def summary_fields(summary: Body) -> dict[str, Any]:
    """What the trainer's termination message contributes to the run's status."""
    fields: dict[str, Any] = {}
    metrics_ = summary.get("metrics") or {}
    if metrics_:
        checked = TrainingRunStatus.model_validate({"metrics": metrics_})
        fields["metrics"] = checked.metrics
        fields["key_metric"] = key_metric(metrics_)
    if summary.get("artifact"):
        fields["artifact"] = ArtifactRef.model_validate(summary["artifact"])
    if summary.get("dataset"):
        fields["dataset"] = DatasetRef.model_validate(summary["dataset"])
    return fields


def status_for(
    run: TrainingRun, seen: Observation, message: str, job_name: str | None
) -> TrainingRunStatus:
    current = run.status or TrainingRunStatus()
    generation = run.generation
    conditions = current.conditions
    for type_, phase in (
        (Condition.RUNNING, Phase.RUNNING),
        (Condition.SUCCEEDED, Phase.SUCCEEDED),
        (Condition.FAILED, Phase.FAILED),
    ):
        conditions = set_condition(
            conditions, type_, seen.phase == phase, seen.reason, message, generation
        )
    update: dict[str, Any] = {
        "observed_generation": generation,
        "phase": seen.phase,
        "conditions": conditions,
        "attempts": seen.attempts,
        "message": message,
    }
    if job_name is not None:
        update["job_name"] = job_name
    for field in ("start_time", "completion_time", "image", "image_id"):
        value = getattr(seen, field)
        if value:
            update[field] = value
    if seen.phase == Phase.FAILED:
        update["failure_reason"] = seen.reason.value
    if seen.summary is not None:
        update.update(summary_fields(seen.summary))
    return TrainingRunStatus.model_validate({**current.model_dump(by_alias=False), **update})


def with_registration(run: TrainingRun, new: TrainingRunStatus) -> TrainingRunStatus:
    """`new` with the run registered as a ModelVersion, or with why it could not be."""
    registering = run.model_copy(update={"status": new})
    try:
        number = register(registering)
    except RegistrationError as error:
        reason, message = error.reason, error.message
        registered, update = False, {}
    else:
        name = version_name(run.spec.model, number)
        reason, message = RegistrationReason.REGISTERED, f"registered as ModelVersion {name}"
        registered, update = True, {"version": number, "model_version": name}
    conditions = set_condition(
        new.conditions, Condition.REGISTERED, registered, reason, message, run.generation
    )
    return new.model_copy(update={"conditions": conditions, **update})


def announce_registration(
    run: TrainingRun, before: TrainingRunStatus, after: TrainingRunStatus
) -> None:
    """An Event when registration lands, and a Warning when it fails for a new reason."""
    was = find(before.conditions, Condition.REGISTERED)
    now = find(after.conditions, Condition.REGISTERED)
    if now is None or (was is not None and (was.status, was.reason) == (now.status, now.reason)):
        return
    if now.status == "True":
        logger.info("%s", now.message)
        events.info(run, reason="Registered", message=now.message)
    else:
        logger.warning("not registered: %s", now.message)
        events.warn(run, reason=now.reason, message=now.message)


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


def record_transition(
    run: TrainingRun, before: TrainingRunStatus, seen: Observation, message: str
) -> None:
    """A phase change: logged, counted when the run finished, and an Event; a run that starts
    waiting for a person gets a Warning."""
    if before.phase == seen.phase:
        reason_before = find(before.conditions, Condition.RUNNING)
        if seen.reason in WAITING_ON_PEOPLE and (
            reason_before is None or reason_before.reason != seen.reason
        ):
            events.warn(run, reason=seen.reason.value, message=message)
        return
    logger.info("phase %s → %s (%s)", before.phase or "-", seen.phase.value, seen.reason.value)
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
    elif seen.reason in WAITING_ON_PEOPLE:
        events.warn(run, reason=seen.reason.value, message=message)
