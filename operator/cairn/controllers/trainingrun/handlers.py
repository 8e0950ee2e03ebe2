"""kopf handlers for TrainingRuns: thin, each one calls the same reconcile."""

from typing import Any

import kopf
from pydantic import ValidationError

from cairn.api import GROUP, VERSION, TrainingRun, TrainingRunConditionType, TrainingRunPhase
from cairn.api.conditions import find
from cairn.api.labels import RUN_LABEL
from cairn.api.trainingrun import TrainingRunReason
from cairn.controllers import resync
from cairn.controllers.observed import calls_for_reconcile
from cairn.controllers.trainingrun.reconcile import reconcile
from cairn.controllers.trainingrun.status import is_settled
from cairn.controllers.workqueue import enqueue
from cairn.observability import metrics

PLURAL = TrainingRun.plural()
# Catches anything an event missed (and retries a registration that failed for a passing
# reason); Job and pod events make the usual path immediate.
RESYNC_SECONDS = 10
# A suspended run changes only when its spec does, which is an event: thousands of them (a
# ContinuousTraining's queue, say) must not cost the API server a read each every few seconds.
SUSPENDED_RESYNC_SECONDS = 300


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_run(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> None:
    """Reconcile a run that is new or whose spec (spec.suspend) its status has not observed
    (controllers.observed: an event handler, not kopf's create and update handlers), in a
    worker thread (controllers.workqueue)."""
    if namespace and calls_for_reconcile(type, body):
        enqueue(reconcile, namespace, name)


@kopf.index(GROUP, VERSION, PLURAL)
async def resync_trainingruns(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str], float] | None:
    """Runs still in progress, revisited every RESYNC_SECONDS (see controllers.resync). Not
    through the parse memo: nothing reads a run's parse again, and thousands of runs held there
    would cost the operator tens of MiB."""
    try:
        run = TrainingRun.model_validate(dict(body))
    except ValidationError:
        return {(namespace, name): RESYNC_SECONDS}  # revisited, so that the reconcile reports it
    if is_settled(run):
        return None
    running = find(run.status.conditions if run.status else None, TrainingRunConditionType.RUNNING)
    suspended = running is not None and running.reason == TrainingRunReason.SUSPENDED
    interval = SUSPENDED_RESYNC_SECONDS if run.spec.suspend and suspended else RESYNC_SECONDS
    return {(namespace, name): interval}


def _reconcile_named(namespace: str | None, name: str | None) -> None:
    if namespace and name:
        reconcile(namespace, name)


resync.register(resync_trainingruns, _reconcile_named)


@kopf.index(GROUP, VERSION, PLURAL)
async def trainingrun_phases(
    namespace: str | None, status: kopf.Status, **_: Any
) -> dict[tuple[str, str], bool]:
    """Every run under its namespace and phase, for the cairn_operator_trainingruns gauge."""
    phase = status.get("phase") or TrainingRunPhase.PENDING.value
    return {(namespace or "", phase): True}


@kopf.on.startup()
def count_trainingruns(**kwargs: Any) -> None:
    index: kopf.Index[tuple[str, str], bool] = kwargs["trainingrun_phases"]  # by its name

    def counts() -> dict[tuple[str, ...], int]:
        # Scrapes run in the metrics server's thread while kopf's updates the index: list()
        # copies the keys at once, and a key removed since then is skipped.
        found = {key: index.get(key) for key in list(index)}
        return {key: len(store) for key, store in found.items() if store}

    metrics.TRAINING_RUNS.watch(counts)


@kopf.on.cleanup()
def stop_counting_trainingruns(**_: Any) -> None:
    metrics.TRAINING_RUNS.watch(None)


def _enqueue_run(namespace: str | None, name: str | None) -> None:
    if namespace and name:
        enqueue(reconcile, namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels={RUN_LABEL: kopf.PRESENT})
async def on_job_event(
    labels: kopf.Labels, namespace: str | None, type: str, status: kopf.Status, **_: Any
) -> None:
    # A Job with no status yet is the one the run's own reconcile just created: nothing to read.
    # A deleted Job is read too: a run still waiting on it (suspended, say) must fail JobLost now,
    # not at its next resync; a finished run's reconcile returns at its first read.
    if status:
        _enqueue_run(namespace, labels.get(RUN_LABEL))


@kopf.on.event("", "v1", "pods", labels={RUN_LABEL: kopf.PRESENT})
async def on_pod_event(labels: kopf.Labels, namespace: str | None, type: str, **_: Any) -> None:
    if type != "DELETED":
        _enqueue_run(namespace, labels.get(RUN_LABEL))
