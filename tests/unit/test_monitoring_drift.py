"""Profiles of training data and the drift tests on windows of production data: real data sets
(wine, breast cancer, diabetes), shifted and not, and a DataFrame with text and missing values."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

from cairn.api.monitoring import DriftTest
from cairn.monitoring import drift, profile


def window(reference: profile.Profile, rows: np.ndarray) -> list[profile.Histogram]:
    """The counts a model server would keep for these rows, in the reference's bins."""
    found = []
    for index, (_, histogram) in enumerate(reference.features):
        counts, missing = histogram.count(rows[:, index])
        found.append(histogram.with_counts(counts, missing))
    return found


def test_a_numeric_profile_has_decile_bins_of_the_training_data() -> None:
    X, _ = load_breast_cancer(return_X_y=True)
    names = [f"f{i}" for i in range(X.shape[1])]
    made = profile.build(X, names)
    assert made.rows == len(X) and made.names == names
    for name, histogram in made.features:
        assert histogram.kind == "numeric" and len(histogram.edges) <= profile.BINS - 1
        assert sum(histogram.counts) == len(X) and histogram.missing == 0
        # Deciles: no bin holds much more than a tenth (ties can push a few rows over).
        assert max(histogram.counts) <= 0.2 * len(X), name
    # What a server counts for the same rows is exactly the profile.
    assert [h.counts for h in window(made, X)] == [h.counts for _, h in made.features]


def test_a_profile_survives_its_json_and_refuses_a_damaged_one() -> None:
    X, y = load_wine(return_X_y=True)
    made = profile.build(X, [f"f{i}" for i in range(13)], predictions=y, classes=[0, 1, 2])
    assert profile.Profile.from_json(made.to_json()) == made
    assert made.prediction is not None and made.prediction.values == ("0", "1", "2")
    with pytest.raises(profile.ProfileError, match="schemaVersion"):
        profile.Profile.from_json('{"rows": 3}')
    broken = made.to_json().replace('"counts": [', '"counts": [1, ', 1)
    with pytest.raises(profile.ProfileError, match="counts for"):
        profile.Profile.from_json(broken)


def test_text_booleans_and_missing_values_are_categories() -> None:
    frame = pd.DataFrame(
        {
            "plan": ["basic", "pro", "basic", None, "team", "basic"],
            "tenure": [1.0, 2.5, np.nan, 4.0, 5.0, 6.0],
            "paperless": [True, False, True, True, False, True],
        }
    )
    made = profile.build(frame, ["plan", "tenure", "paperless"])
    plan, tenure, paperless = (h for _, h in made.features)
    assert plan.kind == "categorical" and plan.values[0] == "basic"
    assert plan.counts[0] == 3 and plan.missing == 1
    assert tenure.kind == "numeric" and tenure.missing == 1 and sum(tenure.counts) == 5
    assert paperless.kind == "categorical" and set(paperless.values) == {"True", "False"}
    counts, missing = plan.count(np.asarray(["enterprise", "pro", None], dtype=object))
    assert counts[-1] == 1 and missing == 1  # an unseen value goes to the last bin


def test_a_regressor_s_predictions_get_numeric_bins() -> None:
    X, y = load_diabetes(return_X_y=True)
    made = profile.build(X, [f"f{i}" for i in range(10)], predictions=y)
    assert made.prediction is not None and made.prediction.kind == "numeric"
    assert sum(made.prediction.counts) == len(y)


def test_the_statistics_themselves() -> None:
    assert drift.psi([50, 50], [90, 10]) == pytest.approx(0.4 * math.log(1.8) - 0.4 * math.log(0.2))
    assert drift.psi([10, 20, 30], [10, 20, 30]) == 0
    assert drift.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert drift.jensen_shannon([3, 1], [6, 2]) == pytest.approx(0.0)
    statistic, p = drift.chi_squared([100, 100], [100, 100])
    assert statistic == 0 and p == 1
    statistic, p = drift.chi_squared([100, 100], [150, 50])
    assert statistic > 10 and p < 0.001
    assert drift.chi_squared([0, 0], [5, 5]) == (0.0, 1.0)  # nothing to compare with


def test_wine_with_half_its_features_scaled_drifts_and_names_them() -> None:
    X, _ = load_wine(return_X_y=True)
    train, held_out = train_test_split(X, test_size=0.4, random_state=0)
    names = [f"f{i}" for i in range(13)]
    baseline = profile.build(train, names)

    same = drift.judge(baseline.features, window(baseline, held_out))
    assert not same.dataset_drifted and same.drifted == []

    shifted = held_out.copy()
    scaled = list(range(0, 13, 2))  # 7 of the 13
    shifted[:, scaled] *= 1.5
    report = drift.judge(baseline.features, window(baseline, shifted))
    assert report.dataset_drifted
    assert {v.name for v in report.drifted} == {names[i] for i in scaled}
    assert all(v.test == DriftTest.CHI_SQUARED for v in report.features)  # a small window
    assert all(v.threshold == pytest.approx(0.05 / 13) for v in report.features)


def test_windows_from_the_training_distribution_raise_no_alarm() -> None:
    rng = np.random.default_rng(7)
    names = [f"f{i}" for i in range(8)]
    baseline = profile.build(rng.normal(size=(20_000, 8)), names)
    alarms = features_flagged = 0
    for _ in range(100):
        report = drift.judge(baseline.features, window(baseline, rng.normal(size=(300, 8))))
        alarms += report.dataset_drifted
        features_flagged += bool(report.drifted)
    assert alarms == 0
    assert features_flagged <= 10  # Bonferroni: about 5 windows in 100 flag any feature


def test_large_windows_use_distances() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=5000),
            "plan": rng.choice(["a", "b", "c"], size=5000, p=[0.6, 0.3, 0.1]),
        }
    )
    baseline = profile.build(frame, ["x", "plan"])
    x, plan = (h for _, h in baseline.features)
    moved_x = x.with_counts(*x.count(rng.normal(loc=1.0, size=3000)))
    moved_plan = plan.with_counts(
        *plan.count(rng.choice(["a", "b", "c"], size=3000, p=[0.1, 0.3, 0.6]))
    )
    report = drift.judge(baseline.features, [moved_x, moved_plan])
    by_name = {v.name: v for v in report.features}
    assert by_name["x"].test == DriftTest.PSI and by_name["x"].statistic > 0.2
    assert by_name["plan"].test == DriftTest.JENSEN_SHANNON and by_name["plan"].statistic > 0.1
    assert report.dataset_drifted

    steady_x = x.with_counts(*x.count(rng.normal(size=3000)))
    steady_plan = plan.with_counts(
        *plan.count(rng.choice(["a", "b", "c"], size=3000, p=[0.6, 0.3, 0.1]))
    )
    steady = drift.judge(baseline.features, [steady_x, steady_plan])
    assert not steady.drifted


def test_a_chosen_test_and_threshold_apply_to_every_feature() -> None:
    X, _ = load_wine(return_X_y=True)
    baseline = profile.build(X, [f"f{i}" for i in range(13)])
    report = drift.judge(
        baseline.features, window(baseline, X[:50] * 1.2), test=DriftTest.PSI, threshold=0.5
    )
    assert {v.test for v in report.features} == {DriftTest.PSI}
    assert {v.threshold for v in report.features} == {0.5}
