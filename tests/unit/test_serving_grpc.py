"""The Open Inference Protocol over gRPC, in-process (a grpc.aio server and channel on one loop):
every RPC, typed and raw contents, errors as gRPC statuses, metrics that canary analysis reads."""

import asyncio
import functools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn import training
from cairn.analysis import metrics as analysis
from cairn.serving import ServingApp, build_app
from cairn.serving.config import ServeConfig
from cairn.serving.grpc import generate
from cairn.serving.grpc import grpc_predict_v2_pb2 as pb
from cairn.serving.grpc.server import SERVICE, grpc_server
from cairn.serving.tensors import from_raw, to_raw
from tests.support.held_model import hold_first_then_queue, save_held_model

T = TypeVar("T")
X, Y = load_iris(return_X_y=True)
RPCS: dict[str, tuple[Any, Any]] = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("grpc-models")
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
    app = build_app(ServeConfig(model_dir=models["forest"], name="iris", version="1"))
    yield app, training.load_model(models["forest"]).estimator
    app.close()


class Client:
    """The service's RPCs on a channel, by name, as any client of the protocol calls them."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel

    async def __call__(self, rpc: str, request: Any) -> Any:
        request_type, response_type = RPCS[rpc]
        call = self._channel.unary_unary(
            f"/{SERVICE}/{rpc}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return await call(request, timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(app: ServingApp) -> AsyncIterator[Client]:
    port = _free_port()
    server = grpc_server(app, "127.0.0.1", port)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Client(channel)
    finally:
        await server.stop(None)


def run(app: ServingApp, body: Callable[[Client], Awaitable[T]]) -> T:
    async def main() -> T:
        async with serving(app) as client:
            return await body(client)

    return asyncio.run(main())


def infer_request(rows: Any, raw: bool, datatype: str = "FP64", **fields: Any) -> Any:
    rows = np.asarray(rows)
    request = pb.ModelInferRequest(model_name="iris", **fields)
    tensor = request.inputs.add(name="input-0", datatype=datatype, shape=rows.shape)
    if raw:
        request.raw_input_contents.append(to_raw(rows, datatype))
    elif datatype == "FP64":
        tensor.contents.fp64_contents.extend(rows.reshape(-1).tolist())
    elif datatype == "FP32":
        tensor.contents.fp32_contents.extend(rows.reshape(-1).tolist())
    else:
        tensor.contents.int64_contents.extend(rows.reshape(-1).astype(int).tolist())
    return request


def outputs_of(response: Any) -> dict[str, np.ndarray[Any, Any]]:
    """Each output as an array, from raw or typed contents, as tritonclient reads them."""
    arrays = {}
    for index, output in enumerate(response.outputs):
        shape = tuple(output.shape)
        if response.raw_output_contents:
            arrays[output.name] = from_raw(
                response.raw_output_contents[index], output.datatype, shape
            )
        else:
            field = {"INT64": "int64_contents", "FP64": "fp64_contents"}.get(
                output.datatype, "bytes_contents"
            )
            arrays[output.name] = np.array(getattr(output.contents, field)).reshape(shape)
    return arrays


def test_health_and_metadata(forest: tuple[ServingApp, Any]) -> None:
    async def calls(client: Client) -> list[Any]:
        return [
            await client("ServerLive", pb.ServerLiveRequest()),
            await client("ServerReady", pb.ServerReadyRequest()),
            await client("ModelReady", pb.ModelReadyRequest(name="iris")),
            await client("ModelReady", pb.ModelReadyRequest(name="iris", version="1")),
            await client("ServerMetadata", pb.ServerMetadataRequest()),
            await client("ModelMetadata", pb.ModelMetadataRequest(name="iris")),
        ]

    live, ready, model_ready, version_ready, server, metadata = run(forest[0], calls)
    assert live.live and ready.ready and model_ready.ready and version_ready.ready
    assert server.name == "cairn" and list(server.extensions) == ["binary_tensor_data"]
    assert metadata.name == "iris" and list(metadata.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("input-0", "FP64", [-1, 4])
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [
        ("predict", "INT64", [-1]),
        ("predict_proba", "FP64", [-1, 3]),
    ]


@pytest.mark.parametrize(("raw", "datatype"), [(True, "FP64"), (False, "FP64"), (False, "FP32")])
def test_infer_equals_the_model_in_raw_and_typed_contents(
    forest: tuple[ServingApp, Any], raw: bool, datatype: str
) -> None:
    app, model = forest
    rows = X[::9]
    request = infer_request(rows, raw, datatype, id="g-1", model_version="1")
    response = run(app, lambda client: client("ModelInfer", request))
    assert (response.model_name, response.model_version, response.id) == ("iris", "1", "g-1")
    # Outputs come back in the form the inputs came in.
    assert bool(response.raw_output_contents) == raw
    outputs = outputs_of(response)
    sent = rows.astype(np.float32) if datatype == "FP32" else rows
    assert outputs["predict"].tolist() == model.predict(sent).tolist()
    np.testing.assert_allclose(outputs["predict_proba"], model.predict_proba(sent), atol=1e-6)


def test_column_style_inputs_and_output_selection(forest: tuple[ServingApp, Any]) -> None:
    app, model = forest
    request = pb.ModelInferRequest(model_name="iris")
    for index in range(4):
        tensor = request.inputs.add(name=f"x{index}", datatype="FP64", shape=[3])
        tensor.contents.fp64_contents.extend(X[:3, index].tolist())
    request.outputs.add(name="predict")
    response = run(app, lambda client: client("ModelInfer", request))
    assert [output.name for output in response.outputs] == ["predict"]
    assert outputs_of(response)["predict"].tolist() == model.predict(X[:3]).tolist()


def test_bytes_outputs(models: dict[str, Path]) -> None:
    app = build_app(ServeConfig(model_dir=models["labelled"], name="iris"))
    try:
        for raw in (True, False):
            request = infer_request(X[[0, 149]], raw)

            async def infer(client: Client, request: Any = request) -> Any:
                return await client("ModelInfer", request)

            response = run(app, infer)
            predict = response.outputs[0]
            assert predict.datatype == "BYTES"
            if raw:
                labels = from_raw(response.raw_output_contents[0], "BYTES", (2,)).tolist()
            else:
                labels = list(predict.contents.bytes_contents)
            assert labels == [b"setosa", b"virginica"]
    finally:
        app.close()


def _wrong_contents() -> Any:
    request = infer_request(X[:1], raw=False)
    request.inputs[0].contents.int64_contents.append(1)
    return request


def _raw_count_mismatch() -> Any:
    request = infer_request(X[:1], raw=True)
    request.raw_input_contents.append(b"")
    return request


def _both_forms() -> Any:
    request = infer_request(X[:1], raw=True)
    request.inputs[0].contents.fp64_contents.extend([1.0] * 4)
    return request


@pytest.mark.parametrize(
    ("request_of", "code", "words"),
    [
        (lambda: pb.ModelInferRequest(model_name="nope"), grpc.StatusCode.NOT_FOUND, "'nope'"),
        (
            lambda: infer_request(X[:1], True, model_version="7"),
            grpc.StatusCode.NOT_FOUND,
            "no version '7'",
        ),
        (
            lambda: pb.ModelInferRequest(model_name="iris"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "no inputs",
        ),
        (lambda: infer_request(X[:1, :3], True), grpc.StatusCode.INVALID_ARGUMENT, "4 features"),
        (_wrong_contents, grpc.StatusCode.INVALID_ARGUMENT, "contents.fp64_contents"),
        (_raw_count_mismatch, grpc.StatusCode.INVALID_ARGUMENT, "2 entries for 1 inputs"),
        (_both_forms, grpc.StatusCode.INVALID_ARGUMENT, "send one"),
        (
            lambda: infer_request(np.full((1, 4), np.nan), True),
            grpc.StatusCode.INVALID_ARGUMENT,
            "finite",
        ),
    ],
)
def test_bad_requests_are_grpc_errors_naming_the_problem(
    forest: tuple[ServingApp, Any],
    request_of: Callable[[], Any],
    code: grpc.StatusCode,
    words: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        run(forest[0], lambda client: client("ModelInfer", request_of()))
    assert raised.value.code() == code
    assert words in (raw := raised.value.details() or ""), raw


def test_unknown_rpcs_are_unimplemented(forest: tuple[ServingApp, Any]) -> None:
    async def call(client: Client) -> Any:
        method = client._channel.unary_unary(
            f"/{SERVICE}/RepositoryIndex",
            request_serializer=bytes,
            response_deserializer=bytes,
        )
        return await method(b"", timeout=10)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        run(forest[0], call)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_model_that_failed_verification_is_unavailable_and_counted_as_an_error(
    models: dict[str, Path],
) -> None:
    config = ServeConfig(
        model_dir=models["forest"], name="iris", expected_digest="sha256:" + "0" * 64
    )
    app = build_app(config)

    async def calls(client: Client) -> tuple[Any, list[grpc.StatusCode]]:
        ready = await client("ModelReady", pb.ModelReadyRequest(name="iris"))
        codes = []
        for _ in range(3):
            try:
                await client("ModelInfer", infer_request(X[:1], raw=True))
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
        return ready, codes

    try:
        ready, codes = run(app, calls)
        assert not ready.ready
        assert codes == [grpc.StatusCode.UNAVAILABLE] * 3
        # What the operator's canary analysis reads from the pod: three failed gRPC requests.
        counters = analysis.parse(_metrics_text(app))
        assert (counters.requests, counters.errors) == (3, 3)
    finally:
        app.close()


def _metrics_text(app: ServingApp) -> str:
    from prometheus_client import generate_latest

    return generate_latest(app.metrics.registry).decode()


def test_grpc_requests_are_counted_by_protocol_and_status(models: dict[str, Path]) -> None:
    app = build_app(ServeConfig(model_dir=models["forest"], name="iris"))

    async def calls(client: Client) -> None:
        await client("ModelInfer", infer_request(X[:2], raw=True))
        with pytest.raises(grpc.aio.AioRpcError):
            await client("ModelInfer", infer_request(X[:1, :2], raw=True))

    try:
        run(app, calls)
        text = _metrics_text(app)
        assert (
            'cairn_serving_requests_total{code="200",model="iris",protocol="grpc",version=""} 1.0'
            in text
        )
        assert (
            'cairn_serving_requests_total{code="400",model="iris",protocol="grpc",version=""} 1.0'
            in text
        )
        counters = analysis.parse(text)
        assert (counters.requests, counters.errors) == (2, 0)  # a client's mistake is no error
    finally:
        app.close()


def test_rest_and_grpc_requests_share_model_calls(tmp_path: Path) -> None:
    """Requests of both protocols queued at once share model calls, and each gets its own rows'
    predictions."""
    import httpx

    gate = save_held_model(tmp_path, LogisticRegression(max_iter=500), X, Y)
    app = build_app(ServeConfig(model_dir=tmp_path / "model", name="iris", runtime="sklearn"))
    model = training.load_model(tmp_path / "model").estimator.estimator_
    grpc_rows = [X[i : i + 1] for i in range(0, 60, 2)]
    rest_rows = [X[i : i + 1] for i in range(1, 60, 2)]

    async def both(client: Client) -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cairn.test") as http:

            def rest(rows: Any) -> Callable[[], Awaitable[httpx.Response]]:
                tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64"}
                body = {"inputs": [tensor | {"data": rows.tolist()}]}
                return functools.partial(http.post, "/v2/models/iris/infer", json=body)

            async def queued() -> int:
                return app.batcher.queue_depth  # type: ignore[union-attr]

            # The held request first, then every other row of X over gRPC, the rest over REST.
            calls: list[Callable[[], Awaitable[Any]]] = [
                functools.partial(client, "ModelInfer", infer_request(X[149:], raw=True))
            ]
            calls += [
                functools.partial(client, "ModelInfer", infer_request(r, raw=True))
                for r in grpc_rows
            ]
            calls += [rest(r) for r in rest_rows]
            return await hold_first_then_queue(gate, calls, queued)

    try:
        answers = run(app, both)
    finally:
        app.close()
    grpc_answers, rest_answers = answers[1 : 1 + len(grpc_rows)], answers[1 + len(grpc_rows) :]
    assert [int(outputs_of(a)["predict"][0]) for a in grpc_answers] == [
        int(model.predict(r)[0]) for r in grpc_rows
    ]
    assert [a.json()["outputs"][0]["data"][0] for a in rest_answers] == [
        int(model.predict(r)[0]) for r in rest_rows
    ]
    # The model's own record: after the held request, the 60 queued ones took two calls, and
    # (32 of 60) rows of both protocols met in one of them.
    calls = gate.calls()
    assert [len(rows) for rows in calls] == [1, 32, 28]
    sent_by = {tuple(r[0]): "grpc" for r in grpc_rows} | {tuple(r[0]): "rest" for r in rest_rows}
    assert len(sent_by) == 60, "the two protocols' rows must differ to tell them apart"
    assert {sent_by[tuple(row)] for row in calls[1]} == {"grpc", "rest"}


# -- the generated modules ---------------------------------------------------------------------


def test_the_committed_modules_are_generated_from_the_proto() -> None:
    """python -m cairn.serving.grpc.generate after editing grpc_predict_v2.proto."""
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert generate.compiled_descriptor() == committed


def test_a_protocol_client_library_can_be_imported_beside_the_server() -> None:
    """tritonclient.grpc defines the same inference.* messages in protobuf's default pool; the
    server's live in a pool of their own, so both load in one process."""
    import tritonclient.grpc.service_pb2 as triton  # type: ignore[import-untyped]

    ours = pb.ModelInferRequest(model_name="iris", raw_input_contents=[b"x"])
    theirs = triton.ModelInferRequest.FromString(ours.SerializeToString())
    assert (theirs.model_name, list(theirs.raw_input_contents)) == ("iris", [b"x"])
