"""Model: a registered model, the family of its versions, with its promotion policy and aliases."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field

from cairn.api.base import AGE_COLUMN, ApiModel, Crd, PrinterColumn, Resource
from cairn.api.cel import KeysMatch, Matches, object_rules, rule
from cairn.api.common import (
    DNS_LABEL,
    DNS_LABEL_MESSAGE,
    MODEL_NAME_MAX,
    TEXT_MAX,
    Conditions,
    MetricName,
)
from cairn.api.fairness import SENSITIVE_FEATURES_MAX, FairnessGates, SensitiveFeature

GATES_MAX = 32
HISTORY_MAX = 50
ROLLED_BACK_MAX = 64
ALIASES_MAX = 64
DESCRIPTION_MAX = 4096


class GateOp(StrEnum):
    """How a metric is compared with a gate's threshold."""

    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"
    EQ = "=="


class ModelConditionType(StrEnum):
    READY = "Ready"
    ALIASES_RESOLVED = "AliasesResolved"
    # True while spec.aliases pins the alias that spec.policy.promotion manages.
    PROMOTION_OVERRIDDEN = "PromotionOverridden"


class ModelReason(StrEnum):
    READY = "Ready"
    RESOLVED = "Resolved"
    INVALID_ALIAS_TARGET = "InvalidAliasTarget"
    INVALID_SPEC = "InvalidSpec"
    PINNED = "PinnedInSpec"
    NOT_PINNED = "NotPinned"
    # Events and history entries
    ALIAS_MOVED = "AliasMoved"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    VERSION_RETIRED = "VersionRetired"
    # History entries copied from a version's own history, so they outlive the version.
    VERSION_APPROVED = "VersionApproved"
    VERSION_REJECTED = "VersionRejected"


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class Gate(ApiModel):
    """A threshold a version's metric must meet for the version to be Validated."""

    metric: MetricName = Field(description="Name of the metric, as the trainer reports it.")
    op: GateOp = Field(description="Comparison of metric with threshold: >=, >, <=, < or ==.")
    threshold: float = Field(description="The value the metric is compared with.")


AliasName = Annotated[
    str,
    Field(max_length=63),
    Matches(
        r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        "must be an alias name: a lowercase DNS label, for example production",
    ),
]


class Promotion(ApiModel):
    """Move an alias to each new version that beats the one holding it, on one metric measured
    on the same evaluation data."""

    alias: AliasName = Field(
        description="The alias the operator moves, for example production. Its target is in "
        "status.aliases; pinning the same alias in spec.aliases overrides the policy (a "
        "freeze) and the Model's PromotionOverridden condition says so."
    )
    metric: MetricName = Field(
        description="The metric compared, for example f1_macro: the new version's value beside "
        "the current holder's, both measured by the new version's training run on its own "
        "evaluation data (cairn.training.evaluate)."
    )
    direction: Direction = Field(
        default=Direction.MAXIMIZE,
        description="maximize (higher is better) or minimize (lower is better, for example rmse).",
    )
    min_improvement: float = Field(
        default=0.0,
        ge=0,
        description="How much better the new version must be, in the metric's units; 0: any "
        "improvement, a tie is not one.",
    )


class Policy(ApiModel):
    """What a version must satisfy before it can be used."""

    gates: Annotated[list[Gate], Field(max_length=GATES_MAX)] | None = Field(
        default=None,
        description="Metric thresholds, for example [{metric: accuracy, op: '>=', threshold: "
        "0.9}]. A version is Validated when it meets all of them.",
    )
    require_approval: bool = Field(
        default=False,
        description="true keeps each validated version PendingApproval until a person approves "
        "it (`cairn approve <model> <version>`); false approves validated versions automatically.",
    )
    promotion: Promotion | None = Field(
        default=None,
        description="Automatic promotion: the alias moves to a new Ready version only when it "
        "beats the holder on the metric, measured on the same data; a version whose canary was "
        "rolled back is never chosen again.",
    )
    fairness: FairnessGates | None = Field(
        default=None,
        description="Group fairness bounds, for example [{metric: demographicParityDifference, "
        "sensitiveFeature: sex, max: 0.1}]. A version is Validated only when its training run "
        "recorded fairness for each gate's sensitive feature (cairn.training.log_fairness) "
        "within the bound.",
    )


class Retention(ApiModel):
    """How many versions are kept."""

    keep_versions: int | None = Field(
        default=None,
        ge=1,
        description="Keep the newest this many versions and delete older ones; versions that an "
        "alias points at or a deployment uses are never deleted. Unset: keep all.",
    )


Aliases = Annotated[
    dict[str, Annotated[int, Field(ge=1)]],
    Field(max_length=ALIASES_MAX),
    KeysMatch(
        r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        "every alias name must be a lowercase DNS label of at most 63 characters: letters a-z, "
        "digits and '-', starting and ending with a letter or digit (for example production)",
    ),
]


class ModelSpec(ApiModel):
    """How the model's versions are judged, and which version each alias names."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "!has(self.policy) || !has(self.policy.fairness) || self.policy.fairness.all(g, "
                "has(self.sensitiveFeatures) && g.sensitiveFeature in self.sensitiveFeatures)",
                "every spec.policy.fairness[].sensitiveFeature must be listed in "
                "spec.sensitiveFeatures, the Model's sensitive attributes: add it there",
                field_path=".policy.fairness",
            ),
        )
    )

    description: str | None = Field(
        default=None, max_length=DESCRIPTION_MAX, description="What the model does, for people."
    )
    owner: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Who answers for the model: a team or a person's address.",
    )
    policy: Policy = Field(
        default_factory=Policy,
        json_schema_extra={"default": {}},
        description="Gates and approval every new version goes through.",
    )
    aliases: Aliases | None = Field(
        default=None,
        description="Names for versions, set by people or Git, for example {production: 3, "
        "staging: 4}. An alias resolves only to a version that is Validated and Approved; the "
        "resolved targets are in status.aliases.",
    )
    retention: Retention | None = Field(default=None, description="How many versions are kept.")
    # Model card facts (Mitchell et al., "Model Cards for Model Reporting"): for people.
    intended_use: str | None = Field(
        default=None,
        max_length=DESCRIPTION_MAX,
        description="What the model is for and who should use it, and uses it is not meant for "
        "(the model card's Intended use).",
    )
    limitations: str | None = Field(
        default=None,
        max_length=DESCRIPTION_MAX,
        description="Known limitations, caveats and recommendations (the model card's Caveats).",
    )
    ethical_considerations: str | None = Field(
        default=None,
        max_length=DESCRIPTION_MAX,
        description="Risks to people, sensitive data used, mitigations (the model card's Ethical "
        "considerations).",
    )
    sensitive_features: (
        Annotated[
            list[SensitiveFeature],
            Field(
                max_length=SENSITIVE_FEATURES_MAX,
                json_schema_extra={"x-kubernetes-list-type": "set"},
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Attributes of protected groups in the data (for example sex or age_band): "
        "marked in the model card, the only features fairness gates may name, and never to be "
        "logged with predictions.",
    )


class HistoryEntry(ApiModel):
    """One thing that happened to the Model's aliases or versions."""

    time: datetime = Field(description="When.")
    action: ModelReason = Field(
        description="AliasMoved, Promoted, RolledBack, VersionRetired, VersionApproved or "
        "VersionRejected."
    )
    version: int | None = Field(default=None, ge=1, description="The version approved or rejected.")
    alias: str | None = Field(default=None, max_length=63, description="The alias.")
    from_version: int | None = Field(default=None, ge=1, description="The version it named before.")
    to_version: int | None = Field(default=None, ge=1, description="The version it names now.")
    by: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="Who: spec (a person or Git editing spec.aliases), policy (the promotion "
        "policy), retention, or the user who approved or rejected a version.",
    )
    reason: str | None = Field(default=None, max_length=TEXT_MAX, description="Why.")


class ModelStatus(ApiModel):
    """The model's versions as the operator sees them. Written by the operator only."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    latest_version: int | None = Field(
        default=None,
        ge=1,
        description="The highest version registered so far; it never goes down, so a deleted "
        "version's number is not given again.",
    )
    aliases: dict[str, int] | None = Field(
        default=None,
        description="Each alias and the version it resolves to; only valid targets appear.",
    )
    conditions: Conditions | None = Field(
        default=None,
        description="Ready (the model is usable), AliasesResolved (every alias in the spec "
        "names a Validated and Approved version), and PromotionOverridden (spec.aliases pins "
        "the alias the promotion policy manages).",
    )
    promoted: int | None = Field(
        default=None,
        ge=1,
        description="The version the promotion policy chose for its alias; status.aliases shows "
        "it unless spec.aliases pins that alias.",
    )
    rolled_back: Annotated[list[int], Field(max_length=ROLLED_BACK_MAX)] | None = Field(
        default=None,
        description="Versions the promotion policy moved its alias to whose canary was then "
        "rolled back: never chosen again.",
    )
    history: Annotated[list[HistoryEntry], Field(max_length=HISTORY_MAX)] | None = Field(
        default=None,
        description=f"The last {HISTORY_MAX} alias moves, promotions, rollbacks, retirements, "
        "approvals and rejections, oldest first: they outlive Events and the versions.",
    )


class Model(Resource):
    """A Model is a registered model: the family of its ModelVersions, the policy a version must
    pass, and aliases (such as production) naming versions."""

    crd: ClassVar[Crd] = Crd(
        plural="models",
        short_names=("mdl",),
        columns=(
            PrinterColumn("Latest", ".status.latestVersion", "Highest version.", type="integer"),
            PrinterColumn("Aliases", ".status.aliases", "Resolved aliases."),
            AGE_COLUMN,
        ),
        rules=(
            rule(
                f"size(self.metadata.name) <= {MODEL_NAME_MAX}",
                f"metadata.name must be at most {MODEL_NAME_MAX} characters, so that version "
                "names <model>-v<N> stay valid",
            ),
            rule(
                f"self.metadata.name.matches(r'{DNS_LABEL}')",
                f"metadata.name {DNS_LABEL_MESSAGE}",
            ),
        ),
    )

    kind: Literal["Model"] = Field(default="Model", description="Model.")
    spec: ModelSpec = Field(
        default_factory=ModelSpec,
        json_schema_extra={"default": {}},
        description="Policy and aliases of the model.",
    )
    status: ModelStatus | None = Field(
        default=None, description="Versions and resolved aliases, as the operator sees them."
    )
