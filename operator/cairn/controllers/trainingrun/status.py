"""A TrainingRun's status from what was observed of its Job and pods: pure."""

import dataclasses
from typing import Any

from pydantic import ValidationError

from cairn.api import TrainingRun, TrainingRunConditionType, TrainingRunPhase, TrainingRunStatus
from cairn.api.common import ArtifactRef, Evaluation, TrainedDataset
from cairn.api.conditions import find, set_condition
from cairn.api.trainingrun import RegistrationReason, TrainingRunReason
from cairn.controllers.parsing import describe
from cairn.controllers.trainingrun.observe import Observation
from cairn.registry.gates import key_metric

Body = dict[str, Any]
Phase, Reason, Condition = TrainingRunPhase, TrainingRunReason, TrainingRunConditionType
# Registration outcomes after which nothing more is tried.
FINAL_REGISTRATION = frozenset({RegistrationReason.VERSION_REFUSED, RegistrationReason.NO_ARTIFACT})


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
        fields["dataset"] = TrainedDataset.model_validate(summary["dataset"])
    if summary.get("evaluation"):
        fields["evaluation"] = Evaluation.model_validate(summary["evaluation"])
    if summary.get("fairness"):
        fields["fairness"] = TrainingRunStatus.model_validate(
            {"fairness": summary["fairness"]}
        ).fairness
    return fields


def fair(evaluation: Evaluation | None, seen: Observation) -> Evaluation | None:
    """The run's evaluation, when it scored the champion the run was given (and no other)."""
    if evaluation is None or seen.champion is None:
        return None
    return evaluation if evaluation.champion_version == seen.champion.version else None


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
    if seen.champion is not None:
        update["champion"] = seen.champion
    if seen.summary is not None:
        update.update(summary_fields(seen.summary))
        update["evaluation"] = fair(update.get("evaluation"), seen)
    return TrainingRunStatus.model_validate({**current.model_dump(by_alias=False), **update})
