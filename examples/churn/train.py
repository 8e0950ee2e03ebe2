"""Train a churn classifier and score it beside the version now in production on the same
held-out rows (cairn.training.evaluate), so that automatic promotion compares like with like.

The dataset comes from the run (a CSV on the artifacts claim, data.py makes it); run locally it
reads churn.csv in the current directory.
"""

from pathlib import Path

from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from cairn import training


def f1_macro(truth: object, predicted: object) -> float:
    return float(f1_score(truth, predicted, average="macro"))


def main() -> None:
    local = Path("churn.csv").absolute().as_uri()  # file:///.../churn.csv
    data = training.load_dataset(training.dataset_uri(default=local))
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.3, random_state=0, stratify=data.y
    )
    model = RandomForestClassifier(
        n_estimators=training.param("n_estimators", 200), random_state=0
    ).fit(X_train, y_train)
    # Both models on the same rows: what the Model's promotion policy (f1_macro) compares.
    scores = training.evaluate(
        model, X_test, y_test, {"f1_macro": f1_macro, "accuracy": accuracy_score}
    )
    print(f"trained on {len(y_train)} rows: {scores}")
    training.save_model(model)


if __name__ == "__main__":
    main()
