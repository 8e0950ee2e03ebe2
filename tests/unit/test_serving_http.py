"""The model server over HTTP, in-process (httpx's ASGI transport): every endpoint and error.

test_serving_socket.py makes the checks a client relies on over a real socket too."""

import asyncio
import functools
import json
import math
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LinearRegression, LogisticRegression  # type: ignore[import-untyped]

from cairn import training
from cairn.serving import ServingApp, build_app
from cairn.serving.config import ServeConfig
from tests.support.held_model import Gate, hold_first_then_queue, save_held_model
from tests.support.inference import assert_error, v2
from tests.support.served_api import (
    Fetch,
    check_documented_operations_answer,
    check_only_documented_paths_answer,
    fetch_document,
)

T = TypeVar("T")
X, Y = load_iris(return_X_y=True)
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BASE = "http://cairn.test"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, Y)
    logistic = LogisticRegression(max_iter=500).fit(X, Y)
    regression = LinearRegression().fit(X[:, :3], X[:, 3])
    names = np.array(["setosa", "versicolor", "virginica"])[Y]
    labelled = LogisticRegression(max_iter=500).fit(X, names)
    paths = {}
    for name, model, sample in (
        ("forest", forest, X[:2]),
        ("logistic", logistic, X[:2]),
        ("regression", regression, X[:2, :3]),
        ("labelled", labelled, X[:2]),
    ):
        path = root / name
        features = FEATURES if name == "logistic" else None
        signature = training.infer_signature(model, sample, features)
        training.save_model(model, path=path, signature=signature)
        paths[name] = path
    return paths


def make_app(path: Path, **overrides: Any) -> ServingApp:
    config = ServeConfig(model_dir=path, name="iris", version="1", **overrides)
    return build_app(config)


def run(app: ServingApp, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await body(client)

    return asyncio.run(main())


def request(app: ServingApp, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def call(client: httpx.AsyncClient) -> httpx.Response:
        return await client.request(method, path, **kwargs)

    return run(app, call)


@pytest.fixture(scope="module")
def forest_app(models: dict[str, Path]) -> Iterator[ServingApp]:
    app = make_app(models["forest"])
    yield app
    app.close()


@pytest.fixture(scope="module")
def logistic_app(models: dict[str, Path]) -> Iterator[ServingApp]:
    app = make_app(models["logistic"])
    yield app
    app.close()


def fetch(app: ServingApp) -> Fetch:
    return functools.partial(request, app)


# -- health, metadata ------------------------------------------------------------------------


def test_health_and_server_metadata(forest_app: ServingApp) -> None:
    assert request(forest_app, "GET", "/v2/health/live").json() == {"live": True}
    assert request(forest_app, "GET", "/v2/health/ready").json() == {"ready": True}
    server = request(forest_app, "GET", "/v2").json()
    assert server["name"] == "cairn"
    assert server["extensions"] == ["binary_tensor_data"]
    for path in ("/v2/models/iris/ready", "/v2/models/iris/versions/1/ready", "/v1/models/iris"):
        response = request(forest_app, "GET", path)
        assert response.status_code == 200
        assert response.json() == {"name": "iris", "ready": True}


def test_model_metadata_comes_from_the_signature(forest_app: ServingApp) -> None:
    for path in ("/v2/models/iris", "/v2/models/iris/versions/1"):
        metadata = request(forest_app, "GET", path).json()
        assert metadata["name"] == "iris"
        assert metadata["versions"] == ["1"]
        assert metadata["platform"] == "sklearn"
        assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert metadata["outputs"] == [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ]
        assert metadata["parameters"]["classes"] == [0, 1, 2]


def test_unknown_model_version_and_paths_are_404(forest_app: ServingApp) -> None:
    assert_error(request(forest_app, "GET", "/v2/models/wine"), 404, "'wine'", "'iris'")
    assert_error(
        request(forest_app, "POST", "/v2/models/wine/infer", json=v2(X[:1])), 404, "'wine'"
    )
    assert_error(request(forest_app, "GET", "/v2/models/iris/versions/2"), 404, "'2'")
    assert_error(
        request(forest_app, "POST", "/v2/models/iris/versions/7/infer", json=v2(X[:1])),
        404,
        "'7'",
    )
    assert_error(
        request(forest_app, "POST", "/v1/models/wine:predict", json={"instances": [[1] * 4]}),
        404,
        "'wine'",
    )
    assert_error(request(forest_app, "GET", "/v2/models/iris/explain"), 404, "/openapi.json")
    assert_error(request(forest_app, "GET", "/nope"), 404)


def test_wrong_method_is_405_with_the_allowed_methods(forest_app: ServingApp) -> None:
    for method, path, allowed in (
        ("GET", "/v2/models/iris/infer", "POST"),
        ("PUT", "/v1/models/iris:predict", "POST"),
        ("POST", "/v2/health/ready", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("PATCH", "/v2/models/iris/versions/1", "GET, HEAD"),
    ):
        response = request(forest_app, method, path)
        assert_error(response, 405, allowed.split(",")[0])
        assert response.headers["allow"] == allowed


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"],
)
def test_a_content_type_the_server_does_not_read_is_415(
    forest_app: ServingApp, content_type: str
) -> None:
    for path in ("/v2/models/iris/infer", "/v1/models/iris:predict"):
        response = request(
            forest_app, "POST", path, content=b"{}", headers={"content-type": content_type}
        )
        assert_error(response, 415, content_type.split(";")[0], "application/json")


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/vnd.x+json"],
)
def test_json_is_read_with_or_without_its_content_type(
    forest_app: ServingApp, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = request(
        forest_app, "POST", "/v2/models/iris/infer", content=_dumps(v2(X[:1])), headers=headers
    )
    assert response.status_code == 200, response.text


# -- inference -------------------------------------------------------------------------------


def forest_model(models: dict[str, Path]) -> Any:
    return training.load_model(models["forest"]).estimator


def test_v2_infer_row_style_equals_scikit_learn(
    forest_app: ServingApp, models: dict[str, Path]
) -> None:
    model = forest_model(models)
    response = request(forest_app, "POST", "/v2/models/iris/infer", json=v2(X, id="req-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    predict, proba = body["outputs"]
    assert predict == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [150],
        "data": model.predict(X).tolist(),
    }
    assert proba["name"] == "predict_proba"
    assert proba["shape"] == [150, 3]
    np.testing.assert_allclose(
        np.reshape(proba["data"], (150, 3)), model.predict_proba(X), atol=1e-6
    )


def test_v2_infer_flat_data_versions_url_and_output_selection(forest_app: ServingApp) -> None:
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": X[[0, 100]].reshape(-1).tolist(),
            }
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    response = request(forest_app, "POST", "/v2/models/iris/versions/1/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert [output["name"] for output in outputs] == ["predict_proba"]
    # No id asked for: the server gives one (for feedback), in the body and a header.
    assert len(response.json()["id"]) == 32
    assert response.headers["inference-id"] == response.json()["id"]
    body["outputs"] = [{"name": "predict"}]
    outputs = request(forest_app, "POST", "/v2/models/iris/infer", json=body).json()["outputs"]
    assert outputs == [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 2]}]


def test_v2_infer_integer_datatypes(forest_app: ServingApp) -> None:
    for datatype in ("INT32", "INT64"):
        body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": datatype}]}
        body["inputs"][0]["data"] = [[6, 3, 5, 2]]
        response = request(forest_app, "POST", "/v2/models/iris/infer", json=body)
        assert response.status_code == 200, response.text


def test_v2_infer_column_style(logistic_app: ServingApp, models: dict[str, Path]) -> None:
    model = training.load_model(models["logistic"]).estimator
    rows = X[[0, 60, 120]]
    inputs = [
        {"name": name, "shape": [3], "datatype": "FP64", "data": rows[:, index].tolist()}
        for index, name in enumerate(FEATURES)
    ]
    inputs.reverse()  # order does not matter: names do
    inputs[0]["shape"] = [3, 1]
    response = request(logistic_app, "POST", "/v2/models/iris/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == model.predict(rows).tolist()
    columns = request(logistic_app, "GET", "/v2/models/iris").json()["parameters"]["columns"]
    assert columns == FEATURES


def test_v1_predict(forest_app: ServingApp, models: dict[str, Path]) -> None:
    model = forest_model(models)
    response = request(
        forest_app, "POST", "/v1/models/iris:predict", json={"instances": X[::10].tolist()}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": model.predict(X[::10]).tolist()}


def test_v1_predict_by_feature_name(logistic_app: ServingApp) -> None:
    instance = dict(zip(FEATURES, X[0].tolist(), strict=True))
    response = request(
        logistic_app, "POST", "/v1/models/iris:predict", json={"instances": [instance]}
    )
    assert response.json() == {"predictions": [0]}
    assert_error(
        request(logistic_app, "POST", "/v1/models/iris:predict", json={"instances": [{"a": 1}]}),
        400,
        "missing",
    )


def test_string_labels_are_bytes(models: dict[str, Path]) -> None:
    app = make_app(models["labelled"])
    try:
        body = request(app, "POST", "/v2/models/iris/infer", json=v2(X[[0, 149]])).json()
        assert body["outputs"][0] == {
            "name": "predict",
            "datatype": "BYTES",
            "shape": [2],
            "data": ["setosa", "virginica"],
        }
        v1 = request(app, "POST", "/v1/models/iris:predict", json={"instances": [X[0].tolist()]})
        assert v1.json() == {"predictions": ["setosa"]}
    finally:
        app.close()


def test_regressor(models: dict[str, Path]) -> None:
    app = make_app(models["regression"])
    try:
        body = request(app, "POST", "/v2/models/iris/infer", json=v2(X[:3, :3])).json()
        model = training.load_model(models["regression"]).estimator
        np.testing.assert_allclose(body["outputs"][0]["data"], model.predict(X[:3, :3]), rtol=1e-9)
        metrics = request(app, "GET", "/metrics").text
        assert 'cairn_serving_prediction_value_bucket{le="+Inf",model="iris",version="1"} 3.0' in (
            metrics
        )
    finally:
        app.close()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, ["no body"]),
        (b"{", 400, ["not valid JSON"]),
        (b"[]", 400, ["JSON object"]),
        (b'{"inputs": []}', 400, ["inputs"]),
        (b'{"inputs": [1]}', 400, ["inputs[0]"]),
        (b'{"id": 3, "inputs": []}', 400, ["'id'"]),
        (b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64"}]}', 400, ["data"]),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", '
            b'"data": [1, 2, 3]}]}',
            400,
            ["shape [1, 3]", "4 features"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", '
            b'"data": [1, 2, 3, 4]}]}',
            400,
            ["4 values", "needs 8"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [4], "datatype": "FP64", '
            b'"data": [1, 2, 3, 4]}]}',
            400,
            ["[rows, 4]"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP99", '
            b'"data": [1, 2, 3, 4]}]}',
            400,
            ["'FP99'"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "BYTES", '
            b'"data": ["a", "b", "c", "d"]}]}',
            400,
            ["BYTES", "FP64"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "BOOL", '
            b'"data": [true, false, true, true]}]}',
            400,
            ["BOOL", "FP64"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", '
            b'"data": [1, "x", 3, 4]}]}',
            400,
            ["numbers"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "INT32", '
            b'"data": [1, 2.5, 3, 4]}]}',
            400,
            ["integers"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "INT32", '
            b'"data": [1, 3000000000, 3, 4]}]}',
            400,
            ["integers"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", '
            b'"data": [[1, 2, 3, 4], [1, 2]]}]}',
            400,
            ["regular"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", '
            b'"data": [1e300, 2, 3, 4]}]}',
            400,
            ["FP32"],
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
            b'"data": [1, 2, 3, 4]}]}',
            400,
            ["unknown input 'x'", "'input-0'"],
        ),
        (
            b'{"inputs": [{"name": "x0", "shape": [1], "datatype": "FP64", "data": [1]}]}',
            400,
            ["missing 'x1'"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", '
            b'"data": [1, 2, 3, 4]}], "outputs": [{"name": "explain"}]}',
            400,
            ["unknown output 'explain'"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [0, 4], "datatype": "FP64", "data": []}]}',
            400,
            ["no rows"],
        ),
    ],
)
def test_bad_v2_requests_are_400_naming_the_problem(
    forest_app: ServingApp, body: bytes, status: int, words: list[str]
) -> None:
    response = request(forest_app, "POST", "/v2/models/iris/infer", content=body)
    assert_error(response, status, *words)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"rows": [[1, 2, 3, 4]]}', ["instances"]),
        (b'{"instances": []}', ["non-empty"]),
        (b'{"instances": [[1, 2, 3]]}', ["4 values"]),
        (b'{"instances": [[1, 2, 3, "x"]]}', ["numbers"]),
        (b'{"instances": [[1, 2, 3, null]]}', ["numbers"]),
    ],
)
def test_bad_v1_requests_are_400(forest_app: ServingApp, body: bytes, words: list[str]) -> None:
    response = request(forest_app, "POST", "/v1/models/iris:predict", content=body)
    assert_error(response, 400, *words)


def test_oversized_bodies_are_413(models: dict[str, Path]) -> None:
    app = make_app(models["forest"], max_body_bytes=1000)
    try:
        big = v2(np.tile(X[:1], (100, 1)))
        assert_error(request(app, "POST", "/v2/models/iris/infer", json=big), 413, "1000")

        async def chunked(client: httpx.AsyncClient) -> httpx.Response:
            async def body() -> Any:
                for _ in range(20):
                    yield b" " * 100

            return await client.post("/v2/models/iris/infer", content=body())

        assert_error(run(app, chunked), 413, "1000")
        # Still serving.
        ok = request(app, "POST", "/v2/models/iris/infer", json=v2(X[:1]))
        assert ok.status_code == 200
    finally:
        app.close()


def test_a_body_that_never_arrives_is_408_not_a_hang(models: dict[str, Path]) -> None:
    app = make_app(models["forest"], body_timeout_s=0.2)

    async def main() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(10)
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v2/models/iris/infer",
            "headers": [(b"content-length", b"100")],
        }
        await asyncio.wait_for(app(scope, receive, send), 5)
        return sent

    try:
        sent = asyncio.run(main())
        assert sent[0]["status"] == 408
        assert b"did not arrive" in sent[1]["body"]
    finally:
        app.close()


# -- batching, concurrency ----------------------------------------------------------------------


def test_concurrent_clients_get_their_own_predictions(
    forest_app: ServingApp, models: dict[str, Path]
) -> None:
    model = forest_model(models)
    expected_proba = model.predict_proba(X)
    sizes = [1, 3, 1, 7, 2, 1, 5] * 8

    async def body(client: httpx.AsyncClient) -> list[tuple[int, dict[str, Any]]]:
        starts = np.cumsum([0, *sizes])[:-1] % 140

        async def one(start: int, size: int) -> tuple[int, dict[str, Any]]:
            rows = X[start : start + size]
            response = await client.post("/v2/models/iris/infer", json=v2(rows, id=str(start)))
            assert response.status_code == 200, response.text
            return int(start), response.json()

        return await asyncio.gather(*(one(int(s), n) for s, n in zip(starts, sizes, strict=True)))

    for start, result in run(forest_app, body):
        assert result["id"] == str(start)
        predict, proba = result["outputs"]
        n = predict["shape"][0]
        assert predict["data"] == model.predict(X[start : start + n]).tolist()
        np.testing.assert_allclose(
            np.reshape(proba["data"], (n, 3)), expected_proba[start : start + n], atol=1e-6
        )
    metrics = request(forest_app, "GET", "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    batches = families["cairn_serving_batch_requests"]
    count = next(s.value for s in batches.samples if s.name.endswith("_count"))
    total = next(s.value for s in batches.samples if s.name.endswith("_sum"))
    assert total / count > 1, "concurrent requests were never batched"


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Gate]:
    """A logistic regression that the test holds inside a model call (see held_model)."""
    root = tmp_path_factory.mktemp("held")
    gate = save_held_model(root, LogisticRegression(max_iter=500), X, Y)
    return root / "model", gate


def post_while_held(app: ServingApp, gate: Gate, bodies: list[Any]) -> list[httpx.Response]:
    """POST `bodies` to infer, the first held in the model while the others queue (see
    hold_first_then_queue)."""

    async def body(client: httpx.AsyncClient) -> list[httpx.Response]:
        async def queued() -> int:
            return app.batcher.queue_depth  # type: ignore[union-attr]

        posts = [functools.partial(client.post, "/v2/models/iris/infer", json=b) for b in bodies]
        return await hold_first_then_queue(gate, posts, queued)

    return run(app, body)


@pytest.mark.parametrize(
    ("options", "requests_per_call"),
    [
        # The held request alone, then the 74 queued in calls of at most 32.
        ({"max_batch_size": 32}, [1, 32, 32, 10]),
        ({"max_batch_size": 32, "batching": False}, [1] * 75),
        ({"max_batch_size": 1}, [1] * 75),
    ],
    ids=["batching", "batching-off", "max-batch-size-1"],
)
def test_queued_requests_share_model_calls_and_get_the_unbatched_answers(
    held: tuple[Path, Gate], options: dict[str, Any], requests_per_call: list[int]
) -> None:
    path, gate = held
    bodies = [v2(X[i : i + 2]) for i in range(0, 150, 2)]
    app = make_app(path, runtime="sklearn", **options)
    try:
        responses = post_while_held(app, gate, bodies)
    finally:
        app.close()
    # Counted by the model itself: each request has two rows.
    assert [len(rows) / 2 for rows in gate.calls()] == requests_per_call
    model = training.load_model(path).estimator.estimator_
    for sent, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200, response.text
        rows = np.asarray(sent["inputs"][0]["data"])
        predict, proba = response.json()["outputs"]
        assert predict["data"] == model.predict(rows).tolist()
        np.testing.assert_allclose(
            np.reshape(proba["data"], (2, 3)), model.predict_proba(rows), atol=1e-12
        )


def test_a_bad_request_does_not_fail_its_batch_mates(held: tuple[Path, Gate]) -> None:
    path, gate = held
    app = make_app(path, runtime="sklearn")
    original = app.model.runtime.predict  # type: ignore[union-attr]
    refused: list[int] = []  # rows of each call refused

    def picky(rows: Any, outputs: Any) -> Any:
        if (rows == 666).any():
            refused.append(len(rows))
            raise ValueError("666 is not a flower")
        return original(rows, outputs)

    object.__setattr__(app.model.runtime, "predict", picky)  # type: ignore[union-attr]
    try:
        rows = [X[:1], X[1:2], np.full((1, 4), 666.0), X[2:3]]
        responses = post_while_held(app, gate, [v2(r) for r in rows])
    finally:
        app.close()
    # The bad rows failed a call of three requests, then alone; the other two were answered.
    assert refused == [3, 1]
    assert [r.status_code for r in responses] == [200, 200, 400, 200]
    assert_error(responses[2], 400, "666 is not a flower")


# -- not ready, shutdown ------------------------------------------------------------------------


def test_digest_mismatch_is_not_ready_and_refuses_inference(models: dict[str, Path]) -> None:
    wrong = "sha256:" + "0" * 64
    app = make_app(models["forest"], expected_digest=wrong)
    assert app.model is None
    assert request(app, "GET", "/v2/health/live").status_code == 200
    assert request(app, "GET", "/v2/health/ready").status_code == 503
    assert request(app, "GET", "/v2/models/iris/ready").status_code == 503
    response = request(app, "POST", "/v2/models/iris/infer", json=v2(X[:1]))
    assert_error(response, 503, "not ready", "expected " + wrong)
    assert "cairn_serving_ready{" in request(app, "GET", "/metrics").text


def test_the_right_digest_is_served(models: dict[str, Path]) -> None:
    digest = training.load_model(models["forest"]).digest
    app = make_app(models["forest"], expected_digest=digest)
    try:
        assert app.ready
    finally:
        app.close()


def test_shutdown_turns_readiness_off_and_keeps_serving(models: dict[str, Path]) -> None:
    app = make_app(models["forest"])
    try:
        app.begin_shutdown()
        assert request(app, "GET", "/v2/health/ready").status_code == 503
        assert request(app, "POST", "/v2/models/iris/infer", json=v2(X[:1])).status_code == 200
    finally:
        app.close()


def test_ready_while_draining_keeps_answering_ready_until_the_listener_closes(
    models: dict[str, Path],
) -> None:
    # What a pod needs to stay the Service's last endpoint while it terminates (KEP-1669).
    app = make_app(models["forest"], ready_while_draining=True)
    try:
        app.begin_shutdown()
        assert request(app, "GET", "/v2/health/ready").status_code == 200
        assert request(app, "GET", "/v2/models/iris/ready").status_code == 200
        assert request(app, "POST", "/v2/models/iris/infer", json=v2(X[:1])).status_code == 200
    finally:
        app.close()


# -- metrics, OpenAPI ------------------------------------------------------------------------


def test_metrics_parse_and_carry_what_the_issue_asks(forest_app: ServingApp) -> None:
    request(forest_app, "POST", "/v2/models/iris/infer", json=v2(X[[0, 1, 149]]))
    request(forest_app, "POST", "/v1/models/iris:predict", json={"instances": [X[0].tolist()]})
    request(forest_app, "POST", "/v2/models/iris/infer", content=b"{")
    response = request(forest_app, "GET", "/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "cairn_serving_requests",
        "cairn_serving_request_duration_seconds",
        "cairn_serving_batch_requests",
        "cairn_serving_batch_rows",
        "cairn_serving_queue_depth",
        "cairn_serving_inflight_requests",
        "cairn_serving_predictions",
        "cairn_serving_input_feature",
        "cairn_serving_input_feature_squares",
        "cairn_serving_model_info",
        "cairn_serving_ready",
    ):
        assert name in families, name
    codes = {
        (s.labels["protocol"], s.labels["code"])
        for s in families["cairn_serving_requests"].samples
        if s.name == "cairn_serving_requests_total"
    }
    assert {("v2", "200"), ("v1", "200"), ("v2", "400")} <= codes
    classes = {
        s.labels["class"]: s.value
        for s in families["cairn_serving_predictions"].samples
        if s.name.endswith("_total")
    }
    assert set(classes) == {"0", "1", "2"} and classes["0"] >= 2 and classes["2"] >= 1
    info = families["cairn_serving_model_info"].samples[0].labels
    assert info["digest"].startswith("sha256:") and info["runtime"] in ("onnx", "sklearn")
    feature = [
        s
        for s in families["cairn_serving_input_feature"].samples
        if s.labels["feature"] == "x0" and s.name.endswith("_count")
    ]
    assert feature[0].value >= 4


def test_the_served_openapi_document_is_valid_and_every_operation_answers_as_documented(
    forest_app: ServingApp,
) -> None:
    api = fetch_document(fetch(forest_app), "iris", "1")
    check_documented_operations_answer(fetch(forest_app), api, X[:2].tolist())


def test_nothing_answers_that_the_openapi_document_does_not_list(forest_app: ServingApp) -> None:
    api = fetch_document(fetch(forest_app), "iris", "1")
    check_only_documented_paths_answer(fetch(forest_app), api)


# -- property: malformed bodies -----------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["input-0", "x0", "x", ""]) | json_values,
        "shape": st.lists(st.integers(-2, 5), max_size=3) | json_values,
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BOOL", "BYTES", "X"]) | json_values,
        "data": st.lists(st.floats(allow_nan=False) | st.integers(), max_size=8) | json_values,
    },
)
bodies = (
    st.binary(max_size=64)
    | json_values.map(_dumps)
    | st.fixed_dictionaries(
        {"inputs": st.lists(tensors, max_size=3) | json_values},
        optional={"id": json_values, "outputs": json_values, "parameters": json_values},
    ).map(_dumps)
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies, path=st.sampled_from(["/v2/models/iris/infer", "/v1/models/iris:predict"]))
def test_malformed_bodies_are_always_a_4xx_json_error(
    forest_app: ServingApp, body: bytes, path: str
) -> None:
    response = request(forest_app, "POST", path, content=body)
    if response.status_code == 200:
        # Hypothesis found a valid request: then it must be a real answer.
        assert "outputs" in response.json() or "predictions" in response.json()
        return
    assert 400 <= response.status_code < 500, (body, response.text)
    assert isinstance(response.json()["error"], str)


def test_the_server_is_still_up_after_the_properties(forest_app: ServingApp) -> None:
    response = request(forest_app, "POST", "/v2/models/iris/infer", json=v2(X[:1]))
    assert response.status_code == 200
    assert not math.isnan(response.json()["outputs"][1]["data"][0])


def test_promtool_accepts_the_exposition(forest_app: ServingApp) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; make bench-serve does)")
    request(forest_app, "POST", "/v2/models/iris/infer", json=v2(X[:2]))
    exposition = request(forest_app, "GET", "/metrics").content
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not checked.stdout.strip() and not checked.stderr.strip()


def test_access_log_is_off_by_default_and_json_when_on(
    models: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="cairn.serving.access")
    for enabled in (False, True):
        app = make_app(models["logistic"], access_log=enabled)
        try:
            body = v2(X[:1], id="logged")
            assert request(app, "POST", "/v2/models/iris/infer", json=body).status_code == 200
        finally:
            app.close()
        lines = [r.getMessage() for r in caplog.records if r.name == "cairn.serving.access"]
        if not enabled:
            assert lines == []
    (line,) = lines
    entry = json.loads(line)
    assert entry["path"] == "/v2/models/iris/infer" and entry["status"] == 200
    assert entry["id"] == "logged" and entry["duration_ms"] >= 0
