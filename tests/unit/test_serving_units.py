"""The model server's parts: options, the batcher, the ONNX runtime's verification, startup."""

import asyncio
import functools
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import (  # type: ignore[import-untyped]
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
)
from sklearn.neighbors import KNeighborsClassifier  # type: ignore[import-untyped]

from cairn import training
from cairn.serving import protocol
from cairn.serving.batching import Batcher
from cairn.serving.config import ConfigError, parse_config
from cairn.serving.grpc import grpc_predict_v2_pb2 as pb
from cairn.serving.main import EXIT_NOT_SERVABLE
from cairn.serving.protocol import ModelSpec, ProtocolError
from cairn.serving.runtime import (
    PROBA_ATOL,
    SklearnRuntime,
    choose_runtime,
    verification_sample,
)

X, Y = load_iris(return_X_y=True)
REPO = Path(__file__).resolve().parents[2]


# -- options ----------------------------------------------------------------------------------


def test_options_from_flags_and_environment() -> None:
    config = parse_config(["--model-dir", "/m", "--name", "iris"], environ={})
    assert (config.port, config.batching, config.max_batch_size, config.runtime) == (
        8080,
        True,
        32,
        "auto",
    )
    assert config.access_log is False
    assert config.grpc_port == 8081
    env = {
        "CAIRN_MODEL_DIR": "/models/iris",
        "CAIRN_MODEL_NAME": "iris",
        "CAIRN_MODEL_VERSION": "3",
        "CAIRN_PORT": "9000",
        "CAIRN_GRPC_PORT": "9001",
        "CAIRN_EXPECTED_DIGEST": "sha256:" + "a" * 64,
        "CAIRN_STRICT": "true",
        "CAIRN_BATCHING": "off",
        "CAIRN_MAX_BATCH_SIZE": "8",
        "CAIRN_MAX_WAIT_MS": "2.5",
        "CAIRN_RUNTIME": "sklearn",
        "CAIRN_ACCESS_LOG": "1",
    }
    config = parse_config([], environ=env)
    assert config.model_dir == Path("/models/iris")
    assert (config.name, config.version, config.port, config.grpc_port) == ("iris", "3", 9000, 9001)
    assert config.strict and not config.batching and config.access_log
    assert (config.max_batch_size, config.max_wait_ms, config.runtime) == (8, 2.5, "sklearn")
    # Flags win over the environment.
    assert parse_config(["--port", "9100"], environ=env).port == 9100
    assert parse_config(["--grpc-port", "0"], environ=env).grpc_port == 0  # no gRPC


def test_grpc_and_http_ports_must_differ() -> None:
    with pytest.raises(ConfigError, match="own port"):
        parse_config(["--model-dir", "/m", "--name", "iris", "--grpc-port", "8080"], environ={})


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--model-dir", "/m", "--name", "iris", "--port", "0"],
        ["--model-dir", "/m", "--name", "iris", "--grpc-port", "70000"],
        ["--model-dir", "/m", "--name", "iris", "--max-batch-size", "0"],
        ["--model-dir", "/m", "--name", "iris", "--runtime", "tensorflow"],
        ["--model-dir", "/m", "--name", "iris", "--max-wait-ms", "-1"],
    ],
)
def test_bad_options_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv, environ={})
    assert exit_info.value.code == 2


def test_bad_environment_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--model-dir", "/m", "--name", "x"], environ={"CAIRN_PORT": "http"})
    assert "CAIRN_PORT" in capsys.readouterr().err


def test_python_m_is_cairn_serve_and_strict_exits_on_a_digest_mismatch(tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=300).fit(X, Y)
    training.save_model(model, path=tmp_path / "m", sample_input=X[:1])
    command = [sys.executable, "-m", "cairn.serving", "--model-dir", str(tmp_path / "m")]
    command += ["--name", "iris", "--strict", "--expected-digest", "sha256:" + "0" * 64]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_NOT_SERVABLE
    assert "NOT READY" in done.stdout and "expected sha256:000" in done.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "cairn.serving", "--help"], capture_output=True, text=True
    ).stdout
    assert "CAIRN_EXPECTED_DIGEST" in help_text and "cairn-serve" in help_text


# -- the batcher -------------------------------------------------------------------------------


class SlowModel:
    """Counts calls and takes `seconds` per call, like a model with a fixed per-call cost."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[int] = []

    def __call__(self, rows: Any, outputs: Any) -> dict[str, Any]:
        self.calls.append(len(rows))
        time.sleep(self.seconds)
        if (rows < 0).any():
            raise ValueError("negative")
        return {"predict": rows.sum(axis=1)}


def test_a_lone_request_is_not_held_waiting() -> None:
    model = SlowModel(0.0)
    batcher = Batcher(model, max_wait=1.0)

    async def main() -> float:
        started = time.perf_counter()
        await batcher.predict(np.ones((1, 2)), ("predict",))
        return time.perf_counter() - started

    try:
        took = asyncio.run(main())
    finally:
        batcher.close()
    assert took < 0.1  # a max wait of 1 s was not spent


def test_requests_arriving_during_a_call_share_the_next_and_keep_their_rows() -> None:
    model = SlowModel(0.05)
    batcher = Batcher(model, max_batch_size=8)

    async def main() -> list[Any]:
        first = asyncio.create_task(batcher.predict(np.full((1, 2), 100.0), ("predict",)))
        await asyncio.sleep(0.01)  # the first call is running now
        rest = [batcher.predict(np.full((i % 3 + 1, 2), float(i)), ("predict",)) for i in range(20)]
        return [await first, *await asyncio.gather(*rest)]

    try:
        results = asyncio.run(main())
    finally:
        batcher.close()
    assert model.calls[0] == 1
    assert len(model.calls) == 1 + 3  # 20 requests in batches of at most 8
    assert results[0]["predict"].tolist() == [200.0]
    for i, result in enumerate(results[1:]):
        assert result["predict"].tolist() == [2.0 * i] * (i % 3 + 1)


def test_a_failing_request_fails_alone() -> None:
    model = SlowModel(0.02)
    batcher = Batcher(model)

    async def main() -> list[Any]:
        first = asyncio.create_task(batcher.predict(np.ones((1, 2)), ("predict",)))
        await asyncio.sleep(0.005)
        rows = [np.ones((1, 2)), -np.ones((1, 2)), np.ones((2, 2))]
        batch = [batcher.predict(r, ("predict",)) for r in rows]
        return [await first, *await asyncio.gather(*batch, return_exceptions=True)]

    try:
        results = asyncio.run(main())
    finally:
        batcher.close()
    assert isinstance(results[2], ValueError)
    assert results[1]["predict"].tolist() == [2.0]
    assert results[3]["predict"].tolist() == [2.0, 2.0]


def test_batching_off_calls_the_model_once_per_request() -> None:
    model = SlowModel(0.01)
    batcher = Batcher(model, enabled=False)

    async def main() -> None:
        await asyncio.gather(*(batcher.predict(np.ones((1, 2)), ("predict",)) for _ in range(5)))

    try:
        asyncio.run(main())
    finally:
        batcher.close()
    assert model.calls == [1, 1, 1, 1, 1]


def _waited_for_one_on_its_way(batcher: Batcher, model: Any) -> float:
    """How long a lone request waited while another's body was still being received, forever."""

    async def main() -> float:
        if isinstance(model, CheapModel):
            await _measured(batcher, model)  # so that the batcher runs it on the loop
        batcher.arriving()
        started = time.perf_counter()
        await batcher.predict(np.ones((1, 2)), ("predict",))
        return time.perf_counter() - started

    try:
        return asyncio.run(main())
    finally:
        batcher.close()


def test_waits_for_requests_on_their_way_at_most_max_wait() -> None:
    model = SlowModel(0.0)
    assert 0.04 <= _waited_for_one_on_its_way(Batcher(model, max_wait=0.05), model) < 0.5


class CheapModel:
    """Answers at once and says on which thread: a model cheap enough to run on the loop."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.threads: list[str] = []

    def __call__(self, rows: Any, outputs: Any) -> dict[str, Any]:
        self.calls.append(len(rows))
        self.threads.append(threading.current_thread().name)
        if (rows < 0).any():
            raise ValueError("negative")
        return {"predict": rows.sum(axis=1)}


async def _measured(batcher: Batcher, model: CheapModel) -> None:
    """The first call (on the worker thread) measures the model; later ones run inline."""
    await batcher.predict(np.ones((1, 2)), ("predict",))
    assert batcher.inline
    model.calls.clear()
    model.threads.clear()


def test_a_cheap_model_runs_on_the_loop_and_still_batches_requests_that_come_together() -> None:
    model = CheapModel()
    batcher = Batcher(model, max_batch_size=8, inline_below=1.0)

    async def main() -> tuple[Any, list[Any]]:
        await _measured(batcher, model)
        alone = await batcher.predict(np.full((1, 2), 3.0), ("predict",))
        together = [
            batcher.predict(np.full((i % 3 + 1, 2), float(i)), ("predict",)) for i in range(20)
        ]
        return alone, await asyncio.gather(*together)

    try:
        alone, together = asyncio.run(main())
    finally:
        batcher.close()
    assert alone["predict"].tolist() == [6.0]
    # The lone request ran alone; the twenty that came together, in batches of at most 8.
    assert len(model.calls) == 1 + 3
    assert set(model.threads) == {threading.main_thread().name}
    for i, result in enumerate(together):
        assert result["predict"].tolist() == [2.0 * i] * (i % 3 + 1)
    assert batcher.queue_depth == 0


def test_on_the_loop_a_failing_request_fails_alone_and_a_cancelled_one_leaves_the_rest() -> None:
    model = CheapModel()
    batcher = Batcher(model, inline_below=1.0)

    async def main() -> tuple[bool, list[Any]]:
        await _measured(batcher, model)
        first = asyncio.create_task(batcher.predict(np.ones((1, 2)), ("predict",)))
        rows = [np.ones((1, 2)), -np.ones((1, 2)), np.ones((2, 2))]
        rest = [asyncio.create_task(batcher.predict(r, ("predict",))) for r in rows]
        await asyncio.sleep(0)  # the first leads: it waits one turn for the others to queue
        first.cancel()
        results = await asyncio.gather(*rest, return_exceptions=True)
        await asyncio.gather(first, return_exceptions=True)
        return first.cancelled(), results

    try:
        cancelled, results = asyncio.run(main())
    finally:
        batcher.close()
    assert cancelled
    assert results[0]["predict"].tolist() == [2.0]
    assert isinstance(results[1], ValueError)
    assert results[2]["predict"].tolist() == [2.0, 2.0]
    assert model.calls[0] == 4  # the three together, without the cancelled one; then each alone


def test_on_the_loop_a_lone_request_waits_for_requests_on_their_way_at_most_max_wait() -> None:
    model = CheapModel()
    batcher = Batcher(model, max_wait=0.05, inline_below=1.0)
    assert 0.04 <= _waited_for_one_on_its_way(batcher, model) < 0.5


# -- decoding -----------------------------------------------------------------------------------

_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)
_ROW = st.lists(_VALUES, min_size=3, max_size=5)
_DATA = st.one_of(
    st.lists(_ROW, min_size=0, max_size=3), _ROW, _VALUES, st.lists(st.lists(_ROW, max_size=2))
)
_SHAPE = st.one_of(
    st.lists(st.integers(-1, 5), min_size=1, max_size=3),
    st.tuples(st.integers(0, 3), st.just(4)).map(list),
    st.just([1, 4.0]),
    st.just([True, 4]),
)
_OUTPUT = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["predict", "predict_proba", "other", 1])}),
    st.fixed_dictionaries(
        {
            "name": st.just("predict"),
            "parameters": st.sampled_from([{}, None, {"binary_data": True}]),
        }
    ),
    st.just("predict"),
)
_INPUT = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input-0", "x0", "", 3]),
        "shape": _SHAPE,
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BOOL", "fp64"]),
        "data": _DATA,
    },
    optional={"parameters": st.sampled_from([{}, None, {"binary_data_size": 8}])},
)
_WILD: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"inputs": st.one_of(st.lists(_INPUT, min_size=1, max_size=2), st.just([]), st.just({}))},
    optional={
        "id": st.sampled_from(["abc", 7, None]),
        "outputs": st.one_of(st.lists(_OUTPUT, max_size=3), st.none(), st.just({})),
        "parameters": st.sampled_from([{}, {"binary_data_output": True}, []]),
    },
)


@st.composite
def _usual(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request of the usual form, or one with one thing changed."""
    rows = draw(st.integers(0, 3))
    number = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**65), 2**65)
    )
    values: list[list[Any]] = draw(
        st.lists(st.lists(number, min_size=4, max_size=4), min_size=rows, max_size=rows)
    )
    data: Any = values if draw(st.booleans()) else [v for row in values for v in row]
    tensor: dict[str, Any] = {"name": "input-0", "shape": [rows, 4], "datatype": "FP64"}
    tensor["data"] = data
    outputs = draw(
        st.sampled_from(
            [None, [{"name": "predict"}], [{"name": "predict_proba"}, {"name": "predict"}]]
        )
    )
    payload: dict[str, Any] = {"inputs": [tensor]}
    if outputs is not None:
        payload["outputs"] = outputs
    if draw(st.booleans()):
        payload["id"] = draw(st.sampled_from(["abc", ""]))
    change = draw(st.sampled_from(["none", "value", "shape", "datatype", "extra"]))
    if change == "value" and values:
        row = draw(st.integers(0, rows - 1))
        values[row][0] = draw(_VALUES)
        tensor["data"] = values
    elif change == "shape":
        tensor["shape"] = draw(_SHAPE)
    elif change == "datatype":
        tensor["datatype"] = draw(st.sampled_from(["FP32", "INT64", "BOOL"]))
    elif change == "extra":
        tensor["parameters"] = draw(st.sampled_from([{}, None]))
    return payload


_PAYLOAD = st.one_of(_usual(), _WILD)


@functools.cache
def _iris_spec() -> ModelSpec:
    model = LogisticRegression(max_iter=300).fit(X, Y)
    return ModelSpec.from_signature("iris", None, "sklearn", signature_of(model))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_PAYLOAD)
def test_the_quick_decoding_accepts_only_what_the_full_one_does_with_the_same_result(
    payload: dict[str, Any],
) -> None:
    spec = _iris_spec()
    quick = protocol._decode_simple(payload, spec)
    try:
        full = protocol.decode_payload(payload, spec)
    except ProtocolError:
        assert quick is None
        return
    if quick is not None:
        assert quick.rows.dtype == full.rows.dtype and np.array_equal(quick.rows, full.rows)
        assert (quick.outputs, quick.request_id) == (full.outputs, full.request_id)
        assert (quick.parameters, quick.binary_outputs) == (full.parameters, full.binary_outputs)


def test_the_usual_request_is_decoded_quickly() -> None:
    spec = _iris_spec()
    for data in ([[5.1, 3.5, 1.4, 0.2]], [5.1, 3.5, 1.4, 0.2], [[5, 3, 1, 0]]):
        payload = {
            "id": "a",
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": data}],
            "outputs": [{"name": "predict"}, {"name": "predict"}],
        }
        quick = protocol._decode_simple(payload, spec)
        assert quick is not None and quick.outputs == ("predict",) and quick.request_id == "a"
        assert quick.rows.dtype == np.float64 and quick.rows.shape == (1, 4)


# -- runtimes ---------------------------------------------------------------------------------


def signature_of(model: Any) -> training.Signature:
    return training.infer_signature(model, X[:1])


@pytest.mark.parametrize(
    "model",
    [
        RandomForestClassifier(n_estimators=30, random_state=0),
        LogisticRegression(max_iter=500),
    ],
    ids=["forest", "logistic"],
)
def test_onnx_runtime_is_chosen_and_agrees_with_scikit_learn(model: Any) -> None:
    model.fit(X, Y)
    choice = choose_runtime(model, signature_of(model), "onnx")
    assert choice.runtime.name == "onnx", choice.reason
    assert choose_runtime(model, signature_of(model), "auto").runtime.name in ("onnx", "linear")
    sample = np.vstack([X, verification_sample(model, signature_of(model))])
    got = choice.runtime.predict(sample, ["predict", "predict_proba"])
    want = SklearnRuntime(model).predict(sample, ["predict", "predict_proba"])
    assert np.array_equal(got["predict"], want["predict"])
    assert np.abs(got["predict_proba"] - want["predict_proba"]).max() <= PROBA_ATOL


@pytest.mark.parametrize(
    ("model", "target"),
    [
        (LogisticRegression(max_iter=500), Y),
        (LogisticRegression(max_iter=500), Y == 1),  # two classes: one score
        (LogisticRegression(max_iter=500), np.array(["setosa", "versicolor", "virginica"])[Y]),
        (LogisticRegression(solver="liblinear"), Y == 2),  # one-vs-rest probabilities
        (RidgeClassifier(), Y),
        (LinearRegression(), X[:, 3]),
        (Ridge(), X[:, 3]),
        (Lasso(alpha=0.01), X[:, 3]),
        (ElasticNet(alpha=0.01), X[:, 3]),
    ],
    ids=[
        "logistic",
        "binary",
        "labels",
        "liblinear",
        "ridge-classifier",
        "linear",
        "ridge",
        "lasso",
        "elastic-net",
    ],
)
def test_linear_models_are_computed_directly_as_scikit_learn_does_whatever_the_batch(
    model: Any, target: Any
) -> None:
    model.fit(X, target)
    signature = signature_of(model)
    choice = choose_runtime(model, signature, "auto")
    assert choice.runtime.name == "linear", choice.reason
    outputs = [tensor["name"] for tensor in signature["outputs"]]
    sample = np.vstack([X, verification_sample(model, signature)])
    got = choice.runtime.predict(sample, outputs)
    want = SklearnRuntime(model).predict(sample, outputs)
    assert got["predict"].dtype == want["predict"].dtype
    if got["predict"].dtype.kind == "f":
        assert np.allclose(got["predict"], want["predict"], rtol=1e-12, atol=0)
    else:
        assert np.array_equal(got["predict"], want["predict"])
    if "predict_proba" in outputs:
        assert np.abs(got["predict_proba"] - want["predict_proba"]).max() <= PROBA_ATOL
    for start, size in ((0, 1), (5, 1), (3, 7), (40, 32)):  # alone or in any batch: the same
        rows = sample[start : start + size]
        alone = choice.runtime.predict(rows, outputs)
        for output in outputs:
            assert np.array_equal(alone[output], got[output][start : start + size])


def test_a_subclass_of_a_linear_model_is_not_computed_directly() -> None:
    class Custom(LogisticRegression):  # type: ignore[misc]
        """Its predict may be anything."""

        def predict(self, X: Any) -> Any:
            return super().predict(X)

    model = Custom(max_iter=500).fit(X, Y)
    assert choose_runtime(model, signature_of(model), "auto").runtime.name != "linear"
    plain = LogisticRegression(max_iter=500).fit(X, Y)
    assert choose_runtime(plain, signature_of(plain), "onnx").runtime.name == "onnx"
    assert choose_runtime(plain, signature_of(plain), "sklearn").runtime.name == "sklearn"


def test_unconvertible_models_fall_back_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    class Custom(KNeighborsClassifier):  # type: ignore[misc]
        """skl2onnx knows KNeighborsClassifier, not this subclass."""

    model = Custom().fit(X, Y)
    choice = choose_runtime(model, signature_of(model), "auto")
    assert choice.runtime.name == "sklearn"
    assert "ONNX Runtime not used" in choice.reason
    assert "ONNX Runtime not used" in caplog.text
    assert choose_runtime(model, signature_of(model), "sklearn").runtime.name == "sklearn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _grpc_ready_and_infer(port: int) -> tuple[bool, list[int]]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        ready = channel.unary_unary(
            "/inference.GRPCInferenceService/ServerReady",
            request_serializer=pb.ServerReadyRequest.SerializeToString,
            response_deserializer=pb.ServerReadyResponse.FromString,
        )(pb.ServerReadyRequest(), timeout=5)
        request = pb.ModelInferRequest(model_name="iris")
        request.inputs.add(name="input-0", datatype="FP64", shape=[1, 4])
        request.raw_input_contents.append(X[:1].tobytes())
        answer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )(request, timeout=5)
    predicted = np.frombuffer(answer.raw_output_contents[0], "<i8").tolist()
    return ready.ready, predicted


def test_sigterm_turns_readiness_off_first_and_drains_in_flight_requests(tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=300).fit(X, Y)
    training.save_model(model, path=tmp_path / "m", sample_input=X[:1])
    port, grpc_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "cairn.serving", "--model-dir", str(tmp_path / "m")]
    command += ["--name", "iris", "--grpc-port", str(grpc_port)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--shutdown-delay", "1"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{base}/v2/health/ready") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        body = b'{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}'
        # A request in flight: its headers and half its body are sent before the signal.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(
                b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:20]
            )
            time.sleep(0.2)
            server.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            assert _get(f"{base}/v2/health/ready") == 503  # not ready, still answering
            assert _get(f"{base}/v2/health/live") == 200
            # gRPC too: not ready, and still answering.
            ready, predicted = _grpc_ready_and_infer(grpc_port)
            assert not ready and predicted == model.predict(X[:1]).tolist()
            client.sendall(body[20:])
            answer = client.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
