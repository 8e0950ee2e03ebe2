"""The iris example run as a training pod runs it: a subprocess with the trainer contract's env."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

import cairn
from cairn.storage import verify_digest
from cairn.training import TERMINATION_MESSAGE_LIMIT, load_model
from cairn.training.datasets import load_dataset
from cairn.training.env import KUBERNETES_TERMINATION_LOG

TRAIN_PY = Path(__file__).parents[2] / "examples" / "iris" / "train.py"
OUTPUT_URI = "pvc://cairn-artifacts/iris/iris-1"


def _run(script: Path, cwd: Path, **contract: str) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("CAIRN_")}
    # The child imports the same cairn package as this test.
    environ["PYTHONPATH"] = str(Path(cairn.__file__).parents[1])
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**environ, **contract},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_iris_example_trains_saves_and_reports(tmp_path: Path) -> None:
    output, log = tmp_path / "output", tmp_path / "termination-log"
    params = {"n_estimators": "50", "max_depth": 4, "test_size": 0.3, "random_state": 1}

    result = _run(
        TRAIN_PY,
        tmp_path,
        CAIRN_RUN="iris-1",
        CAIRN_MODEL="iris",
        CAIRN_PARAMS=json.dumps(params),
        CAIRN_DATASET_URI="sklearn://iris",
        CAIRN_OUTPUT_DIR=str(output),
        CAIRN_OUTPUT_URI=OUTPUT_URI,
        CAIRN_TERMINATION_LOG=str(log),
    )
    assert result.returncode == 0, result.stderr

    message = log.read_bytes()
    assert len(message) <= TERMINATION_MESSAGE_LIMIT
    summary = json.loads(message)
    assert set(summary) == {"metrics", "artifact", "dataset"}
    assert set(summary["metrics"]) == {"accuracy", "f1_macro"}
    assert summary["metrics"]["accuracy"] >= 0.9
    iris = load_dataset("sklearn://iris")
    assert summary["dataset"] == {
        "uri": "sklearn://iris",
        "digest": iris.digest,
        "rows": 150,
        "featureCount": 4,
        "features": list(iris.feature_names),
    }
    artifact = summary["artifact"]
    assert (artifact["uri"], artifact["format"]) == (OUTPUT_URI, "sklearn-joblib")
    assert verify_digest(output, artifact["digest"]).size == artifact["size"]

    loaded = load_model(output, expected_digest=artifact["digest"])
    assert (loaded.estimator.n_estimators, loaded.estimator.max_depth) == (50, 4)
    assert (loaded.metadata.run, loaded.metadata.model) == ("iris-1", "iris")
    assert loaded.metadata.metrics == summary["metrics"]
    # The loaded forest is the trained one: it scores the same held-out rows identically.
    _, X_test, _, y_test = train_test_split(
        iris.X, iris.y, test_size=0.3, random_state=1, stratify=iris.y
    )
    assert (
        accuracy_score(y_test, loaded.estimator.predict(X_test)) == summary["metrics"]["accuracy"]
    )


def test_a_failed_run_leaves_no_termination_message(tmp_path: Path) -> None:
    script, log = tmp_path / "fail.py", tmp_path / "termination-log"
    script.write_text(
        "from cairn import training\n"
        "training.log_metric('accuracy', 0.5)\n"
        "raise RuntimeError('the data is wrong')\n"
    )

    result = _run(script, tmp_path, CAIRN_TERMINATION_LOG=str(log))

    assert result.returncode == 1
    assert "RuntimeError: the data is wrong" in result.stderr
    # Empty, Kubernetes' FallbackToLogsOnError would report the log's tail instead.
    assert not log.exists()


@pytest.mark.skipif(KUBERNETES_TERMINATION_LOG.exists(), reason="running inside a pod")
def test_outside_kubernetes_the_example_saves_locally_and_prints_the_summary(
    tmp_path: Path,
) -> None:
    result = _run(TRAIN_PY, tmp_path)

    assert result.returncode == 0, result.stderr
    assert load_model(tmp_path / "cairn-output").metadata.metrics.keys() == {"accuracy", "f1_macro"}
    note = "cairn: not in a Kubernetes pod (no /dev/termination-log, CAIRN_TERMINATION_LOG unset)"
    assert note in result.stderr
    summary = json.loads(result.stderr.split("run summary: ", 1)[1])
    assert summary["artifact"]["uri"] == f"file://{(tmp_path / 'cairn-output').resolve()}"
