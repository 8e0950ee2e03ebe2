"""The official Triton/KServe client (tritonclient), unchanged and with its defaults, against a
running cairn-serve: REST with the binary tensor extension, and gRPC."""

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc  # type: ignore[import-untyped]
import tritonclient.http as triton_http  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from cairn import training
from tests.support.servers import Server, free_port

X, Y = load_iris(return_X_y=True)
CLIENTS = {"http": triton_http, "grpc": triton_grpc}


def client_of(server: Server, kind: str) -> Any:
    port = server.http if kind == "http" else server.grpc
    return CLIENTS[kind].InferenceServerClient(f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    root = tmp_path_factory.mktemp("client-models")
    names = np.array(["setosa", "versicolor", "virginica"])[Y]
    trained = {}
    for name, model, labels in (
        ("forest", RandomForestClassifier(n_estimators=10, random_state=0), Y),
        ("labelled", LogisticRegression(max_iter=500), names),
    ):
        model.fit(X, labels)
        training.save_model(model, path=root / name, sample_input=X[:1])
        trained[name] = (root / name, model)
    return trained


@pytest.fixture(scope="module")
def forest(models: dict[str, tuple[Path, Any]]) -> Iterator[tuple[Server, Any]]:
    path, model = models["forest"]
    server = Server(path)
    yield server, model
    server.stop()


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_health_and_metadata(forest: tuple[Server, Any], kind: str) -> None:
    client = client_of(forest[0], kind)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "2")
    server = client.get_server_metadata()
    metadata = client.get_model_metadata("iris")
    if kind == "grpc":
        server = {"name": server.name, "extensions": list(server.extensions)}
        inputs = [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs]
    else:
        inputs = [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]]
    assert server["name"] == "cairn" and "binary_tensor_data" in server["extensions"]
    assert inputs == [("input-0", "FP64", [-1, 4])]


@pytest.mark.parametrize("kind", ["http", "grpc"])
@pytest.mark.parametrize("rows", [1, 32])
def test_infer_with_the_clients_defaults(forest: tuple[Server, Any], kind: str, rows: int) -> None:
    """set_data_from_numpy's default on REST is binary_data=True; no outputs asked: all come
    back, in binary on REST (binary_data_output)."""
    server, model = forest
    client = client_of(server, kind)
    data = X[np.arange(rows) * 7 % len(X)]
    tensor = CLIENTS[kind].InferInput("input-0", list(data.shape), "FP64")
    tensor.set_data_from_numpy(data)
    result = client.infer("iris", [tensor], request_id="t-1")
    assert result.as_numpy("predict").tolist() == model.predict(data).tolist()
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), model.predict_proba(data), atol=1e-6
    )
    response = result.get_response()
    assert (response["id"] if kind == "http" else response.id) == "t-1"


@pytest.mark.parametrize("binary", [False, True])
def test_rest_json_or_binary_per_tensor(forest: tuple[Server, Any], binary: bool) -> None:
    server, model = forest
    client = client_of(server, "http")
    data = X[:5].astype(np.float32)
    tensor = triton_http.InferInput("input-0", [5, 4], "FP32")
    tensor.set_data_from_numpy(data, binary_data=binary)
    outputs = [
        triton_http.InferRequestedOutput("predict", binary_data=not binary),
        triton_http.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = client.infer("iris", [tensor], outputs=outputs, model_version="2")
    assert result.as_numpy("predict").tolist() == model.predict(data).tolist()
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), model.predict_proba(data), atol=1e-6
    )


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_bytes_outputs(models: dict[str, tuple[Path, Any]], kind: str) -> None:
    path, _ = models["labelled"]
    server = Server(path)
    try:
        tensor = CLIENTS[kind].InferInput("input-0", [2, 4], "FP64")
        tensor.set_data_from_numpy(X[[0, 149]])
        result = client_of(server, kind).infer("iris", [tensor])
        assert result.as_numpy("predict").tolist() == [b"setosa", b"virginica"]
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_errors_reach_the_client_with_the_servers_message(
    forest: tuple[Server, Any], kind: str
) -> None:
    client = client_of(forest[0], kind)
    tensor = CLIENTS[kind].InferInput("input-0", [1, 3], "FP64")
    tensor.set_data_from_numpy(X[:1, :3])
    with pytest.raises(InferenceServerException) as bad:
        client.infer("iris", [tensor])
    assert "4 features" in bad.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("nope", [tensor])
    assert "unknown model 'nope'" in unknown.value.message()
    expected = {
        "http": ("400", "404"),
        "grpc": ("StatusCode.INVALID_ARGUMENT", "StatusCode.NOT_FOUND"),
    }
    assert (bad.value.status(), unknown.value.status()) == expected[kind]


def test_a_taken_grpc_port_stops_the_server_with_a_reason(
    models: dict[str, tuple[Path, Any]],
) -> None:
    path, _ = models["forest"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "cairn.serving", "--model-dir", str(path)]
        command += ["--name", "iris", "--host", "127.0.0.1", "--port", str(free_port())]
        command += ["--grpc-port", str(port)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in done.stdout
