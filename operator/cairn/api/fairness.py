"""Group fairness: what a training run measured for each sensitive feature (recorded on the
ModelVersion like its metrics), and the gates a Model's policy sets on it.

The measures are fairlearn's, on the run's evaluation data, for a binary outcome: the selection
rate is the share of a group predicted positive (for example approved for credit).
"""

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from cairn.api.base import ApiModel
from cairn.api.cel import Matches, object_rules, rule
from cairn.api.common import TEXT_MAX

SENSITIVE_FEATURES_MAX = 16
# The trainer reports fairness in its 4096-byte termination message: a few features, few groups.
FAIRNESS_FEATURES_MAX = 8
GROUPS_MAX = 32
FAIRNESS_GATES_MAX = 16
GROUP_NAME_MAX = 128

SensitiveFeature = Annotated[
    str,
    Field(min_length=1, max_length=63),
    Matches(
        r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        "must be a feature name: a letter or '_', then letters, digits and _ . - (for example "
        "sex or age_band)",
    ),
]


class FairnessMetric(StrEnum):
    """A group fairness measure over the groups of one sensitive feature."""

    # max - min of the groups' selection rates; 0 is parity.
    DEMOGRAPHIC_PARITY_DIFFERENCE = "demographicParityDifference"
    # min / max of the groups' selection rates; 1 is parity, below 0.8 fails the four-fifths rule.
    DISPARATE_IMPACT_RATIO = "disparateImpactRatio"
    # The larger of the groups' true positive rate and false positive rate differences.
    EQUALIZED_ODDS_DIFFERENCE = "equalizedOddsDifference"
    # The groups' true positive rate difference.
    EQUAL_OPPORTUNITY_DIFFERENCE = "equalOpportunityDifference"
    # max - min of the groups' accuracies.
    ACCURACY_DIFFERENCE = "accuracyDifference"


# Where higher is fairer (gated with min); every other measure is a difference (gated with max).
RATIOS = frozenset({FairnessMetric.DISPARATE_IMPACT_RATIO})


class GroupMetrics(ApiModel):
    """How the model treats one group of a sensitive feature on the evaluation data."""

    group: str = Field(
        max_length=GROUP_NAME_MAX, description="The group: a value of the sensitive feature."
    )
    count: int = Field(ge=0, description="Evaluation rows in the group.")
    selection_rate: float | None = Field(
        default=None, description="Share of the group predicted positive (the favourable outcome)."
    )
    accuracy: float | None = Field(default=None, description="Share predicted correctly.")
    true_positive_rate: float | None = Field(
        default=None,
        description="Share of the group's positives predicted positive (fairlearn counts 0 for a "
        "group without positives).",
    )
    false_positive_rate: float | None = Field(
        default=None,
        description="Share of the group's negatives predicted positive (fairlearn counts 0 for a "
        "group without negatives).",
    )


class FeatureFairness(ApiModel):
    """Group fairness of the model for one sensitive feature, measured by its training run with
    fairlearn on the run's evaluation data (cairn.training.log_fairness)."""

    sensitive_feature: SensitiveFeature = Field(
        description="The sensitive feature, as the training code named it, for example sex."
    )
    positive_label: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="The label counted as the favourable outcome (selection), for example 1.",
    )
    demographic_parity_difference: float | None = Field(
        default=None,
        description="Largest minus smallest selection rate of the groups; 0 is parity.",
    )
    disparate_impact_ratio: float | None = Field(
        default=None,
        description="Smallest over largest selection rate of the groups; 1 is parity, below 0.8 "
        "fails the four-fifths rule. Unset when no group is ever selected.",
    )
    equalized_odds_difference: float | None = Field(
        default=None,
        description="The larger of the true positive rate and false positive rate differences "
        "between groups; 0 is parity.",
    )
    equal_opportunity_difference: float | None = Field(
        default=None, description="Largest minus smallest true positive rate of the groups."
    )
    accuracy_difference: float | None = Field(
        default=None, description="Largest minus smallest accuracy of the groups."
    )
    groups: Annotated[list[GroupMetrics], Field(max_length=GROUPS_MAX)] = Field(
        description="Each group's metrics."
    )

    def value(self, metric: FairnessMetric) -> float | None:
        measures: dict[FairnessMetric, float | None] = {
            FairnessMetric.DEMOGRAPHIC_PARITY_DIFFERENCE: self.demographic_parity_difference,
            FairnessMetric.DISPARATE_IMPACT_RATIO: self.disparate_impact_ratio,
            FairnessMetric.EQUALIZED_ODDS_DIFFERENCE: self.equalized_odds_difference,
            FairnessMetric.EQUAL_OPPORTUNITY_DIFFERENCE: self.equal_opportunity_difference,
            FairnessMetric.ACCURACY_DIFFERENCE: self.accuracy_difference,
        }
        return measures[metric]


# One entry per sensitive feature.
Fairness = Annotated[
    list[FeatureFairness],
    Field(
        max_length=FAIRNESS_FEATURES_MAX,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["sensitiveFeature"],
        },
    ),
]

_RATIO_NAMES = ", ".join(sorted(RATIOS))
_DIFFERENCE_NAMES = ", ".join(m.value for m in FairnessMetric if m not in RATIOS)


class FairnessGate(ApiModel):
    """A bound a version's fairness must meet for the version to be Validated."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                " || ".join(f"self.metric != '{m}'" for m in sorted(RATIOS))
                + " || (has(self.min) && !has(self.max))",
                f"{_RATIO_NAMES} (the smallest group selection rate over the largest; 1 is "
                "parity) is gated with min and no max, for example min: 0.8 (the four-fifths "
                "rule)",
            ),
            rule(
                " || ".join(f"self.metric == '{m}'" for m in sorted(RATIOS))
                + " || (has(self.max) && !has(self.min))",
                f"a difference between groups ({_DIFFERENCE_NAMES}; 0 is parity) is gated with "
                "max and no min, for example max: 0.1",
            ),
        )
    )

    metric: FairnessMetric = Field(
        description="demographicParityDifference, disparateImpactRatio, equalizedOddsDifference, "
        "equalOpportunityDifference or accuracyDifference."
    )
    sensitive_feature: SensitiveFeature = Field(
        description="The sensitive feature whose groups are compared, as the training code names "
        "it in cairn.training.log_fairness; it must be listed in spec.sensitiveFeatures."
    )
    max: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The largest value allowed: the bound of a difference, for example 0.1.",
    )
    min: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The smallest value allowed: the bound of disparateImpactRatio, for example "
        "0.8.",
    )

    def bound(self) -> str:
        return f"<= {self.max:g}" if self.max is not None else f">= {self.min:g}"


FairnessGates = Annotated[
    list[FairnessGate],
    Field(
        max_length=FAIRNESS_GATES_MAX,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["metric", "sensitiveFeature"],
        },
    ),
]


class FairnessGateResult(ApiModel):
    """One fairness gate of the Model's policy, judged against this version's fairness."""

    metric: FairnessMetric = Field(description="The fairness measure.")
    sensitive_feature: str = Field(max_length=63, description="The sensitive feature.")
    max: float | None = Field(default=None, description="The gate's largest allowed value.")
    min: float | None = Field(default=None, description="The gate's smallest allowed value.")
    value: float | None = Field(
        default=None,
        json_schema_extra={"nullable": True},
        description="The version's value; null when its run did not record it.",
    )
    passed: bool = Field(description="Whether the value is within the bound.")
    message: str | None = Field(
        default=None, description="The comparison in words, with each group's numbers."
    )
