"""Train a churn classifier and score it beside the version now in production on the same
held-out rows (cairn.training.evaluate), so that automatic promotion compares like with like.

The held-out rows are chosen by a hash of each row, not at random: as the CSV grows, a row never
moves from one side to the other, so the version in production was never trained on the rows
the new version is judged on.

The dataset comes from the run (a CSV on the artifacts claim, data.py makes it); run locally it
reads churn.csv in the current directory.
"""

import zlib
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score

from cairn import training

HELD_OUT = 3  # of every 10 rows, by their hash


def f1_macro(truth: object, predicted: object) -> float:
    return float(f1_score(truth, predicted, average="macro"))


def held_out(X: np.ndarray) -> np.ndarray:
    return np.array([zlib.crc32(row.tobytes()) % 10 < HELD_OUT for row in X])


def main() -> None:
    local = Path("churn.csv").absolute().as_uri()  # file:///.../churn.csv
    data = training.load_dataset(training.dataset_uri(default=local))
    test = held_out(data.X)
    X_train, y_train, X_test, y_test = data.X[~test], data.y[~test], data.X[test], data.y[test]
    model = RandomForestClassifier(
        n_estimators=training.param("n_estimators", 200), random_state=0
    ).fit(X_train, y_train)
    # Both models on the same rows: what the Model's promotion policy (f1_macro) compares.
    scores = training.evaluate(
        model, X_test, y_test, {"f1_macro": f1_macro, "accuracy": accuracy_score}
    )
    print(f"trained on {len(y_train)} rows: {scores}")
    training.save_model(model, training_data=X_train)


if __name__ == "__main__":
    main()
