"""Fairness gates of a Model's policy, judged against the group fairness a version's training run
recorded (pure). A failing gate says which groups and numbers; a gate whose sensitive feature was
never measured says which SDK call measures it."""

from collections.abc import Sequence

from cairn.api.fairness import (
    FairnessGate,
    FairnessGateResult,
    FairnessMetric,
    FeatureFairness,
    GroupMetrics,
)

# The per-group numbers that explain each measure.
EXPLAINED_BY: dict[FairnessMetric, tuple[tuple[str, str], ...]] = {
    FairnessMetric.DEMOGRAPHIC_PARITY_DIFFERENCE: (("selection rate", "selection_rate"),),
    FairnessMetric.DISPARATE_IMPACT_RATIO: (("selection rate", "selection_rate"),),
    FairnessMetric.EQUALIZED_ODDS_DIFFERENCE: (
        ("true positive rate", "true_positive_rate"),
        ("false positive rate", "false_positive_rate"),
    ),
    FairnessMetric.EQUAL_OPPORTUNITY_DIFFERENCE: (("true positive rate", "true_positive_rate"),),
    FairnessMetric.ACCURACY_DIFFERENCE: (("accuracy", "accuracy"),),
}


def how_to_record(feature: str) -> str:
    return (
        f"call training.log_fairness(y_test, model.predict(X_test), {{'{feature}': ...}}) (or "
        f"training.evaluate(..., sensitive_features={{'{feature}': ...}})) in the training code, "
        "with the sensitive feature's value on each evaluation row, and train a new version"
    )


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def groups_text(metric: FairnessMetric, groups: Sequence[GroupMetrics]) -> str:
    """Each group's numbers behind `metric`: 'selection rate female 0.41 (n=612), male 0.57
    (n=588)'."""
    parts = []
    for label, field in EXPLAINED_BY[metric]:
        values = ", ".join(f"{g.group} {_number(getattr(g, field))} (n={g.count})" for g in groups)
        parts.append(f"{label} {values}")
    return "; ".join(parts)


def judge(gate: FairnessGate, fairness: Sequence[FeatureFairness]) -> FairnessGateResult:
    result = FairnessGateResult(
        metric=gate.metric,
        sensitive_feature=gate.sensitive_feature,
        max=gate.max,
        min=gate.min,
        value=None,
        passed=False,
    )
    measured = next((f for f in fairness if f.sensitive_feature == gate.sensitive_feature), None)
    if measured is None:
        recorded = ", ".join(f.sensitive_feature for f in fairness)
        said = f"recorded only: {recorded}" if recorded else "it recorded no fairness"
        message = (
            f"{gate.metric} for {gate.sensitive_feature}: the training run did not measure "
            f"fairness for sensitive feature {gate.sensitive_feature} ({said}); "
            + how_to_record(gate.sensitive_feature)
        )
        return result.model_copy(update={"message": message})
    value = measured.value(gate.metric)
    name = f"{gate.metric} for {gate.sensitive_feature}"
    if value is None:
        explained = groups_text(gate.metric, measured.groups)
        message = f"{name} is undefined on the evaluation data ({explained})"
        return result.model_copy(update={"message": message})
    passed = value <= gate.max if gate.max is not None else value >= (gate.min or 0.0)
    if passed:
        message = f"{name} = {value:.4g} passes {gate.bound()}"
    else:
        above = f"above max {gate.max:g}" if gate.max is not None else f"below min {gate.min:g}"
        message = f"{name} = {value:.4g}, {above}: {groups_text(gate.metric, measured.groups)}"
    return result.model_copy(update={"value": value, "passed": passed, "message": message})


def judge_all(
    gates: Sequence[FairnessGate], fairness: Sequence[FeatureFairness]
) -> tuple[bool, list[FairnessGateResult]]:
    results = [judge(gate, fairness) for gate in gates]
    return all(result.passed for result in results), results
