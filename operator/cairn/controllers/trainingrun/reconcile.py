"""One level-based reconcile of a TrainingRun: every handler (create, resume, resync, Job or pod
event) calls it; it compares the run with its Job and pods and moves the run forward, registering
a succeeded run's model, and writes the run's status once."""

import dataclasses
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.api import TrainingRun, TrainingRunConditionType, TrainingRunPhase, TrainingRunStatus
from cairn.api.conditions import set_condition
from cairn.api.trainingrun import RegistrationReason, TrainingRunReason
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import parse
from cairn.controllers.trainingrun import jobspec, podwarnings
from cairn.controllers.trainingrun.champion import champion_for
from cairn.controllers.trainingrun.observe import SUSPENDED_MESSAGE, Observation, observe
from cairn.controllers.trainingrun.output import output_claim, output_uri
from cairn.controllers.trainingrun.registration import register
from cairn.controllers.trainingrun.status import (
    is_settled,
    status_for,
    with_summary_checked,
)
from cairn.controllers.trainingrun.transitions import announce_registration, record_transition
from cairn.kube import cache, events, ownership, status, workloads
from cairn.kube.errors import is_conflict
from cairn.observability.reconciles import reconciling
from cairn.registry.registration import RegistrationError, version_name

Body = dict[str, Any]
Phase, Reason, Condition = TrainingRunPhase, TrainingRunReason, TrainingRunConditionType
LOG_TAIL_LINES = 20
JOB_LOST_MESSAGE = (
    "the training Job was deleted before the operator read its result (by hand, or by "
    "ttlSecondsAfterFinished while the operator was down); create a new run to train again"
)

logger = logging.getLogger(__name__)


def reconcile(namespace: str, name: str) -> None:
    """Reconcile the run from its latest copy; for a finished run that costs no API call (the watch
    cache's copy, parsed once)."""
    # Timed once this thread has the run: waiting for another reconcile of it is not work.
    with (
        exclusive(TrainingRun.plural(), namespace, name),
        reconciling("TrainingRun", namespace, name),
    ):
        # Another thread may have moved the run on while this one waited: start from the latest.
        latest = cache.for_write(TrainingRun, namespace, name)
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
        job = observed_job(run)
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
            wanted = jobspec.build_job(run, champion_for(run))
        except jobspec.Unmountable as error:
            _advance(run, Observation(Phase.FAILED, Reason.CONFIG_ERROR, str(error)), None)
            return
        # A run suspended before it started gets its Job when it is resumed (with the champion
        # of that moment): a suspended Job would cost the API server and the controller manager
        # three writes for nothing, and a ContinuousTraining can queue thousands of such runs.
        # A Job the watch shows was created before the run was suspended: it is stopped below.
        job = cache.run_job(run.namespace, run.name)
        if job is None and run.spec.suspend:
            _advance(run, Observation(Phase.PENDING, Reason.SUSPENDED, SUSPENDED_MESSAGE), None)
            return
        if job is None:
            job = ensure_job(run, wanted)
    # A Job the controller manager has not touched yet (empty status) has no pods to list.
    pods = cache.run_pods(run.namespace, run.name) if job.get("status") else []
    seen = dataclasses.replace(observe(job, pods), champion=jobspec.champion_of(job))
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


def observed_job(run: TrainingRun) -> Body | None:
    """The run's Job as the watch shows it. One the watch has not shown (gone, or the cache is
    behind) is asked of the API server: failing the run as JobLost is an action, not a compare."""
    job = cache.run_job(run.namespace, run.name)
    if job is not None:
        return job
    return workloads.get_job(run.namespace, jobspec.job_name(run.name))


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


def ensure_job(run: TrainingRun, job: Body) -> Body:
    """Create the run's Job `job`, or find the one created before (a lost status write)."""
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


def explain(run: TrainingRun, seen: Observation) -> str:
    """The observation's message, with the failed container's last log lines, or with what the
    kubelet says of a pod that does not start."""
    if seen.failed_container is not None:
        failed = seen.failed_container
        tail = workloads.log_tail(run.namespace, failed.pod, failed.container, LOG_TAIL_LINES)
        return f"{seen.message}; last log lines:\n{tail.rstrip()}" if tail.strip() else seen.message
    if seen.waiting_pod is not None:
        warning = podwarnings.latest(run.namespace, seen.waiting_pod)
        return f"{seen.message}: {warning}" if warning else seen.message
    return seen.message


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
