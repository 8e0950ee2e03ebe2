"""cairn-serve as a user runs it: its own process on a loopback port, driven by ordinary HTTP
clients (httpx, http.client, a bare socket) rather than by the in-process transport that
test_serving_http.py uses. So uvicorn, httptools and the server's own settings are in the path:
what goes over the wire, keep-alive, bodies the parser refuses, and batching of requests that
arrive on separate connections.

(test_serving_clients.py drives such a server with the official tritonclient.)
"""

import asyncio
import contextlib
import functools
import http.client
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn import training
from tests.support.held_model import Gate, hold_first_then_queue, save_held_model
from tests.support.inference import assert_error, v2
from tests.support.served_api import (
    check_documented_operations_answer,
    check_only_documented_paths_answer,
    fetch_document,
)
from tests.support.servers import Server
from tests.support.wait import wait_for

X, Y = load_iris(return_X_y=True)
INFER = "/v2/models/iris/infer"
MAX_BODY = 64 * 1024
# Servers here have no gRPC port: test_serving_clients.py runs gRPC over a socket.
NO_GRPC = ("--grpc-port", "0")


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    path = tmp_path_factory.mktemp("socket") / "forest"
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, Y)
    training.save_model(model, path=path, sample_input=X[:1])
    return path, model


@pytest.fixture(scope="module")
def server(forest: tuple[Path, Any]) -> Iterator[Server]:
    server = Server(forest[0], *NO_GRPC, "--max-body-bytes", str(MAX_BODY))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    # Loopback must never go to a proxy from the environment.
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
        yield client


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    """Each sample by name and labels, as Prometheus' own parser reads them."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def samples(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def sample(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of the samples called `name` that have `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in found.items() if n == name and wanted <= have)


# -- health, metadata, inference -------------------------------------------------------------


def test_health_readiness_and_server_metadata(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    for path in ("/v2/models/iris/ready", "/v2/models/iris/versions/2/ready", "/v1/models/iris"):
        response = client.get(path)
        assert (response.status_code, response.json()) == (200, {"name": "iris", "ready": True})
    server = client.get("/v2").json()
    assert server["name"] == "cairn" and server["extensions"] == ["binary_tensor_data"]
    # HEAD: GET's status and headers, and no body on the wire.
    head = client.head("/v2/health/ready")
    assert head.status_code == 200 and head.content == b""
    assert (
        head.headers["content-length"] == client.get("/v2/health/ready").headers["content-length"]
    )


def test_model_metadata_is_the_signature(client: httpx.Client) -> None:
    metadata = client.get("/v2/models/iris/versions/2").json()
    assert (metadata["name"], metadata["versions"], metadata["platform"]) == (
        "iris",
        ["2"],
        "sklearn",
    )
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]


def test_json_inference_is_what_the_model_predicts(
    client: httpx.Client, forest: tuple[Path, Any]
) -> None:
    model = forest[1]
    rows = X[::7]
    response = client.post(INFER, json=v2(rows, id="socket-1"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["inference-id"] == "socket-1"
    # The server does not announce itself (uvicorn's Server header is turned off).
    assert "server" not in response.headers
    body = response.json()
    assert (body["id"], body["model_name"], body["model_version"]) == ("socket-1", "iris", "2")
    predict, proba = body["outputs"]
    assert predict == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [len(rows)],
        "data": model.predict(rows).tolist(),
    }
    assert proba["shape"] == [len(rows), 3]
    np.testing.assert_allclose(
        np.reshape(proba["data"], (len(rows), 3)), model.predict_proba(rows), atol=1e-6
    )
    v1 = client.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
    assert v1.json() == {"predictions": model.predict(rows).tolist()}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ["no body"]),
        (b'{"inputs": [', ["not valid JSON"]),
        (b"[1, 2]", ["JSON object"]),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP99", '
            b'"data": [1, 2, 3, 4]}]}',
            ["'FP99'"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", '
            b'"data": [1, 2, 3]}]}',
            ["shape [1, 3]", "4 features"],
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", '
            b'"data": [1, 2, 3, 4]}]}',
            ["4 values", "needs 8"],
        ),
        (
            b'{"inputs": [{"name": "petals", "shape": [1, 4], "datatype": "FP64", '
            b'"data": [1, 2, 3, 4]}]}',
            ["unknown input 'petals'", "'input-0'"],
        ),
    ],
    ids=["empty", "malformed-json", "not-an-object", "datatype", "shape", "data", "name"],
)
def test_bad_requests_are_400_naming_what_is_wrong(
    client: httpx.Client, content: bytes, words: list[str]
) -> None:
    response = client.post(INFER, content=content, headers={"content-type": "application/json"})
    assert_error(response, 400, *words)


def test_binary_tensor_extension_both_ways(client: httpx.Client, forest: tuple[Path, Any]) -> None:
    """Raw little-endian inputs after the JSON, one output raw and one in JSON: written and read
    here with numpy alone, as the extension describes them."""
    model = forest[1]
    rows = X[[0, 60, 120, 149]]
    raw = rows.astype("<f8").tobytes()
    header = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [
            {"name": "predict_proba", "parameters": {"binary_data": True}},
            {"name": "predict", "parameters": {"binary_data": False}},
        ],
    }
    encoded = json.dumps(header).encode()
    response = client.post(
        INFER,
        content=encoded + raw,
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(encoded)),
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    answer = json.loads(response.content[:length])
    proba, predict = answer["outputs"]
    assert predict["data"] == model.predict(rows).tolist()
    size = proba["parameters"]["binary_data_size"]
    assert "data" not in proba and length + size == len(response.content)
    values = np.frombuffer(response.content[length:], dtype="<f8").reshape(proba["shape"])
    np.testing.assert_allclose(values, model.predict_proba(rows), atol=1e-6)


def test_metrics_count_what_was_answered(client: httpx.Client) -> None:
    before = samples(client)
    for _ in range(3):
        assert client.post(INFER, json=v2(X[:2])).status_code == 200
    assert client.post(INFER, content=b"{").status_code == 400
    assert (
        client.post("/v1/models/iris:predict", json={"instances": [[1, 2, 3]]}).status_code == 400
    )
    after = samples(client)

    def added(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert added("cairn_serving_requests_total", protocol="v2", code="200") == 3
    assert added("cairn_serving_requests_total", protocol="v2", code="400") == 1
    assert added("cairn_serving_requests_total", protocol="v1", code="400") == 1
    assert added("cairn_serving_request_duration_seconds_count", protocol="v2") == 4
    # Six rows predicted, whatever the calls they were batched into.
    assert added("cairn_serving_batch_rows_sum") == 6
    info = [labels for (n, labels) in after if n == "cairn_serving_model_info"]
    assert dict(info[0])["digest"].startswith("sha256:")
    assert sample(after, "cairn_serving_ready") == 1


# -- the OpenAPI document ----------------------------------------------------------------------


def test_the_served_openapi_document_is_valid_and_every_operation_answers_as_documented(
    client: httpx.Client,
) -> None:
    api = fetch_document(client.request, "iris", "2")
    check_documented_operations_answer(client.request, api, X[:2].tolist())


def test_nothing_answers_that_the_openapi_document_does_not_list(client: httpx.Client) -> None:
    api = fetch_document(client.request, "iris", "2")
    check_only_documented_paths_answer(client.request, api)


# -- connections and bodies --------------------------------------------------------------------


def test_keep_alive_serves_many_requests_and_errors_on_one_connection(
    server: Server, forest: tuple[Path, Any]
) -> None:
    model = forest[1]
    connection = http.client.HTTPConnection("127.0.0.1", server.http, timeout=30)
    try:
        connection.connect()
        opened = connection.sock
        local = opened.getsockname()
        for i in range(150):
            kind = i % 5
            if kind == 4:  # an error must not close the connection either
                connection.request(
                    "POST", INFER, body=b"{", headers={"content-type": "application/json"}
                )
            elif kind == 3:
                connection.request("GET", "/nope")
            else:
                body = json.dumps(v2(X[i : i + 1])).encode()
                connection.request(
                    "POST", INFER, body=body, headers={"content-type": "application/json"}
                )
            response = connection.getresponse()
            payload = response.read()
            assert response.status == {3: 404, 4: 400}.get(kind, 200), payload
            assert response.getheader("connection") != "close"
            if kind < 3:
                predict = json.loads(payload)["outputs"][0]["data"]
                assert predict == model.predict(X[i : i + 1]).tolist()
            # http.client opens a new connection when the server closed the last one.
            assert connection.sock is opened and opened.getsockname() == local
    finally:
        connection.close()


def test_bodies_over_the_limit_are_413_and_the_connection_keeps_serving(
    client: httpx.Client,
) -> None:
    ok = v2(X[:1])
    too_big = v2(np.tile(X[:1], (5000, 1)))
    assert len(json.dumps(too_big)) > MAX_BODY
    # Announced by Content-Length: refused before the body is read.
    assert_error(client.post(INFER, json=too_big), 413, str(MAX_BODY))
    assert client.post(INFER, json=ok).status_code == 200

    # Chunked, with no length announced: refused once the limit is passed.
    def chunks() -> Iterator[bytes]:
        for _ in range(2 * MAX_BODY // 1024):
            yield b" " * 1024

    assert_error(client.post(INFER, content=chunks()), 413, str(MAX_BODY))
    assert client.post(INFER, json=ok).status_code == 200


def test_a_request_that_is_not_http_is_refused_and_the_server_keeps_serving(
    server: Server, client: httpx.Client
) -> None:
    with socket.create_connection(("127.0.0.1", server.http), timeout=30) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert client.post(INFER, json=v2(X[:1])).status_code == 200


def test_expect_100_continue_is_answered_before_the_body_is_sent(
    server: Server, forest: tuple[Path, Any]
) -> None:
    # curl sends large bodies this way: it waits for the interim answer before the body.
    body = json.dumps(v2(X[:2])).encode()
    head = (
        f"POST {INFER} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nexpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.http), timeout=30) as raw:
        raw.sendall(head)
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += raw.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        raw.sendall(body)
        reader = raw.makefile("rb")
        response = http.client.HTTPResponse(raw)
        response.fp = reader
        response.begin()
        predict = json.loads(response.read())["outputs"][0]["data"]
    assert response.status == 200
    assert predict == forest[1].predict(X[:2]).tolist()


def test_head_and_empty_answers_are_whole_on_a_kept_connection(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.http, timeout=30)
    try:
        for method, path, status in [
            ("HEAD", "/v2/health/ready", 200),
            ("GET", "/v2/health/live", 200),
            ("HEAD", "/v2/models/iris", 200),
            ("GET", "/v2/models/iris/ready", 200),
        ]:
            connection.request(method, path)
            response = connection.getresponse()
            payload = response.read()
            assert response.status == status, (method, path, payload)
            if method == "HEAD":
                assert payload == b""
    finally:
        connection.close()


# -- batching, shutdown: a model held inside its call --------------------------------------------


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Gate]:
    root = tmp_path_factory.mktemp("socket-held")
    gate = save_held_model(root, LogisticRegression(max_iter=500), X, Y)
    return root / "model", gate


def post_while_held(server: Server, gate: Gate, rows: list[Any]) -> list[httpx.Response]:
    """Each row a request on a connection of its own, the first held in the model while the
    others queue (see hold_first_then_queue); the server's queue depth gauge says when all wait."""

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(rows) + 1, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=server.url, timeout=60, trust_env=False, limits=limits
        ) as client:

            async def queued() -> int:
                found = parse((await client.get("/metrics")).text)
                return round(sample(found, "cairn_serving_queue_depth"))

            def post(row: Any) -> Callable[[], Awaitable[httpx.Response]]:
                return functools.partial(client.post, INFER, json=v2(row))

            return await hold_first_then_queue(gate, [post(r) for r in rows], queued)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "requests_per_call"),
    [
        ((), [1, 7]),
        (("--max-batch-size", "1"), [1] * 8),
        (("--batching", "false"), [1] * 8),
    ],
    ids=["batching", "max-batch-size-1", "batching-off"],
)
def test_requests_on_separate_connections_share_model_calls(
    held: tuple[Path, Gate], options: tuple[str, ...], requests_per_call: list[int]
) -> None:
    path, gate = held
    model = training.load_model(path).estimator.estimator_
    rows = [X[i : i + 1] for i in range(0, 150, 19)]
    server = Server(path, *NO_GRPC, "--runtime", "sklearn", *options)
    try:
        responses = post_while_held(server, gate, rows)
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            found = samples(client)
    finally:
        server.stop()
    # The model's own count of its calls, and the server's metrics agree.
    assert [len(call) for call in gate.calls()] == requests_per_call
    assert sample(found, "cairn_serving_batch_requests_count") == len(requests_per_call)
    assert sample(found, "cairn_serving_batch_requests_sum") == len(rows)
    for row, response in zip(rows, responses, strict=True):
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == model.predict(row).tolist()


def test_sigterm_finishes_the_request_in_flight_then_exits(held: tuple[Path, Gate]) -> None:
    path, gate = held
    model = training.load_model(path).estimator.estimator_
    server = Server(path, *NO_GRPC, "--runtime", "sklearn")
    answers: list[httpx.Response] = []
    gate.forget_calls()
    gate.hold()
    try:
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{server.url}{INFER}", json=v2(X[100:101]), timeout=60, trust_env=False)
            ),
            daemon=True,
        )
        request.start()
        wait_for(gate.calls, timeout=30, message="the request to reach the model", interval=0.01)
        server.process.send_signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", server.http), timeout=5).close()
            except ConnectionRefusedError:
                return True
            return False

        wait_for(refused, timeout=30, message="the listener to close", interval=0.02)
        # A server that does not wait for its requests is gone (or done with its event loop)
        # well within a second of closing its listener: the model call outlasts that.
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=1)
        assert server.process.poll() is None, "the server exited with a request in flight"
        assert request.is_alive(), f"the request ended inside its model call: {answers}"
        gate.release()
        request.join(timeout=60)
        output, _ = server.process.communicate(timeout=60)
    finally:
        gate.release()
        if server.process.poll() is None:
            server.stop()
    assert answers and answers[0].status_code == 200, answers
    assert answers[0].json()["outputs"][0]["data"] == model.predict(X[100:101]).tolist()
    assert server.process.returncode == 0, output.decode()
    assert b"SIGTERM: readiness false, draining" in output and b"stopped after" in output


def test_after_sigterm_the_server_serves_on_while_requests_still_arrive(
    forest: tuple[Path, Any],
) -> None:
    """A control plane slow to drop the pod's endpoint keeps sending requests past the shutdown
    delay: with --shutdown-max-delay they are served, and the listener closes only once a second
    passes without one. Without it, the listener closes at the delay and they are refused."""
    path = forest[0]
    patient = Server(path, *NO_GRPC, "--shutdown-delay", "1", "--shutdown-max-delay", "30")
    strict = Server(path, *NO_GRPC, "--shutdown-delay", "1")
    try:
        patient_answers = requests_around_sigterm(patient, seconds_after=4)
        strict_answers = requests_around_sigterm(strict, seconds_after=4)
        for server in (patient, strict):
            server.process.communicate(timeout=60)
    finally:
        patient.stop()
        strict.stop()
    assert patient_answers and set(patient_answers) == {200}, patient_answers
    assert patient.process.returncode == 0
    # The same traffic without the maximum: refused once the delay is over.
    assert 200 in strict_answers and 0 in strict_answers, strict_answers


def requests_around_sigterm(server: Server, seconds_after: float) -> list[int]:
    """Status of each request sent one after another on new connections, from just before
    SIGTERM to `seconds_after` after it (0: the connection was refused)."""
    answers: list[int] = []
    with httpx.Client(base_url=server.url, timeout=10, trust_env=False) as client:
        client.post(INFER, json=v2(X[:1])).raise_for_status()
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + seconds_after
        while time.monotonic() < deadline:
            try:
                answers.append(
                    client.post(INFER, json=v2(X[:1]), headers={"Connection": "close"}).status_code
                )
            except httpx.TransportError:
                answers.append(0)
            time.sleep(0.05)
    return answers
