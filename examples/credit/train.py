"""Train a credit-approval classifier and measure its group fairness for the sensitive feature
`sex` on the held-out rows (cairn.training.evaluate with sensitive_features, which uses fairlearn).

Two ways to train, chosen by the run's parameter `mitigation`:

- `none`: a logistic regression on every feature but `sex`. Leaving the sensitive column out is
  not enough: income and years employed carry it, and the past decisions it learns from were
  biased, so it approves fewer women (it fails the Model's fairness gate).
- `reductions`: fairlearn's GridSearch with a DemographicParity constraint trains logistic
  regressions on reweighted rows; the most accurate one whose demographic parity difference on a
  validation split stays within `max_dpd` is kept. It is a plain scikit-learn model that needs no
  sensitive feature to predict, so the model server serves it like any other.

The dataset comes from the run (a CSV on the artifacts claim, data.py makes it); run locally it
reads ./credit.csv.
"""

from pathlib import Path

import numpy as np
from fairlearn.metrics import demographic_parity_difference
from fairlearn.reductions import DemographicParity, GridSearch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cairn import training

SENSITIVE = "sex"
GROUPS = {0.0: "male", 1.0: "female"}


def logistic_regression() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def split(data: training.Dataset) -> tuple[np.ndarray, ...]:
    """Train and test rows (the same for every run of this code), the features without `sex`,
    and the group of each row."""
    column = data.feature_names.index(SENSITIVE)
    groups = np.asarray([GROUPS[value] for value in data.X[:, column]])
    features = np.delete(data.X, column, axis=1)
    parts: list[np.ndarray] = train_test_split(
        features, data.y, groups, test_size=0.3, random_state=0, stratify=data.y
    )
    return tuple(parts)


def mitigated(X: np.ndarray, y: np.ndarray, groups: np.ndarray, max_dpd: float) -> object:
    """The most accurate of fairlearn's reweighted models whose demographic parity difference on
    a validation split is at most max_dpd."""
    X_fit, X_val, y_fit, y_val, g_fit, g_val = train_test_split(
        X, y, groups, test_size=0.25, random_state=0, stratify=y
    )
    sweep = GridSearch(
        logistic_regression(),
        constraints=DemographicParity(),
        grid_size=41,
        sample_weight_name="logisticregression__sample_weight",
    )
    sweep.fit(X_fit, y_fit, sensitive_features=g_fit)
    candidates = []
    for model in sweep.predictors_:
        predicted = model.predict(X_val)
        dpd = demographic_parity_difference(y_val, predicted, sensitive_features=g_val)
        if dpd <= max_dpd:
            candidates.append((accuracy_score(y_val, predicted), model))
    if not candidates:
        raise SystemExit(f"no model of the grid keeps demographic parity within {max_dpd}")
    return max(candidates, key=lambda found: found[0])[1]


def main() -> None:
    local = f"file://{Path('credit.csv').absolute()}"
    data = training.load_dataset(training.dataset_uri(default=local))
    X_train, X_test, y_train, y_test, g_train, g_test = split(data)
    how = training.param("mitigation", "none")
    if how == "none":
        model = logistic_regression().fit(X_train, y_train)
    elif how == "reductions":
        model = mitigated(X_train, y_train, g_train, training.param("max_dpd", 0.05))
    else:
        raise SystemExit(f"mitigation={how!r}: use none or reductions")
    scores = training.evaluate(
        model,
        X_test,
        y_test,
        {"accuracy": accuracy_score, "f1": f1_score},
        sensitive_features={SENSITIVE: g_test},
    )
    print(f"mitigation={how}: {scores}; fairness: {training.default_session.fairness}")
    training.save_model(model, sample_input=X_test[:1])


if __name__ == "__main__":
    main()
