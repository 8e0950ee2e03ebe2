"""The binary tensor extension of the Open Inference Protocol on REST, in-process: raw inputs after
the JSON, raw outputs on request, and every way such a body can be wrong."""

import asyncio
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn import training
from cairn.serving import ServingApp, build_app
from cairn.serving.config import ServeConfig
from cairn.serving.tensors import RAW_DTYPES, RawTensorError, from_raw, to_raw

X, Y = load_iris(return_X_y=True)
INFER = "/v2/models/iris/infer"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("binary-models")
    names = np.array(["setosa", "versicolor", "virginica"])[Y]
    paths = {}
    for name, model, labels in (
        ("forest", RandomForestClassifier(n_estimators=10, random_state=0), Y),
        ("labelled", LogisticRegression(max_iter=500), names),
    ):
        model.fit(X, labels)
        training.save_model(model, path=root / name, sample_input=X[:1])
        paths[name] = root / name
    return paths


@pytest.fixture(scope="module")
def forest(models: dict[str, Path]) -> Iterator[tuple[ServingApp, Any]]:
    app = build_app(ServeConfig(model_dir=models["forest"], name="iris"))
    yield app, training.load_model(models["forest"]).estimator
    app.close()


def post(app: ServingApp, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cairn.test") as client:
            return await client.post(INFER, content=body, headers=headers)

    return asyncio.run(main())


def binary_request(
    header: dict[str, Any], *tensors: bytes, content_type: str = "application/octet-stream"
) -> tuple[bytes, dict[str, str]]:
    encoded = json.dumps(header).encode()
    headers = {
        "Inference-Header-Content-Length": str(len(encoded)),
        "Content-Type": content_type,
    }
    return encoded + b"".join(tensors), headers


def raw_input(rows: Any, datatype: str = "FP64") -> tuple[dict[str, Any], bytes]:
    data = to_raw(np.asarray(rows), datatype)
    tensor = {
        "name": "input-0",
        "shape": list(np.shape(rows)),
        "datatype": datatype,
        "parameters": {"binary_data_size": len(data)},
    }
    return tensor, data


def split_response(response: httpx.Response) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The JSON of a response in the binary extension and each raw output's bytes by name."""
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    raw, offset = {}, length
    for output in header["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            assert "data" not in output
            raw[output["name"]] = response.content[offset : offset + size]
            offset += size
    assert offset == len(response.content)
    return header, raw


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_raw_inputs_predict_what_the_model_predicts(
    forest: tuple[ServingApp, Any], datatype: str
) -> None:
    app, model = forest
    rows = X[::7]
    tensor, data = raw_input(rows, datatype)
    body, headers = binary_request({"inputs": [tensor], "id": "b1"}, data)
    response = post(app, body, headers)
    assert response.status_code == 200, response.text
    # Outputs not asked for in binary come back as JSON, as before.
    assert "inference-header-content-length" not in response.headers
    answer = response.json()
    assert answer["id"] == "b1"
    expected = model.predict(rows.astype(np.float32 if datatype == "FP32" else np.float64))
    assert answer["outputs"][0]["data"] == expected.tolist()


def test_raw_outputs_when_binary_data_output_is_asked(forest: tuple[ServingApp, Any]) -> None:
    app, model = forest
    tensor, data = raw_input(X[:5])
    body, headers = binary_request(
        {"inputs": [tensor], "parameters": {"binary_data_output": True}}, data
    )
    response = post(app, body, headers)
    assert response.headers["content-type"] == "application/octet-stream"
    header, raw = split_response(response)
    predict, proba = header["outputs"]
    assert (predict["datatype"], predict["shape"]) == ("INT64", [5])
    assert (proba["datatype"], proba["shape"]) == ("FP64", [5, 3])
    assert from_raw(raw["predict"], "INT64", (5,)).tolist() == model.predict(X[:5]).tolist()
    np.testing.assert_allclose(
        from_raw(raw["predict_proba"], "FP64", (5, 3)), model.predict_proba(X[:5]), atol=1e-6
    )


def test_each_output_chooses_json_or_raw(forest: tuple[ServingApp, Any]) -> None:
    app, model = forest
    # A JSON request (no binary inputs) may still ask for raw outputs.
    request = {
        "inputs": [
            {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": X[:2].tolist()}
        ],
        "parameters": {"binary_data_output": True},
        "outputs": [
            {"name": "predict_proba", "parameters": {"binary_data": False}},
            {"name": "predict"},
        ],
    }
    response = post(app, json.dumps(request).encode(), {"content-type": "application/json"})
    header, raw = split_response(response)
    proba, predict = header["outputs"]
    assert [proba["name"], predict["name"]] == ["predict_proba", "predict"]  # the order asked
    assert np.allclose(np.reshape(proba["data"], (2, 3)), model.predict_proba(X[:2]), atol=1e-6)
    assert set(raw) == {"predict"}
    assert from_raw(raw["predict"], "INT64", (2,)).tolist() == model.predict(X[:2]).tolist()


def test_column_style_raw_inputs(models: dict[str, Path]) -> None:
    app = build_app(ServeConfig(model_dir=models["forest"], name="iris"))
    try:
        tensors, blobs = [], []
        for index in range(4):
            data = to_raw(X[:3, index].astype(np.float32), "FP32")
            tensors.append(
                {
                    "name": f"x{index}",
                    "shape": [3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(data)},
                }
            )
            blobs.append(data)
        body, headers = binary_request({"inputs": tensors}, *blobs)
        response = post(app, body, headers)
        assert response.status_code == 200, response.text
        model = training.load_model(models["forest"]).estimator
        expected = model.predict(X[:3].astype(np.float32))
        assert response.json()["outputs"][0]["data"] == expected.tolist()
    finally:
        app.close()


def test_bytes_outputs_carry_4_byte_lengths(models: dict[str, Path]) -> None:
    app = build_app(ServeConfig(model_dir=models["labelled"], name="iris"))
    try:
        tensor, data = raw_input(X[[0, 149]])
        body, headers = binary_request(
            {
                "inputs": [tensor],
                "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
            },
            data,
        )
        header, raw = split_response(post(app, body, headers))
        assert header["outputs"][0]["datatype"] == "BYTES"
        assert raw["predict"] == struct.pack("<I", 6) + b"setosa" + struct.pack("<I", 9) + (
            b"virginica"
        )
    finally:
        app.close()


def _tensor_header(size: int, shape: tuple[int, ...] = (1, 4), **extra: Any) -> dict[str, Any]:
    tensor = {
        "name": "input-0",
        "shape": list(shape),
        "datatype": "FP64",
        "parameters": {"binary_data_size": size},
    }
    return {"inputs": [tensor | extra]}


ONE_ROW = to_raw(X[:1], "FP64")


@pytest.mark.parametrize(
    ("header", "data", "length_delta", "words"),
    [
        (_tensor_header(32, (2, 4)), ONE_ROW, 0, ["32 bytes of FP64", "needs 64"]),
        (_tensor_header(40), ONE_ROW, 0, ["runs past the end"]),
        (_tensor_header(32), ONE_ROW + b"xx", 0, ["2 bytes after the JSON"]),
        (_tensor_header(32, data=[1, 2, 3, 4]), ONE_ROW, 0, ["both 'data'"]),
        (_tensor_header(-1), ONE_ROW, 0, ["non-negative"]),
        (_tensor_header(32), ONE_ROW, 10_000, ["Inference-Header-Content-Length is"]),
        (_tensor_header(32), ONE_ROW, -3, ["not valid JSON"]),
    ],
)
def test_malformed_binary_requests_are_400_naming_the_problem(
    forest: tuple[ServingApp, Any],
    header: dict[str, Any],
    data: bytes,
    length_delta: int,
    words: list[str],
) -> None:
    body, headers = binary_request(header, data)
    headers["Inference-Header-Content-Length"] = str(
        int(headers["Inference-Header-Content-Length"]) + length_delta
    )
    response = post(forest[0], body, headers)
    assert response.status_code == 400, response.text
    for word in words:
        assert word in response.json()["error"]


def test_raw_tensors_without_the_header_are_400_naming_it(forest: tuple[ServingApp, Any]) -> None:
    tensor, data = raw_input(X[:1])
    body, _ = binary_request({"inputs": [tensor]}, b"\xff" + data[1:])
    response = post(forest[0], body, {"content-type": "application/octet-stream"})
    assert response.status_code == 400
    assert "Inference-Header-Content-Length" in response.json()["error"]


def test_bad_binary_parameters_are_400(forest: tuple[ServingApp, Any]) -> None:
    tensor, data = raw_input(X[:1])
    for request, words in (
        ({"inputs": [tensor], "parameters": {"binary_data_output": "yes"}}, "binary_data_output"),
        (
            {
                "inputs": [tensor],
                "outputs": [{"name": "predict", "parameters": {"binary_data": 1}}],
            },
            "binary_data",
        ),
        (
            {
                "inputs": [tensor],
                "outputs": [{"name": "predict", "parameters": {"classification": 2}}],
            },
            "classification",
        ),
    ):
        body, headers = binary_request(request, data)
        response = post(forest[0], body, headers)
        assert response.status_code == 400
        assert words in response.json()["error"]


# -- the raw layout ---------------------------------------------------------------------------

datatypes = st.sampled_from(sorted(RAW_DTYPES))


@given(
    datatype=datatypes,
    shape=st.lists(st.integers(0, 3), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_raw_layout_round_trips(datatype: str, shape: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    dtype = RAW_DTYPES[datatype]
    if datatype == "BOOL":
        array: Any = rng.integers(0, 2, shape).astype(bool)
    elif dtype.kind == "f":
        array = rng.normal(size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    raw = to_raw(array, datatype)
    assert len(raw) == array.size * dtype.itemsize
    assert np.array_equal(from_raw(raw, datatype, tuple(shape)), array)


@given(items=st.lists(st.binary(max_size=6), max_size=5))
def test_bytes_round_trip_with_length_prefixes(items: list[bytes]) -> None:
    array = np.array(items, dtype=object)
    raw = to_raw(array, "BYTES")
    assert len(raw) == sum(4 + len(item) for item in items)
    assert from_raw(raw, "BYTES", (len(items),)).tolist() == items


@pytest.mark.parametrize(
    ("raw", "datatype", "shape", "words"),
    [
        (b"\x02", "BOOL", (1,), "0 or 1"),
        (b"\x05\x00\x00\x00ab", "BYTES", (1,), "runs past"),
        (b"\x01\x00", "BYTES", (1,), "4-byte length"),
        (b"\x01\x00\x00\x00a", "BYTES", (2,), "needs 2"),
        (b"\x00" * 7, "FP64", (1,), "needs 8"),
    ],
)
def test_raw_data_that_does_not_fit_its_shape_is_refused(
    raw: bytes, datatype: str, shape: tuple[int, ...], words: str
) -> None:
    with pytest.raises(RawTensorError, match=words):
        from_raw(raw, datatype, shape)
