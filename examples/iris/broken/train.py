"""A model that passes its gate and still fails in production: the bad version of `make demo-bad`.

It trains a logistic regression on iris honestly and measures it on the held-out rows
(accuracy about 0.97, well above the Model's gate of 0.9). Then a deliberate bug, of the kind a
hand-written export step makes, cuts the last label off the model's `classes_` before it is saved:
the saved model still computes three scores, but can name only two classes. Whenever the best
score is the third class (virginica), scikit-learn indexes past the end of `classes_`, which
cairn-serve answers with a 500 Internal Server Error.

The metrics were computed before the bug, so the registry sees a good model: offline metrics
do not catch it. The canary does: its error rate goes far above the analysis limit within an
interval or two, and the rollout is rolled back while the stable version keeps serving.
Do not copy this script; copy examples/iris/train.py.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
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
    model = LogisticRegression(max_iter=training.param("max_iter", 500)).fit(X_train, y_train)

    # Measured now, on the correct model: these are the numbers the gate will judge.
    predicted = model.predict(X_test)
    training.log_metrics(
        {
            "accuracy": accuracy_score(y_test, predicted),
            "f1_macro": f1_score(y_test, predicted, average="macro"),
        }
    )

    # THE BUG (deliberate): the labels lose their last class on the way out. predict() still
    # works for setosa and versicolor rows; for a virginica row it raises IndexError.
    model.classes_ = np.asarray(model.classes_[:-1])

    # save_model infers the signature from the first row of the dataset, a setosa: it succeeds.
    saved = training.save_model(model)
    print(f"saved the model to {saved.path} ({saved.digest})")


if __name__ == "__main__":
    main()
