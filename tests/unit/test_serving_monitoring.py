"""What the model server keeps for monitoring, over real sockets: the baseline save_model writes,
inputs and predictions counted into its bins (REST and gRPC), feedback scored against the
answers, and the prediction log."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.grpc as triton_grpc  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_diabetes, load_wine  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import Ridge  # type: ignore[import-untyped]
from sklearn.metrics import accuracy_score  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

from cairn import training
from cairn.monitoring.profile import FILE, Profile, build
from tests.support.servers import Server
from tests.support.wait import wait_for

WINE = load_wine()
X_TRAIN, X_TEST, Y_TRAIN, Y_TEST = train_test_split(
    WINE.data, WINE.target, test_size=0.3, random_state=0
)
NAMES = [str(name) for name in WINE.feature_names]


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback never goes to a proxy
    return session


def infer(server: Server, rows: np.ndarray, **extra: Any) -> requests.Response:
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64"}
    body = {"inputs": [tensor | {"data": rows.tolist()}], **extra}
    response = http().post(f"{server.url}/v2/models/iris/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response


def monitoring(server: Server) -> dict[str, Any]:
    response = http().get(f"{server.url}/v2/models/iris/monitoring", timeout=10)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def feedback(server: Server, items: Any) -> requests.Response:
    return http().post(f"{server.url}/v2/models/iris/feedback", json=items, timeout=10)


def metric(server: Server, name: str, **labels: str) -> float:
    text = http().get(f"{server.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    raise AssertionError(f"{name} {labels} not in /metrics")


@pytest.fixture(scope="module")
def wine_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(X_TRAIN, Y_TRAIN)
    path = tmp_path_factory.mktemp("wine") / "model"
    signature = training.infer_signature(model, X_TRAIN[:1], NAMES)
    training.save_model(model, path=path, signature=signature, training_data=X_TRAIN)
    return path, model


@pytest.fixture(scope="module")
def wine(wine_model: tuple[Path, Any]) -> Iterator[tuple[Server, Any]]:
    path, model = wine_model
    server = Server(path)
    yield server, model
    server.stop()


def test_save_model_writes_the_training_data_s_profile_under_the_digest(
    wine_model: tuple[Path, Any],
) -> None:
    path, model = wine_model
    baseline = Profile.from_json((path / FILE).read_text())
    assert baseline.rows == len(X_TRAIN) and baseline.names == NAMES
    assert baseline.prediction is not None
    assert list(baseline.prediction.counts[:3]) == np.bincount(model.predict(X_TRAIN)).tolist()
    saved = training.load_model(path)
    assert FILE in saved.metadata.files  # verified with the model: a changed profile is refused


def test_a_data_frame_and_a_regressor_are_profiled_too(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X["smoker"] = np.where(X["bmi"] > 0, "yes", "no")
    model = Ridge().fit(X.drop(columns="smoker"), y)
    # The model's input is the numeric columns; the profile is of exactly those.
    inputs = X.drop(columns="smoker")
    training.save_model(model, path=tmp_path / "m", training_data=inputs)
    baseline = Profile.from_json((tmp_path / "m" / FILE).read_text())
    assert baseline.names == list(inputs.columns)
    assert baseline.prediction is not None and baseline.prediction.kind == "numeric"
    frame = pd.DataFrame({"plan": ["a", "b", "a", None], "x": [1.0, 2.0, 3.0, 4.0]})
    mixed = build(frame, ["plan", "x"])
    assert mixed.features[0][1].kind == "categorical" and mixed.features[0][1].missing == 1


def test_inputs_and_predictions_are_counted_into_the_baseline_s_bins(
    wine: tuple[Server, Any],
) -> None:
    server, model = wine
    before = monitoring(server)
    baseline = Profile.from_dict(before["baseline"])
    infer(server, X_TEST[:30])
    grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    tensor = triton_grpc.InferInput("input-0", [len(X_TEST) - 30, 13], "FP64")
    tensor.set_data_from_numpy(X_TEST[30:])
    grpc.infer("iris", [tensor])
    grpc.close()
    after = monitoring(server)
    assert after["instance"] == before["instance"]  # the same counters, grown
    assert after["rows"] - before["rows"] == len(X_TEST)
    for index, (name, histogram) in enumerate(baseline.features):
        counts, _ = histogram.count(X_TEST[:, index])
        grown = np.subtract(after["features"][index]["counts"], before["features"][index]["counts"])
        assert after["features"][index]["name"] == name
        assert grown.tolist() == counts.tolist(), name
    predicted = np.subtract(after["prediction"]["counts"], before["prediction"]["counts"])
    assert predicted[:3].tolist() == np.bincount(model.predict(X_TEST), minlength=3).tolist()


def test_feedback_gives_the_accuracy_computed_offline_on_the_same_rows(
    wine: tuple[Server, Any],
) -> None:
    server, model = wine
    before = monitoring(server)["feedback"]
    ids = [infer(server, X_TEST[i : i + 1]).json()["id"] for i in range(len(X_TEST))]
    answer = feedback(
        server, [{"id": i, "label": int(y)} for i, y in zip(ids, Y_TEST, strict=True)]
    )
    assert answer.json()["matched"] == len(ids) and answer.json()["errors"] == []
    after = monitoring(server)["feedback"]
    rows = after["matchedRows"] - before["matchedRows"]
    correct = after["correctRows"] - before["correctRows"]
    assert rows == len(Y_TEST)
    assert correct / rows == pytest.approx(accuracy_score(Y_TEST, model.predict(X_TEST)))
    assert metric(server, "cairn_serving_feedback_correct_rows_total") >= correct


def test_one_answer_of_several_rows_takes_one_label_per_row(wine: tuple[Server, Any]) -> None:
    server, _ = wine
    given = infer(server, X_TEST[:3], id="batch-of-three")
    assert given.json()["id"] == "batch-of-three" == given.headers["inference-id"]
    labels = [int(y) for y in Y_TEST[:3]]
    assert feedback(server, [{"id": "batch-of-three", "label": labels[:2]}]).json()["invalid"] == 1
    assert feedback(server, [{"id": "batch-of-three", "label": labels}]).json()["matched"] == 1


def test_bad_feedback_items_are_counted_and_never_lose_the_rest_of_the_batch(
    wine_model: tuple[Path, Any],
) -> None:
    path, _ = wine_model
    server = Server(path, "--feedback-size", "2")
    try:
        first, second, third = (infer(server, X_TEST[i : i + 1]).json()["id"] for i in range(3))
        outcome = feedback(
            server,
            [
                {"id": first, "label": 0},  # pushed out by the two answers after it
                {"id": second, "label": 0},
                {"id": second, "label": 0},  # counted once
                {"id": "never-answered", "label": 1},
                {"id": third, "label": None},
            ],
        ).json()
        assert {
            k: outcome[k] for k in ("matched", "expired", "duplicate", "unknown", "invalid")
        } == {
            "matched": 1,
            "expired": 1,
            "duplicate": 1,
            "unknown": 1,
            "invalid": 1,
        }
        assert any("never-answered" in error for error in outcome["errors"])
        refused = feedback(server, {"id": first})
        assert refused.status_code == 400 and "JSON list" in refused.json()["error"]
        assert metric(server, "cairn_serving_feedback_items_total", outcome="unknown") == 1
    finally:
        server.stop()


def test_a_regressor_s_feedback_sums_its_errors(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X[:300], y[:300])
    training.save_model(model, path=tmp_path / "m", training_data=X[:300])
    server = Server(tmp_path / "m")
    try:
        ids = [infer(server, X[i : i + 1]).json()["id"] for i in range(300, 342)]
        feedback(
            server, [{"id": i, "label": float(v)} for i, v in zip(ids, y[300:342], strict=True)]
        )
        scores = monitoring(server)["feedback"]
        errors = np.abs(model.predict(X[300:342]) - y[300:342])
        assert scores["matchedRows"] == 42
        assert scores["absoluteError"] == pytest.approx(errors.sum())
    finally:
        server.stop()


def test_a_model_saved_without_data_has_no_baseline_and_says_so(tmp_path: Path) -> None:
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_TRAIN, Y_TRAIN)
    training.save_model(model, path=tmp_path / "m", sample_input=X_TRAIN[:1])
    assert not (tmp_path / "m" / FILE).exists()
    server = Server(tmp_path / "m")
    try:
        infer(server, X_TEST[:5])
        found = monitoring(server)
        assert found["baseline"] is None and "no baseline" in found["reason"]
        assert found["features"] == [] and found["rows"] == 0
    finally:
        server.stop()


def test_the_prediction_log_samples_answers_without_sensitive_features(
    wine_model: tuple[Path, Any], tmp_path: Path
) -> None:
    path, model = wine_model
    logs = tmp_path / "logs"
    sensitive = f"{NAMES[0]},{NAMES[1]}"
    options = ("--log-sample-rate", "1", "--log-dir", str(logs), "--sensitive-features", sensitive)
    server = Server(path, *options, "--pod-name", "pod-a")
    try:
        ids = [infer(server, X_TEST[i : i + 2]).json()["id"] for i in range(0, 10, 2)]
    finally:
        server.stop()  # writes what is queued
    (hour,) = (logs / "pod-a").iterdir()
    lines = [json.loads(line) for line in hour.read_text().splitlines()]
    assert [line["id"] for line in lines] == [i for i in ids for _ in range(2)]
    assert [line["row"] for line in lines] == [0, 1] * 5
    assert all(set(line["features"]) == set(NAMES[2:]) for line in lines)
    assert [line["prediction"] for line in lines] == model.predict(X_TEST[:10]).tolist()
    assert lines[0]["features"][NAMES[2]] == X_TEST[0, 2]


def test_an_unwritable_log_drops_lines_and_never_fails_an_answer(
    wine_model: tuple[Path, Any], tmp_path: Path
) -> None:
    path, _ = wine_model
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the log's directory should be")
    server = Server(path, "--log-sample-rate", "1", "--log-dir", str(blocked))
    try:
        for i in range(5):
            infer(server, X_TEST[i : i + 1])
        lines = "cairn_serving_prediction_log_lines_total"
        wait_for(
            lambda: metric(server, lines, outcome="dropped") == 5,
            timeout=10,
            message="the writer to drop the 5 lines it cannot write",
        )
        assert metric(server, lines, outcome="written") == 0
    finally:
        output = server.stop()
    assert "prediction log: dropped" in output
