"""The trainer SDK's side of automatic promotion: the champion the operator mounts is loaded only
once its digest matches, and `evaluate` scores it beside the new model on the same data; the
dataset probe measures what training would read."""

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_wine  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import accuracy_score, f1_score  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from cairn.storage import DigestMismatch
from cairn.training import DatasetError, TrainingSession
from cairn.training import probe as dataset_probe
from cairn.training.datasets import load_dataset
from cairn.training.env import RunEnv

METRICS = {
    "accuracy": accuracy_score,
    "f1_macro": lambda truth, predicted: f1_score(truth, predicted, average="macro"),
}


def split() -> tuple[Any, Any, Any, Any]:
    X, y = load_wine(return_X_y=True)
    parts: tuple[Any, Any, Any, Any] = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    return parts


def saved_champion(tmp_path: Path) -> tuple[object, dict[str, str]]:
    X_train, _, y_train, _ = split()
    champion = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X_train, y_train)
    saver = TrainingSession({}, finish_at_exit=False)
    saved = saver.save_model(champion, tmp_path / "champion")
    environ = {
        "CAIRN_CHAMPION_DIR": str(saved.path),
        "CAIRN_CHAMPION_VERSION": "3",
        "CAIRN_CHAMPION_DIGEST": saved.digest,
        "CAIRN_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }
    return champion, environ


def test_evaluate_scores_the_champion_beside_the_new_model_on_the_same_rows(
    tmp_path: Path,
) -> None:
    champion, environ = saved_champion(tmp_path)
    session = TrainingSession(environ, finish_at_exit=False)
    X_train, X_test, y_train, y_test = split()
    model = LogisticRegression(max_iter=5000).fit(X_train, y_train)

    scores = session.evaluate(model, X_test, y_test, METRICS)

    summary = session.finish()
    assert summary["metrics"] == scores
    assert scores["accuracy"] == pytest.approx(accuracy_score(y_test, model.predict(X_test)))
    evaluation = summary["evaluation"]
    assert evaluation["championVersion"] == 3
    # The champion's numbers are its own, on the very rows the new model was scored on.
    expected = accuracy_score(y_test, champion.predict(X_test))  # type: ignore[attr-defined]
    assert evaluation["championMetrics"]["accuracy"] == pytest.approx(expected)
    assert json.loads((tmp_path / "termination-log").read_text())["evaluation"] == evaluation


def test_a_champion_whose_files_changed_is_never_loaded(tmp_path: Path) -> None:
    _, environ = saved_champion(tmp_path)
    (Path(environ["CAIRN_CHAMPION_DIR"]) / "extra.txt").write_text("tampered")
    with pytest.raises(DigestMismatch):
        TrainingSession(environ, finish_at_exit=False).champion()


def test_without_a_champion_only_the_model_is_scored(tmp_path: Path) -> None:
    session = TrainingSession({}, finish_at_exit=False)
    X_train, X_test, y_train, y_test = split()
    model = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    assert session.champion() is None
    session.evaluate(model, X_test, y_test, METRICS)
    assert "evaluation" not in session.finish()
    with pytest.raises(LookupError, match="no champion"):
        session.log_champion_metrics({"accuracy": 0.5})


def test_the_probe_measures_the_digest_training_records(tmp_path: Path) -> None:
    data = tmp_path / "wine.csv"
    data.write_text("alcohol,ash,target\n13.2,2.1,0\n12.4,2.3,1\n13.9,2.6,2\n")
    log = tmp_path / "termination-log"
    environ = {
        "CAIRN_DATASET_URI": "pvc://datasets/wine.csv",
        "CAIRN_DATASET_PATH": str(data),
        "CAIRN_TERMINATION_LOG": str(log),
    }
    measured = dataset_probe.measure(RunEnv.from_environ(environ))
    assert measured == {"digest": load_dataset(f"file://{data}").digest, "rows": 3}

    environ["CAIRN_DATASET_PATH"] = str(tmp_path / "missing.csv")
    monkeypatched = RunEnv.from_environ(environ)
    with pytest.raises(DatasetError, match="cannot read dataset"):
        dataset_probe.measure(monkeypatched)
