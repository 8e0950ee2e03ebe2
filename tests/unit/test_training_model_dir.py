import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError  # type: ignore[import-untyped]
from sklearn.linear_model import LinearRegression, LogisticRegression  # type: ignore[import-untyped]
from sklearn.svm import SVC  # type: ignore[import-untyped]

from cairn.storage import ArtifactError, DigestMismatch, directory_digest, file_uri
from cairn.training import (
    METADATA_FILE,
    MODEL_FILE,
    SignatureError,
    TrainingSession,
    load_model,
    read_metadata,
)


@pytest.fixture
def output(tmp_path: Path) -> Path:
    return tmp_path / "output"


@pytest.fixture
def session(output: Path) -> TrainingSession:
    environ = {
        "CAIRN_RUN": "iris-1",
        "CAIRN_MODEL": "iris",
        "CAIRN_DATASET_URI": "sklearn://iris",
        "CAIRN_OUTPUT_DIR": str(output),
        "CAIRN_OUTPUT_URI": "pvc://cairn-artifacts/iris/iris-1",
    }
    return TrainingSession(environ, finish_at_exit=False)


def _fitted(session: TrainingSession) -> LogisticRegression:
    data = session.load_dataset()
    return LogisticRegression(max_iter=500).fit(data.X, data.y)


def test_save_writes_the_model_and_its_metadata(session: TrainingSession, output: Path) -> None:
    model = _fitted(session)
    session.log_metric("accuracy", 0.97)

    saved = session.save_model(model)

    # The profile of the dataset the run loaded comes along (what monitoring compares with).
    files = sorted(path.name for path in output.iterdir())
    assert files == ["baseline.json", METADATA_FILE, MODEL_FILE]
    metadata = json.loads((output / METADATA_FILE).read_text())
    assert metadata["format"] == "sklearn-joblib"
    assert metadata["model_file"] == MODEL_FILE
    assert metadata["model_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert set(metadata["frameworks"]) == {"python", "scikit-learn", "numpy", "joblib"}
    shas = saved.manifest.sha256_by_path()
    assert metadata["files"] == {name: shas[name] for name in (MODEL_FILE, "baseline.json")}
    assert metadata["metrics"] == {"accuracy": 0.97}
    assert metadata["dataset"] == {"uri": "sklearn://iris", "digest": session.load_dataset().digest}
    assert (metadata["run"], metadata["model"]) == ("iris-1", "iris")
    assert datetime.fromisoformat(metadata["created"]).tzinfo is not None
    assert metadata["signature"] == {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "FP64",
                "shape": [-1, 4],
                "feature_names": [
                    "sepal length (cm)",
                    "sepal width (cm)",
                    "petal length (cm)",
                    "petal width (cm)",
                ],
            }
        ],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3], "classes": [0, 1, 2]},
        ],
    }
    assert saved.digest == directory_digest(output)


def test_the_summary_records_the_artifact_where_the_operator_said(
    session: TrainingSession, output: Path
) -> None:
    saved = session.save_model(_fitted(session))

    assert json.loads(session.summary())["artifact"] == {
        "uri": "pvc://cairn-artifacts/iris/iris-1",
        "digest": saved.digest,
        "size": saved.manifest.size,
        "format": "sklearn-joblib",
        # The iris the run loaded, profiled with the model's predictions on it.
        "baseline": {"rows": 150, "features": 4, "categorical": 0, "predictions": True},
    }
    elsewhere = session.save_model(_fitted(session), output.parent / "elsewhere")
    assert json.loads(session.summary())["artifact"]["uri"] == file_uri(elsewhere.path)


def test_a_loaded_model_predicts_as_the_saved_one(session: TrainingSession, output: Path) -> None:
    model = _fitted(session)
    saved = session.save_model(model)
    X = session.load_dataset().X

    loaded = load_model(output, expected_digest=saved.digest)

    assert loaded.digest == saved.digest
    assert loaded.metadata == read_metadata(output) == saved.metadata
    np.testing.assert_array_equal(loaded.estimator.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X), model.predict_proba(X))


def test_a_changed_model_file_is_never_loaded(session: TrainingSession, output: Path) -> None:
    saved = session.save_model(_fitted(session))
    with (output / MODEL_FILE).open("ab") as model_file:
        model_file.write(b"\0")

    with pytest.raises(DigestMismatch, match=f"expected {saved.digest}"):
        load_model(output, expected_digest=saved.digest)
    with pytest.raises(DigestMismatch, match=f"{MODEL_FILE} differ from the sha256 recorded"):
        load_model(output)


def test_changed_metadata_or_extra_files_are_caught(session: TrainingSession, output: Path) -> None:
    saved = session.save_model(_fitted(session))
    (output / "notes.txt").write_text("added later")

    with pytest.raises(DigestMismatch, match=r"notes\.txt differ from the sha256 recorded"):
        load_model(output)
    (output / "notes.txt").unlink()
    metadata = json.loads((output / METADATA_FILE).read_text())
    (output / METADATA_FILE).write_text(json.dumps({**metadata, "metrics": {"accuracy": 1.0}}))
    with pytest.raises(DigestMismatch):
        load_model(output, expected_digest=saved.digest)


def test_saving_again_replaces_the_model_and_leftovers(
    session: TrainingSession, output: Path
) -> None:
    session.save_model(_fitted(session))
    (output / "model.joblib.cairn-partial").write_bytes(b"from a killed attempt")

    saved = session.save_model(_fitted(session))

    assert sorted(path.name for path in output.iterdir()) == [
        "baseline.json",
        METADATA_FILE,
        MODEL_FILE,
    ]
    assert load_model(output).digest == saved.digest


def test_signature_from_a_sample_of_another_dtype_and_a_regressor(output: Path) -> None:
    session = TrainingSession({"CAIRN_OUTPUT_DIR": str(output)}, finish_at_exit=False)
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    model = LinearRegression().fit(X, X.sum(axis=1).astype(np.float64))

    signature = session.save_model(model, sample_input=X).metadata.signature

    assert signature == {
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 2]}],
        "outputs": [{"name": "predict", "datatype": "FP32", "shape": [-1]}],
    }


def test_signature_without_sample_comes_from_the_model(output: Path) -> None:
    session = TrainingSession({"CAIRN_OUTPUT_DIR": str(output)}, finish_at_exit=False)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.9]])
    labels = np.array(["cat", "dog", "cat", "dog"])

    signature = session.save_model(SVC().fit(X, labels)).metadata.signature

    # SVC without probability=True has no predict_proba.
    assert signature == {
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 2]}],
        "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]}],
    }


def test_a_given_signature_is_checked(output: Path) -> None:
    session = TrainingSession({"CAIRN_OUTPUT_DIR": str(output)}, finish_at_exit=False)
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    given: dict[str, Any] = {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 1]}],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
    }

    assert session.save_model(model, signature=given).metadata.signature == given
    given["inputs"][0]["datatype"] = "DOUBLE"
    with pytest.raises(SignatureError, match="datatype must be one of BOOL, BYTES, FP16"):
        session.save_model(model, signature=given)
    with pytest.raises(SignatureError, match="must be a 2-D array"):
        session.save_model(model, sample_input=np.array([1.0, 2.0]))


def test_only_fitted_scikit_learn_estimators_are_saved(output: Path) -> None:
    session = TrainingSession({"CAIRN_OUTPUT_DIR": str(output)}, finish_at_exit=False)

    with pytest.raises(NotFittedError):
        session.save_model(LogisticRegression())
    with pytest.raises(TypeError, match="saves scikit-learn estimators"):
        session.save_model({"weights": [1, 2]})


def test_a_directory_without_metadata_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(
        ArtifactError, match=f"not a Cairn model directory: it has no {METADATA_FILE}"
    ):
        load_model(tmp_path)
