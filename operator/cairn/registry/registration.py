"""Registering a succeeded TrainingRun: the ModelVersion it becomes, and the number it takes (pure).

A version's number is taken by creating `<model>-v<N>`: the API server's name uniqueness is the
lock. The first number tried is one above every number in use or ever recorded as the Model's
latest, and a name already taken moves on to the next. The ModelVersion carries the run's uid
in a label, so a registration that is retried after a crash finds the version it made.
"""

import dataclasses
import datetime
from collections.abc import Iterable

from cairn.api import ModelVersion, ModelVersionSpec, Source, TrainingRun
from cairn.api.common import TrainedDataset, Trigger
from cairn.api.labels import (
    CONTINUOUS_TRAINING_LABEL,
    MODEL_LABEL,
    RUN_LABEL,
    RUN_UID_LABEL,
    TRIGGER_REASON_ANNOTATION,
    TRIGGER_TIME_ANNOTATION,
    TRIGGER_TYPE_ANNOTATION,
)
from cairn.api.trainingrun import RegistrationReason


@dataclasses.dataclass
class RegistrationError(Exception):
    """Why a run could not be registered: the reason of its Registered condition, a message
    that says what to do, and whether trying again can help."""

    reason: RegistrationReason
    message: str
    retry: bool

    def __str__(self) -> str:
        return self.message


def version_name(model: str, number: int) -> str:
    return f"{model}-v{number}"


def first_number(in_use: Iterable[int], latest_recorded: int | None) -> int:
    """The first version number to try: above every number in use, and above the Model's
    latest version, which remembers numbers whose versions were deleted."""
    return max([latest_recorded or 0, *in_use]) + 1


def made_by(version: dict[str, object], run: TrainingRun) -> bool:
    """Whether a ModelVersion body is the one this run registered."""
    metadata = version.get("metadata")
    labels = (metadata.get("labels") if isinstance(metadata, dict) else None) or {}
    return bool(run.uid) and labels.get(RUN_UID_LABEL) == run.uid


def trigger_of(run: TrainingRun) -> Trigger | None:
    """What started the run, from the annotations a ContinuousTraining puts on its runs."""
    annotations = run.annotations
    kind = annotations.get(TRIGGER_TYPE_ANNOTATION)
    if not kind:
        return None
    when = annotations.get(TRIGGER_TIME_ANNOTATION)
    try:
        moment = datetime.datetime.fromisoformat(when) if when else None
    except ValueError:
        moment = None
    return Trigger(
        type=kind[:32],
        reason=annotations.get(TRIGGER_REASON_ANNOTATION, "")[:1024],
        time=moment or datetime.datetime.now(datetime.UTC),
        continuous_training=run.labels.get(CONTINUOUS_TRAINING_LABEL),
    )


def version_for(run: TrainingRun, number: int) -> ModelVersion:
    """The ModelVersion recording `run` as version `number` of its model (the caller makes the
    Model its owner)."""
    status = run.status
    if status is None or status.artifact is None:
        raise RegistrationError(
            RegistrationReason.NO_ARTIFACT,
            "the trainer reported no artifact: save the model with cairn.training.save_model",
            retry=False,
        )
    spec = run.spec
    dataset_uri = (spec.dataset.uri if spec.dataset else None) or (
        status.dataset.uri if status.dataset else None
    )
    # The URI the run was given; what the trainer measured of it (digest, rows, features).
    dataset = None
    if dataset_uri:
        measured = status.dataset or TrainedDataset(uri=dataset_uri)
        dataset = measured.model_copy(update={"uri": dataset_uri})
    source = Source(
        run=run.name,
        run_uid=run.uid,
        image=status.image or spec.image,
        image_id=status.image_id,
        code_revision=spec.code.revision if spec.code else None,
        params=spec.params or {},
        dataset=dataset,
        trigger=trigger_of(run),
    )
    return ModelVersion(
        metadata={
            "name": version_name(spec.model, number),
            "namespace": run.namespace,
            "labels": {MODEL_LABEL: spec.model, RUN_LABEL: run.name, RUN_UID_LABEL: run.uid},
        },
        spec=ModelVersionSpec(
            model=spec.model,
            version=number,
            artifact=status.artifact,
            source=source,
            metrics=status.metrics or {},
            evaluation=status.evaluation,
            fairness=status.fairness,
        ),
    )
