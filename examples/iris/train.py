"""Train a random forest on iris: plain scikit-learn plus a few calls to the Cairn trainer SDK.

In a TrainingRun the operator provides the parameters, dataset and output directory through
CAIRN_* variables; run locally (`python examples/iris/train.py`) it uses the defaults below and
saves the model into ./cairn-output.
"""

from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from cairn import training


def main() -> None:
    data = training.load_dataset(training.dataset_uri(default="sklearn://iris"))
    random_state = training.param("random_state", 0)
    X_train, X_test, y_train, y_test = train_test_split(
        data.X,
        data.y,
        test_size=training.param("test_size", 0.25),
        random_state=random_state,
        stratify=data.y,
    )

    model = RandomForestClassifier(
        n_estimators=training.param("n_estimators", 100),
        max_depth=training.param("max_depth", None, int),  # None: grow until the leaves are pure
        random_state=random_state,
    )
    model.fit(X_train, y_train)

    predicted = model.predict(X_test)
    training.log_metrics(
        {
            "accuracy": accuracy_score(y_test, predicted),
            "f1_macro": f1_score(y_test, predicted, average="macro"),
        }
    )
    saved = training.save_model(model)
    print(f"saved the model to {saved.path} ({saved.digest})")
    # The run summary goes to the termination message when the script exits successfully.


if __name__ == "__main__":
    main()
