"""The TrainingRuns a ContinuousTraining starts: made from its template, owned by it, labelled with
its name and annotated with what started them; and the finished ones its history limits delete
(never the ModelVersions they registered: those belong to the Model)."""

import dataclasses
import datetime
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.api import ContinuousTraining, TrainingRun, TrainingRunPhase, TrainingRunSpec
from cairn.api.labels import (
    CONTINUOUS_TRAINING_LABEL,
    MODEL_LABEL,
    TRIGGER_REASON_ANNOTATION,
    TRIGGER_TIME_ANNOTATION,
    TRIGGER_TYPE_ANNOTATION,
)
from cairn.kube import cache, objects, ownership
from cairn.kube.errors import is_conflict
from cairn.retraining.triggers import Decision

Body = dict[str, Any]
FINISHED = (TrainingRunPhase.SUCCEEDED, TrainingRunPhase.FAILED)
# A run name taken by an object that is not this ContinuousTraining's moves to the next number;
# this many in a row is a mistake worth stopping for.
NAMES_TRIED = 20

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Runs:
    """A ContinuousTraining's runs as the watch cache has them."""

    active: list[Body]
    succeeded: list[Body]
    failed: list[Body]

    @classmethod
    def of(cls, ct: ContinuousTraining) -> "Runs":
        active, succeeded, failed = [], [], []
        for run in cache.runs_of(ct.namespace, ct.name):
            if not owned_by(run, ct) or run["metadata"].get("deletionTimestamp"):
                continue
            phase = (run.get("status") or {}).get("phase")
            if phase == TrainingRunPhase.SUCCEEDED:
                succeeded.append(run)
            elif phase == TrainingRunPhase.FAILED:
                failed.append(run)
            else:
                active.append(run)
        return cls(sorted(active, key=_age), sorted(succeeded, key=_age), sorted(failed, key=_age))

    @property
    def active_names(self) -> list[str]:
        return sorted(r["metadata"]["name"] for r in self.active)


def _age(run: Body) -> tuple[str, str]:
    status = run.get("status") or {}
    return (
        status.get("completionTime") or run["metadata"].get("creationTimestamp") or "",
        run["metadata"]["name"],
    )


def owned_by(run: Body, ct: ContinuousTraining) -> bool:
    return any(o.get("uid") == ct.uid for o in run["metadata"].get("ownerReferences") or [])


def manifest(ct: ContinuousTraining, name: str, decision: Decision, at: datetime.datetime) -> Body:
    spec = TrainingRunSpec.model_validate({**ct.spec.template.to_dict(), "model": ct.spec.model})
    run = TrainingRun(
        metadata={
            "name": name,
            "namespace": ct.namespace,
            "labels": {CONTINUOUS_TRAINING_LABEL: ct.name, MODEL_LABEL: ct.spec.model},
            "annotations": {
                TRIGGER_TYPE_ANNOTATION: str(decision.run_type),
                TRIGGER_REASON_ANNOTATION: decision.reason[:1024],
                TRIGGER_TIME_ANNOTATION: at.isoformat(),
            },
        },
        spec=spec,
    ).to_dict()
    ownership.adopt(run, ct)  # deleting the ContinuousTraining deletes its runs
    return run


class NameTaken(Exception):
    """Every run name tried belongs to another object."""


def start(
    ct: ContinuousTraining, names: list[str], decision: Decision, at: datetime.datetime
) -> str:
    """Create the run under the first of `names` that is free or already this one's (a retry
    after a crash finds the run it made); returns its name."""
    for name in names[:NAMES_TRIED]:
        try:
            created = objects.create(TrainingRun, ct.namespace, manifest(ct, name, decision, at))
        except ApiException as error:
            if not is_conflict(error):
                raise
            found = objects.get(TrainingRun, ct.namespace, name)
            if found is not None and owned_by(found, ct):
                return name
            logger.info("run name %s is taken by another object; trying the next", name)
            continue
        # The run's first reconcile then works from the watch cache instead of reading it back,
        # and this ContinuousTraining's next reconcile counts it even if the watch lags.
        cache.created(TrainingRun, created)
        logger.info("started TrainingRun %s (%s)", name, decision.reason)
        return name
    raise NameTaken(f"run names {names[0]} and on are taken by objects of another owner")


def delete(ct: ContinuousTraining, name: str) -> None:
    objects.delete(TrainingRun, ct.namespace, name)
    cache.forget(TrainingRun, ct.namespace, name)


def beyond_history(ct: ContinuousTraining, runs: Runs) -> list[str]:
    """The finished runs the history limits no longer keep, oldest first."""
    spec = ct.spec
    old_successes = runs.succeeded[
        : max(0, len(runs.succeeded) - spec.successful_runs_history_limit)
    ]
    old_failures = runs.failed[: max(0, len(runs.failed) - spec.failed_runs_history_limit)]
    return [r["metadata"]["name"] for r in [*old_successes, *old_failures]]


def last_success(runs: Runs) -> tuple[str | None, str | None]:
    """The latest succeeded run and the ModelVersion it registered."""
    if not runs.succeeded:
        return None, None
    run = runs.succeeded[-1]
    return run["metadata"]["name"], (run.get("status") or {}).get("modelVersion")
