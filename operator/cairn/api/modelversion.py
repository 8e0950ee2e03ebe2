"""ModelVersion: the immutable record of one trained model, and its approval."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from cairn.api.base import AGE_COLUMN, ApiModel, Crd, PrinterColumn, Resource
from cairn.api.cel import immutable_except, object_rules, rule
from cairn.api.common import (
    DNS_LABEL_MAX,
    TEXT_MAX,
    ArtifactRef,
    Conditions,
    Evaluation,
    Metrics,
    ModelName,
    Params,
    TrainedDataset,
    Trigger,
)
from cairn.api.fairness import Fairness, FairnessGateResult
from cairn.api.model import GateOp

VERSION_MAX = 2**31 - 1
HISTORY_MAX = 32


class ApprovalState(StrEnum):
    APPROVED = "Approved"
    REJECTED = "Rejected"
    # What Cairn once wrote by default on every new version: the same as no approval.
    PENDING = "Pending"


class ModelVersionPhase(StrEnum):
    INVALID = "Invalid"
    PENDING_APPROVAL = "PendingApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class ModelVersionConditionType(StrEnum):
    VALIDATED = "Validated"
    APPROVED = "Approved"
    READY = "Ready"
    # Under a promotion policy: whether the policy moved its alias to this version.
    PROMOTED = "Promoted"


class ModelVersionReason(StrEnum):
    GATES_PASSED = "GatesPassed"
    GATES_FAILED = "GatesFailed"
    APPROVED = "Approved"
    AUTO_APPROVED = "AutoApproved"
    PENDING_APPROVAL = "PendingApproval"
    REJECTED = "Rejected"
    READY = "Ready"
    MODEL_NOT_FOUND = "ModelNotFound"
    INVALID_SPEC = "InvalidSpec"
    # Promoted
    PROMOTED = "Promoted"
    NOT_BETTER = "NotBetter"
    PROMOTING = "Promoting"  # it beats the holder; the Model's reconcile moves the alias next
    CHAMPION_CHANGED = "ChampionChanged"
    NOT_COMPARED = "NotCompared"
    METRIC_MISSING = "MetricMissing"
    ROLLED_BACK = "RolledBack"
    SUPERSEDED = "Superseded"
    NOT_READY = "NotReady"
    OVERRIDDEN = "PromotionOverridden"
    # History entries only
    APPROVAL_WITHDRAWN = "ApprovalWithdrawn"
    SERVING = "Serving"
    CANARY_ROLLED_BACK = "CanaryRolledBack"


class Source(ApiModel):
    """Where the model came from: its lineage."""

    run: str | None = Field(
        default=None, max_length=DNS_LABEL_MAX, description="Name of the TrainingRun."
    )
    run_uid: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="UID of the TrainingRun, telling it apart from a later run of the same name.",
    )
    image: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Container image that trained the model, as the training pod ran it.",
    )
    image_id: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="That image's digest as the kubelet reported it (the pod's imageID).",
    )
    code_revision: str | None = Field(
        default=None, max_length=TEXT_MAX, description="Version of the training code."
    )
    params: Params | None = Field(default=None, description="Hyperparameters of the run.")
    dataset: TrainedDataset | None = Field(
        default=None, description="The dataset trained on: its digest, rows and features."
    )
    trigger: Trigger | None = Field(
        default=None, description="What started the run: a ContinuousTraining's trigger."
    )


class Approval(ApiModel):
    """A person's decision on the version: the one part of a ModelVersion that may change.

    Where the chart's ValidatingAdmissionPolicy runs, only a user allowed the verb `approve` on
    modelversions may set or change it, and `by` must be that user's own name."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "self.state == 'Pending' || (has(self.by) && size(self.by) > 0)",
                "spec.approval.by is required: the user who decided (cairn approve and cairn "
                "reject fill in your user name)",
                field_path=".by",
            ),
            rule(
                "self.state == 'Pending' || (has(self.reason) && size(self.reason) > 0)",
                "spec.approval.reason is required: why the version was approved or rejected, for "
                "the audit trail (cairn approve --reason ...)",
                field_path=".reason",
            ),
        )
    )

    state: ApprovalState = Field(
        description="Approved or Rejected (Pending, which older versions of Cairn wrote on every "
        "new version, means no decision, as does no spec.approval). Without an approval, a "
        "Model whose policy does not require one approves validated versions automatically."
    )
    by: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Who decided: the Kubernetes user name of the person, as the API server "
        "knows it (request.userInfo.username).",
    )
    reason: str | None = Field(default=None, max_length=TEXT_MAX, description="Why.")


class ModelVersionSpec(ApiModel):
    """The record of one trained model. Fixed at creation, except approval."""

    model_config = ConfigDict(
        json_schema_extra=immutable_except(
            "approval",
            message="{field} cannot change: a ModelVersion is the immutable record of one trained "
            "model. Train and register a new version instead (only spec.approval may change).",
        )
    )

    model: ModelName = Field(description="Name of the Model this is a version of.")
    version: int = Field(
        ge=1, le=VERSION_MAX, description="Version number, unique in the Model, never reused."
    )
    artifact: ArtifactRef = Field(description="The model's files and their digest.")
    source: Source | None = Field(
        default=None,
        description="Lineage: the run, image, code revision, params and dataset that made it.",
    )
    metrics: Metrics | None = Field(
        default=None, description="Metrics of the trained model, for example {accuracy: 0.97}."
    )
    evaluation: Evaluation | None = Field(
        default=None,
        description="The promotion alias's holder when the run trained, scored on the same "
        "evaluation data: what automatic promotion compares.",
    )
    fairness: Fairness | None = Field(
        default=None,
        description="Group fairness per sensitive feature, measured by the run on its "
        "evaluation data with fairlearn (cairn.training.log_fairness): what fairness gates "
        "judge.",
    )
    signature: (
        Annotated[
            dict[str, Any],
            WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
        ]
        | None
    ) = Field(
        default=None,
        description="The model's inputs and outputs (names, types, shapes), as the trainer "
        "described them.",
    )
    approval: Approval | None = Field(
        default=None,
        description="A person's decision, absent until someone decides: set it with `cairn "
        "approve` or `cairn reject` (or by editing this field, as yourself, with the verb "
        "approve on modelversions).",
    )


class GateResult(ApiModel):
    """One gate of the Model's policy, evaluated against this version's metrics."""

    metric: str = Field(description="Name of the metric.")
    op: GateOp = Field(description="Comparison: >=, >, <=, < or ==.")
    threshold: float = Field(description="The value the metric is compared with.")
    value: float | None = Field(
        default=None,
        json_schema_extra={"nullable": True},
        description="The version's value of the metric; null when the trainer did not report it.",
    )
    passed: bool = Field(description="Whether the metric meets the threshold.")
    message: str | None = Field(default=None, description="The comparison, in words.")


class HistoryEntry(ApiModel):
    """One thing that happened to the version: a gate verdict, a decision, a promotion, a change
    in who serves it."""

    time: datetime = Field(description="When the operator saw it happen.")
    action: ModelVersionReason = Field(
        description="GatesPassed, GatesFailed, ModelNotFound, Approved, AutoApproved, "
        "PendingApproval, Rejected, ApprovalWithdrawn, Promoted, NotBetter, Superseded, "
        "RolledBack, Serving (a ModelDeployment's track changed) or CanaryRolledBack."
    )
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=TEXT_MAX,
        description="The state before: a phase, or a serving track (stable, canary).",
    )
    to: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="The state after: a phase, an alias, or a serving track.",
    )
    by: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Who, where known: the user who approved or rejected, policy (the Model's "
        "policy), or ModelDeployment/<name>.",
    )
    reason: str | None = Field(
        default=None, max_length=TEXT_MAX, description="Why, with the numbers of a verdict."
    )


class ModelVersionStatus(ApiModel):
    """Validation and use of the version, as the operator sees them; written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    phase: ModelVersionPhase | None = Field(
        default=None,
        description="Invalid (a gate failed or the artifact is unusable), PendingApproval, "
        "Approved or Rejected.",
    )
    conditions: Conditions | None = Field(
        default=None,
        description="Validated (every gate passed), Approved, Ready (validated and approved: "
        "the version may be served), and under a promotion policy Promoted (whether the policy "
        "moved its alias here, and if not why, with both metric values).",
    )
    gates: list[GateResult] | None = Field(
        default=None, description="Each gate of the Model's policy and its result."
    )
    fairness_gates: list[FairnessGateResult] | None = Field(
        default=None,
        description="Each fairness gate of the Model's policy and its result, with the groups' "
        "numbers.",
    )
    key_metric: str | None = Field(
        default=None,
        description="The version's headline metric as name=value, for example accuracy=0.97, "
        "for `kubectl get`.",
    )
    deployments: list[str] | None = Field(
        default=None, description="ModelDeployments serving this version."
    )
    history: Annotated[list[HistoryEntry], Field(max_length=HISTORY_MAX)] | None = Field(
        default=None,
        description=f"The last {HISTORY_MAX} gate verdicts, approvals and rejections, promotion "
        "verdicts, changes of who serves it and canary rollbacks, oldest first: they outlive "
        "Events.",
    )


class ModelVersion(Resource):
    """A ModelVersion records one trained model: its artifact and digest, metrics and lineage.
    It is immutable except for its approval. Named <model>-v<version>."""

    crd: ClassVar[Crd] = Crd(
        plural="modelversions",
        short_names=("mv",),
        columns=(
            PrinterColumn("Model", ".spec.model", "The Model."),
            PrinterColumn("Version", ".spec.version", "Version number.", type="integer"),
            PrinterColumn(
                "Approval",
                ".status.phase",
                "PendingApproval, Approved (by a person or automatically), Rejected or Invalid.",
            ),
            PrinterColumn(
                "Validated",
                '.status.conditions[?(@.type=="Validated")].status',
                "Whether every gate passed.",
            ),
            PrinterColumn("Metric", ".status.keyMetric", "Headline metric."),
            AGE_COLUMN,
        ),
        rules=(
            rule(
                "self.metadata.name == '%s-v%d'.format([self.spec.model, self.spec.version])",
                "metadata.name must be <spec.model>-v<spec.version>, for example iris-v3",
            ),
        ),
    )

    kind: Literal["ModelVersion"] = Field(default="ModelVersion", description="ModelVersion.")
    spec: ModelVersionSpec = Field(description="The record of the trained model.")
    status: ModelVersionStatus | None = Field(
        default=None, description="Validation and use of the version, as the operator sees them."
    )
