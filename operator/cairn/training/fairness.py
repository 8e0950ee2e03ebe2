"""Group fairness of a classifier's predictions, measured with fairlearn for each sensitive
feature the training code names: per-group metrics (fairlearn's MetricFrame) and fairlearn's
demographic parity difference and ratio (the disparate impact ratio), equalized odds and equal
opportunity differences. The numbers are fairlearn's own, so anyone can compute them again.
"""

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import ValidationError

from cairn.api.fairness import FAIRNESS_FEATURES_MAX, GROUPS_MAX, FeatureFairness, GroupMetrics

# A binary outcome's favourable label, when the training code does not name it.
DEFAULT_POSITIVE = (1, True)


class FairnessError(ValueError):
    """Sensitive features or labels that fairness cannot be measured on."""


def named_features(sensitive_features: Any) -> dict[str, NDArray[Any]]:
    """{name: values} from a mapping, a pandas DataFrame (its columns) or a named Series."""
    if hasattr(sensitive_features, "columns"):  # a DataFrame
        return {str(c): np.asarray(sensitive_features[c]) for c in sensitive_features.columns}
    if isinstance(sensitive_features, Mapping):
        return {str(name): np.asarray(values) for name, values in sensitive_features.items()}
    name = getattr(sensitive_features, "name", None)
    if name is not None and hasattr(sensitive_features, "index"):  # a named Series
        return {str(name): np.asarray(sensitive_features)}
    raise FairnessError(
        "sensitive_features must name each feature: a mapping such as {'sex': sex_of_test_rows}, "
        "a pandas DataFrame, or a pandas Series with a name"
    )


def positive_label_of(y_true: NDArray[Any], y_pred: NDArray[Any], given: Any) -> Any:
    """The label counted as selected: `given`, else 1 (or True) for 0/1 labels."""
    labels = set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist())
    if given is not None:
        if given not in labels:
            raise FairnessError(
                f"positive_label={given!r} is not among the labels {sorted(map(str, labels))}"
            )
        return given
    if labels <= {0, 1}:
        return 1
    raise FairnessError(
        f"the labels are {sorted(map(str, labels))[:10]}: pass positive_label=..., the label "
        "that is the favourable outcome (for example the approved class)"
    )


def _number(value: Any) -> float | None:
    """fairlearn's value as a float; None for NaN (a ratio of two zero selection rates)."""
    number = float(value)
    return number if math.isfinite(number) else None


def measure_feature(
    name: str, y_true: NDArray[Any], y_pred: NDArray[Any], groups: NDArray[Any], positive: Any
) -> FeatureFairness:
    # Imported here: fairlearn (and pandas) load only in runs that measure fairness.
    from fairlearn.metrics import (  # type: ignore[import-untyped]
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equal_opportunity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score  # type: ignore[import-untyped]

    if len(groups) != len(y_true):
        raise FairnessError(
            f"sensitive feature {name!r} has {len(groups)} values for {len(y_true)} rows: give "
            "it for exactly the evaluated rows"
        )
    groups = np.asarray([str(value) for value in groups.tolist()])
    found = np.unique(groups)
    if len(found) > GROUPS_MAX:
        raise FairnessError(
            f"sensitive feature {name!r} has {len(found)} groups, more than {GROUPS_MAX}: bin it "
            "(for example age into age bands)"
        )
    truth = (y_true == positive).astype(int)
    predicted = (y_pred == positive).astype(int)
    by = {"sensitive_features": groups}
    with warnings.catch_warnings():
        # A group without positives (or negatives) has a rate of 0 in fairlearn: said in docs.
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics={
                "count": count,
                "selection_rate": selection_rate,
                "accuracy": accuracy_score,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
            },
            y_true=truth,
            y_pred=predicted,
            **by,
        )
        table = frame.by_group
        rows = [
            GroupMetrics(
                group=str(group),
                count=int(table.loc[group, "count"]),
                selection_rate=_number(table.loc[group, "selection_rate"]),
                accuracy=_number(table.loc[group, "accuracy"]),
                true_positive_rate=_number(table.loc[group, "true_positive_rate"]),
                false_positive_rate=_number(table.loc[group, "false_positive_rate"]),
            )
            for group in table.index
        ]
        return FeatureFairness(
            sensitive_feature=name,
            positive_label=str(positive),
            demographic_parity_difference=_number(
                demographic_parity_difference(truth, predicted, **by)
            ),
            disparate_impact_ratio=_number(demographic_parity_ratio(truth, predicted, **by)),
            equalized_odds_difference=_number(equalized_odds_difference(truth, predicted, **by)),
            equal_opportunity_difference=_number(
                equal_opportunity_difference(truth, predicted, **by)
            ),
            accuracy_difference=_number(frame.difference()["accuracy"]),
            groups=rows,
        )


def measure(
    y_true: ArrayLike, y_pred: ArrayLike, sensitive_features: Any, positive_label: Any = None
) -> list[FeatureFairness]:
    """Group fairness of the predictions `y_pred` against `y_true`, for each named sensitive
    feature (its value on each of those rows)."""
    truth, predicted = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if len(truth) != len(predicted) or len(truth) == 0:
        raise FairnessError(
            f"y_true has {len(truth)} rows and y_pred {len(predicted)}: give the labels and "
            "predictions of the same evaluation rows"
        )
    features = named_features(sensitive_features)
    if not features or len(features) > FAIRNESS_FEATURES_MAX:
        raise FairnessError(
            f"name between 1 and {FAIRNESS_FEATURES_MAX} sensitive features (got {len(features)})"
        )
    positive = positive_label_of(truth, predicted, positive_label)
    measured = []
    for name, groups in features.items():
        try:
            measured.append(measure_feature(name, truth, predicted, groups.ravel(), positive))
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise FairnessError(f"sensitive feature {name!r}: {where}: {problem['msg']}") from None
    return measured
