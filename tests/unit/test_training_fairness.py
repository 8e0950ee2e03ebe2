"""The trainer SDK's group fairness: fairlearn's numbers for each named sensitive feature, recorded
in the run summary the operator reads, with errors that say what to pass instead."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (  # type: ignore[import-untyped]
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
)
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import accuracy_score  # type: ignore[import-untyped]

from cairn.api.fairness import FeatureFairness
from cairn.training import FairnessError, TrainingSession, encode_summary
from cairn.training.fairness import measure

RNG = np.random.default_rng(7)
ROWS = 400
SEX = RNG.choice(["female", "male"], size=ROWS)
AGE_BAND = RNG.choice(["18-30", "31-50", "51+"], size=ROWS)
TRUTH = RNG.integers(0, 2, size=ROWS)
# Predictions that favour one group: men are selected more often.
PREDICTED = np.where(SEX == "male", RNG.random(ROWS) < 0.7, RNG.random(ROWS) < 0.4).astype(int)


def test_the_numbers_are_fairlearns_own() -> None:
    (sex,) = measure(TRUTH, PREDICTED, {"sex": SEX})

    by = {"sensitive_features": SEX}
    assert sex.sensitive_feature == "sex"
    assert sex.positive_label == "1"
    assert sex.demographic_parity_difference == demographic_parity_difference(
        TRUTH, PREDICTED, **by
    )
    assert sex.disparate_impact_ratio == demographic_parity_ratio(TRUTH, PREDICTED, **by)
    assert sex.equalized_odds_difference == equalized_odds_difference(TRUTH, PREDICTED, **by)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "accuracy": accuracy_score},
        y_true=TRUTH,
        y_pred=PREDICTED,
        **by,
    )
    groups = {g.group: g for g in sex.groups}
    assert set(groups) == {"female", "male"}
    for name in groups:
        assert groups[name].count == list(SEX).count(name)
        assert groups[name].selection_rate == frame.by_group.loc[name, "selection_rate"]
        assert groups[name].accuracy == frame.by_group.loc[name, "accuracy"]
    assert sex.accuracy_difference == pytest.approx(frame.difference()["accuracy"])
    assert sex.demographic_parity_difference is not None
    assert sex.demographic_parity_difference > 0.2  # the bias built in above is measured


def test_every_named_feature_is_measured_from_a_mapping_or_a_data_frame() -> None:
    from_mapping = measure(TRUTH, PREDICTED, {"sex": SEX, "age_band": AGE_BAND})
    from_frame = measure(TRUTH, PREDICTED, pd.DataFrame({"sex": SEX, "age_band": AGE_BAND}))
    from_series = measure(TRUTH, PREDICTED, pd.Series(SEX, name="sex"))

    assert [f.sensitive_feature for f in from_mapping] == ["sex", "age_band"]
    assert from_frame == from_mapping
    assert from_series == from_mapping[:1]
    assert {g.group for g in from_mapping[1].groups} == {"18-30", "31-50", "51+"}


def test_string_labels_need_the_favourable_one_named() -> None:
    truth = np.where(TRUTH == 1, "approved", "denied")
    predicted = np.where(PREDICTED == 1, "approved", "denied")

    with pytest.raises(FairnessError, match="pass positive_label="):
        measure(truth, predicted, {"sex": SEX})
    (named,) = measure(truth, predicted, {"sex": SEX}, positive_label="approved")
    (numeric,) = measure(TRUTH, PREDICTED, {"sex": SEX})
    assert named.positive_label == "approved"
    assert named.demographic_parity_difference == numeric.demographic_parity_difference


BAD_INPUT = {
    "an unnamed array": ([SEX], "must name each feature"),
    "values for other rows": ({"sex": SEX[:-1]}, "has 399 values for 400 rows"),
    "too many groups": ({"income": np.arange(ROWS)}, "bin it"),
    "a name that is not a feature name": ({"sex of applicant": SEX}, "must be a feature name"),
    "no feature at all": ({}, "name between 1 and 8 sensitive features"),
}


@pytest.mark.parametrize(("features", "said"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_sensitive_features_are_refused_saying_what_to_pass(features: Any, said: str) -> None:
    with pytest.raises(FairnessError, match=said):
        measure(TRUTH, PREDICTED, features)


def test_a_positive_label_that_never_occurs_is_refused() -> None:
    with pytest.raises(FairnessError, match="positive_label=2 is not among the labels"):
        measure(TRUTH, PREDICTED, {"sex": SEX}, positive_label=2)


def test_log_fairness_records_it_in_the_run_summary(tmp_path: Path) -> None:
    session = TrainingSession(
        {"CAIRN_TERMINATION_LOG": str(tmp_path / "log")}, finish_at_exit=False
    )

    session.log_fairness(TRUTH, PREDICTED, {"sex": SEX})
    session.log_fairness(TRUTH, 1 - PREDICTED, {"sex": SEX, "age_band": AGE_BAND})

    recorded = session.finish()
    fairness = [FeatureFairness.model_validate(f) for f in recorded["fairness"]]
    # Logging a feature again replaces it.
    assert [f.sensitive_feature for f in fairness] == ["sex", "age_band"]
    assert fairness == measure(TRUTH, 1 - PREDICTED, {"sex": SEX, "age_band": AGE_BAND})
    assert json.loads((tmp_path / "log").read_bytes()) == recorded


def test_evaluate_measures_fairness_on_the_rows_it_scores() -> None:
    X = np.column_stack([RNG.normal(size=ROWS), (SEX == "male").astype(float)])
    model = LogisticRegression().fit(X, PREDICTED)
    session = TrainingSession({}, finish_at_exit=False)

    session.evaluate(model, X, TRUTH, {"accuracy": accuracy_score}, sensitive_features={"sex": SEX})

    assert session.fairness == [f.to_dict() for f in measure(TRUTH, model.predict(X), {"sex": SEX})]


def test_fairness_that_cannot_fit_the_termination_message_is_refused_at_once() -> None:
    session = TrainingSession({}, finish_at_exit=False)
    groups = np.asarray([f"group-number-{i % 30:02d}-with-a-long-name" for i in range(ROWS)])
    features = {f"feature_{n}": groups for n in range(4)}

    with pytest.raises(FairnessError, match="does not fit in the run summary"):
        session.log_fairness(TRUTH, PREDICTED, features)
    assert session.fairness == []


def test_feature_names_give_way_before_any_metric() -> None:
    dataset = {"uri": "sklearn://x", "rows": 10, "featureCount": 400}
    names = [f"a_rather_long_feature_name_{i}" for i in range(150)]

    kept = json.loads(encode_summary({"accuracy": 0.9}, None, {**dataset, "features": names}))

    assert kept == {"metrics": {"accuracy": 0.9}, "dataset": dataset}
