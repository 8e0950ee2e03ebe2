"""Model: a registered model, the family of its versions, with its promotion policy and aliases."""

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from cairn.api.base import AGE_COLUMN, ApiModel, Crd, PrinterColumn, Resource
from cairn.api.cel import KeysMatch, rule
from cairn.api.common import (
    DNS_LABEL,
    DNS_LABEL_MESSAGE,
    MODEL_NAME_MAX,
    TEXT_MAX,
    Conditions,
    MetricName,
)

GATES_MAX = 32
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


class ModelReason(StrEnum):
    READY = "Ready"
    RESOLVED = "Resolved"
    INVALID_ALIAS_TARGET = "InvalidAliasTarget"
    INVALID_SPEC = "InvalidSpec"


class Gate(ApiModel):
    """A threshold a version's metric must meet for the version to be Validated."""

    metric: MetricName = Field(description="Name of the metric, as the trainer reports it.")
    op: GateOp = Field(description="Comparison of metric with threshold: >=, >, <=, < or ==.")
    threshold: float = Field(description="The value the metric is compared with.")


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
        description="Ready (the model is usable) and AliasesResolved (every alias in the spec "
        "names a Validated and Approved version).",
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
