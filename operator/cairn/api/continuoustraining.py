"""ContinuousTraining: retraining a Model by itself, on a schedule, when its data or code changes,
when something asks for it, or when another object's condition (Drifted, say) becomes true."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field

from cairn.api.base import AGE_COLUMN, ApiModel, Crd, PrinterColumn, Resource
from cairn.api.cel import Matches, object_rules, rule
from cairn.api.common import (
    DNS_LABEL_MAX,
    MESSAGE_MAX,
    TEXT_MAX,
    Conditions,
    Digest,
    Duration,
    ModelName,
)
from cairn.api.trainingrun import TrainingRunTemplate

# Runs are named <name>-<trigger>-<number>; "-condition-" and a 10-digit number leave 41.
NAME_MAX = 40
CONDITION_TRIGGERS_MAX = 8
RUN_HISTORY_MAX = 100
DEFAULT_CHECK_EVERY = "1m"

CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|[-0-9A-Za-z*/,?#]+([ \t]+[-0-9A-Za-z*/,?#]+){4,5})$"
)


class TriggerType(StrEnum):
    SCHEDULE = "schedule"
    DATASET = "dataset"
    CODE = "code"
    REQUEST = "request"
    CONDITION = "condition"


class ConcurrencyPolicy(StrEnum):
    FORBID = "Forbid"
    ALLOW = "Allow"
    REPLACE = "Replace"


class ContinuousTrainingConditionType(StrEnum):
    READY = "Ready"
    SUSPENDED = "Suspended"


class ContinuousTrainingReason(StrEnum):
    READY = "Ready"
    INVALID_SCHEDULE = "InvalidSchedule"
    INVALID_DATASET = "InvalidDataset"
    CONDITION_SOURCE_NOT_FOUND = "ConditionSourceNotFound"
    INVALID_SPEC = "InvalidSpec"
    SUSPENDED = "Suspended"
    ACTIVE = "Active"
    # Events
    TRIGGERED = "Triggered"
    TRIGGER_SKIPPED = "TriggerSkipped"
    MISSED_SCHEDULE = "MissedSchedule"
    RUN_REPLACED = "RunReplaced"
    RUN_DELETED = "RunDeleted"
    DATASET_CHECK_FAILED = "DatasetCheckFailed"


class ConditionSourceKind(StrEnum):
    MODEL_DEPLOYMENT = "ModelDeployment"
    MODEL = "Model"
    MODEL_VERSION = "ModelVersion"
    TRAINING_RUN = "TrainingRun"


class ScheduleTrigger(ApiModel):
    """Retrain on a cron schedule."""

    cron: Annotated[
        str,
        Field(max_length=TEXT_MAX),
        Matches(
            CRON,
            "must be a cron schedule: 5 fields (minute hour day-of-month month day-of-week, "
            "for example '0 3 * * *'), 6 with seconds first (for example '*/30 * * * * *'), or "
            "@hourly, @daily, @weekly, @monthly, @yearly",
        ),
    ] = Field(
        description="When to run: 5 cron fields (minute hour day-of-month month day-of-week), or "
        "6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly."
    )
    time_zone: (
        Annotated[
            str,
            Field(max_length=64),
            Matches(
                r"^[A-Za-z][-A-Za-z0-9_+]*(/[-A-Za-z0-9_+]+)*$",
                "must be an IANA time zone name, for example Europe/Paris or UTC",
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="The IANA time zone the schedule is read in, for example Europe/Paris. "
        "Unset: UTC.",
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="A run whose schedule time is older than this when the operator gets to it "
        "(it was down, say) is not started, and an Event lists it as missed. Unset: a missed "
        "schedule is caught up whenever the operator runs again (one run for all it missed).",
    )


class DatasetTrigger(ApiModel):
    """Retrain when the content of the template's dataset changes."""

    check_every: Duration = Field(
        default=DEFAULT_CHECK_EVERY,
        description="How often the dataset's digest is measured (by a short pod that reads it).",
    )


class CodeTrigger(ApiModel):
    """Retrain when the training code changes: its ConfigMap's content, or
    template.code.revision (a GitOps commit bumps it)."""

    check_every: Duration = Field(
        default=DEFAULT_CHECK_EVERY, description="How often the code's ConfigMap is hashed."
    )


class ConditionTrigger(ApiModel):
    """Retrain when a condition of another object becomes True."""

    kind: ConditionSourceKind = Field(
        description="The object's kind: ModelDeployment, Model, ModelVersion or TrainingRun, in "
        "this namespace."
    )
    name: Annotated[
        str,
        Field(min_length=1, max_length=DNS_LABEL_MAX),
        Matches(
            r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            "must be an object's name: a lowercase DNS label, for example iris",
        ),
    ] = Field(description="The object's name.")
    type: Annotated[
        str,
        Field(min_length=1, max_length=316),
        Matches(
            r"^[A-Za-z0-9][-A-Za-z0-9_.]*$",
            "must be a condition type, for example Drifted or PerformanceDegraded",
        ),
    ] = Field(description="The condition type, for example Drifted.")


class Triggers(ApiModel):
    """What starts a run, besides the annotation cairn.dev/retrain (any new value, which is the
    reason: `cairn retrain`), which always does."""

    schedule: ScheduleTrigger | None = Field(default=None, description="A cron schedule.")
    dataset: DatasetTrigger | None = Field(
        default=None,
        description="Retrain when the dataset's content digest differs from the one the last "
        "run trained on (the first check trains at once). file:// and pvc:// datasets.",
    )
    code: CodeTrigger | None = Field(
        default=None,
        description="Retrain when the code ConfigMap's content or template.code.revision "
        "differs from what the last run trained with (the first check trains at once; with a "
        "dataset trigger too, once the dataset's first check is done, one run for both).",
    )
    conditions: (
        Annotated[list[ConditionTrigger], Field(max_length=CONDITION_TRIGGERS_MAX)] | None
    ) = Field(
        default=None,
        description="Retrain when one of these conditions becomes True, for example "
        "{kind: ModelDeployment, name: iris, type: Drifted}.",
    )


class ContinuousTrainingSpec(ApiModel):
    """The Model to keep trained, how to train it, and when."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "!has(self.triggers) || !has(self.triggers.dataset) || "
                "(has(self.template.dataset) && has(self.template.dataset.uri))",
                "triggers.dataset needs template.dataset.uri: the dataset whose changes retrain",
                field_path=".triggers",
            ),
            rule(
                "!has(self.triggers) || !has(self.triggers.code) || has(self.template.code)",
                "triggers.code needs template.code: the ConfigMap whose changes retrain",
                field_path=".triggers",
            ),
        )
    )

    model: ModelName = Field(description="Name of the Model the runs train (created if missing).")
    template: TrainingRunTemplate = Field(
        description="The runs' spec: every field of a TrainingRun's spec but model."
    )
    triggers: Triggers = Field(
        default_factory=Triggers,
        json_schema_extra={"default": {}},
        description="What starts a run besides the cairn.dev/retrain annotation.",
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.FORBID,
        description="When a trigger fires while a run is active: Forbid skips it (an Event says "
        "so), Allow starts another run, Replace deletes the active run and starts a new one.",
    )
    min_interval: Duration | None = Field(
        default=None,
        description="At most one run per this interval, however many triggers fire, for example "
        "10m: a schedule time or a request within it is skipped, a data or code change waits "
        "for its end.",
    )
    suspend: bool = Field(
        default=False,
        description="true: no trigger starts a run (each is skipped with an Event); runs already "
        "started go on.",
    )
    successful_runs_history_limit: int = Field(
        default=3,
        ge=0,
        le=RUN_HISTORY_MAX,
        description="Succeeded runs kept; older ones are deleted (never the ModelVersions they "
        "registered).",
    )
    failed_runs_history_limit: int = Field(
        default=1, ge=0, le=RUN_HISTORY_MAX, description="Failed runs kept."
    )


class TriggerRecord(ApiModel):
    """A trigger that started a run."""

    type: TriggerType = Field(description="schedule, dataset, code, request or condition.")
    reason: str = Field(max_length=TEXT_MAX, description="What fired, in words.")
    time: datetime = Field(description="When it fired (a scheduled run: its schedule time).")
    run: str | None = Field(default=None, max_length=DNS_LABEL_MAX, description="The run.")


class DatasetObservation(ApiModel):
    """The dataset as last measured, and as the last run trained on it."""

    digest: Digest | None = Field(
        default=None,
        description="Its content digest now; for an s3:// object, a digest of its version "
        "(below), which changes whenever the object does, read without downloading it.",
    )
    version: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="For an s3:// object: its VersionId (a versioned bucket), else its ETag.",
    )
    checked_at: datetime | None = Field(default=None, description="When it was measured.")
    trained_digest: Digest | None = Field(
        default=None, description="The digest the last run started on."
    )
    message: str | None = Field(
        default=None, max_length=MESSAGE_MAX, description="Why the last check failed, if it did."
    )


class CodeObservation(ApiModel):
    """The training code as last hashed, and as the last run trained with it."""

    hash: Digest | None = Field(default=None, description="sha256 of the ConfigMap's content.")
    revision: str | None = Field(
        default=None, max_length=TEXT_MAX, description="template.code.revision."
    )
    checked_at: datetime | None = Field(default=None, description="When it was hashed.")
    trained_hash: Digest | None = Field(default=None, description="The hash the last run used.")
    trained_revision: str | None = Field(
        default=None, max_length=TEXT_MAX, description="The revision the last run used."
    )


class ConditionObservation(ApiModel):
    """A watched condition's last transition to True that was acted on."""

    source: str = Field(max_length=TEXT_MAX, description="kind/name/type.")
    last_transition_time: datetime = Field(description="The transition acted on.")


class ContinuousTrainingStatus(ApiModel):
    """What the operator observed and started; written by it only."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    conditions: Conditions | None = Field(
        default=None,
        description="Ready (the triggers are valid and watched) and Suspended.",
    )
    last_trigger: TriggerRecord | None = Field(
        default=None, description="The last trigger that started a run."
    )
    runs_started: int | None = Field(
        default=None, ge=0, description="Runs started so far (it numbers the next run's name)."
    )
    active: Annotated[list[str], Field(max_length=RUN_HISTORY_MAX)] | None = Field(
        default=None, description="Runs started and not finished."
    )
    last_successful_run: str | None = Field(
        default=None, description="The last run that succeeded."
    )
    last_successful_version: str | None = Field(
        default=None, description="The ModelVersion the last successful run registered."
    )
    last_schedule_time: datetime | None = Field(
        default=None, description="The last schedule time handled (started, skipped or missed)."
    )
    next_schedule_time: datetime | None = Field(default=None, description="The next one.")
    dataset: DatasetObservation | None = Field(default=None, description="The dataset trigger.")
    code: CodeObservation | None = Field(default=None, description="The code trigger.")
    observed_request: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="The value of the cairn.dev/retrain annotation last acted on.",
    )
    waiting: str | None = Field(
        default=None,
        max_length=MESSAGE_MAX,
        description="Data or code changes that wait for a run, and what they wait for "
        "(Forbid, minInterval, suspend).",
    )
    observed_conditions: (
        Annotated[list[ConditionObservation], Field(max_length=CONDITION_TRIGGERS_MAX)] | None
    ) = Field(default=None, description="The condition transitions acted on.")


class ContinuousTraining(Resource):
    """A ContinuousTraining keeps a Model trained: it starts TrainingRuns from its template on a
    schedule, when the dataset or the code changes, when asked (annotation cairn.dev/retrain), or
    when a condition such as a ModelDeployment's Drifted becomes true."""

    crd: ClassVar[Crd] = Crd(
        plural="continuoustrainings",
        short_names=("ct",),
        columns=(
            PrinterColumn("Model", ".spec.model", "The Model retrained."),
            PrinterColumn("Schedule", ".spec.triggers.schedule.cron", "The cron schedule."),
            PrinterColumn("Last trigger", ".status.lastTrigger.type", "What started the last run."),
            PrinterColumn("Last run", ".status.lastTrigger.run", "The last run started."),
            PrinterColumn(
                "Version", ".status.lastSuccessfulVersion", "Registered by the last success."
            ),
            PrinterColumn(
                "Suspended", ".spec.suspend", "Whether triggers are suspended.", type="boolean"
            ),
            AGE_COLUMN,
            PrinterColumn("Next", ".status.nextScheduleTime", "Next schedule time.", priority=1),
        ),
        rules=(
            rule(
                f"size(self.metadata.name) <= {NAME_MAX}",
                f"metadata.name must be at most {NAME_MAX} characters: it names the runs "
                "<name>-<trigger>-<number>",
            ),
        ),
    )

    kind: Literal["ContinuousTraining"] = Field(
        default="ContinuousTraining", description="ContinuousTraining."
    )
    spec: ContinuousTrainingSpec = Field(description="What to keep trained, how and when.")
    status: ContinuousTrainingStatus | None = Field(
        default=None, description="Triggers seen and runs started, as the operator sees them."
    )
