"""What a TrainingRun's transitions tell people and the operator's metrics: Events, log lines and
the training-duration histogram, each once, after the status that records the transition."""

import datetime
import logging

from cairn.api import TrainingRun, TrainingRunConditionType, TrainingRunPhase, TrainingRunStatus
from cairn.api.conditions import find
from cairn.api.trainingrun import TrainingRunReason
from cairn.controllers.trainingrun.observe import Observation
from cairn.kube import events
from cairn.observability import metrics

Phase, Reason, Condition = TrainingRunPhase, TrainingRunReason, TrainingRunConditionType
# Reasons a run waits for a person to fix something: each becomes a Warning Event when it starts.
WAITING_ON_PEOPLE = frozenset(
    {
        Reason.ARTIFACT_CLAIM_MISSING,
        Reason.CODE_MISSING,
        Reason.UNSCHEDULABLE,
        Reason.POD_PENDING,
    }
)

logger = logging.getLogger(__name__)


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
