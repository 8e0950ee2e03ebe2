"""The ASGI application: routing, request bodies, errors, readiness and access logs.

A plain ASGI callable rather than a framework: the server's own per-request overhead is what
decides throughput for cheap models, and every route is known in advance.
"""

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from numpy.typing import NDArray
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from cairn.serving.batching import Batcher, ModelError
from cairn.serving.config import ServeConfig
from cairn.serving.deadlines import BodyTimeout, Deadlines
from cairn.serving.feedback import OUTCOMES, FeedbackError, PredictionStore, row_values
from cairn.serving.metrics import ServingMetrics, predicted
from cairn.serving.model import LoadedModel
from cairn.serving.monitoring import Monitor, read_baseline
from cairn.serving.openapi import openapi_document
from cairn.serving.predictionlog import PredictionLog
from cairn.serving.protocol import (
    Decoded,
    ModelSpec,
    ProtocolError,
    decode_v1,
    decode_v2,
    dumps,
    encode_v1,
    encode_v2,
    parse_json,
)
from cairn.serving.server_info import server_metadata

if TYPE_CHECKING:
    from cairn.serving.fetch import Fetched

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("cairn.serving")
access_log = logging.getLogger("cairn.serving.access")
_JSON = b"application/json"
_OCTETS = b"application/octet-stream"
# The binary tensor extension: the size of the JSON that precedes a body's raw tensors.
_JSON_LENGTH = b"inference-header-content-length"
# Every answer's id (also in a V2 body's "id"), for POST .../feedback.
_INFERENCE_ID = b"inference-id"


class _RandomIds:
    """32 random hex digits each, like uuid4().hex (as hard to guess, for feedback), cut from
    one read of os.urandom per IDS_PER_READ ids: a system call per answer is about a microsecond
    here. Used on the event loop's thread only."""

    IDS_PER_READ = 256

    def __init__(self) -> None:
        self._digits = ""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._digits):
            self._digits = os.urandom(16 * self.IDS_PER_READ).hex()
            at = 0
        self._at = at + 32
        return self._digits[at : at + 32]


# Every answer without an id of its own gets one.
new_answer_id = _RandomIds()


class _Answer(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = _JSON
    protocol: str = ""  # v1 or v2 for an inference request (counted in the metrics)
    request_id: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass
class _Route:
    kind: str  # infer, v1-predict, model-metadata, model-ready, v1-model, monitoring, feedback
    model: str
    version: str | None

    @property
    def protocol(self) -> str:
        """v1 or v2 for an inference request (counted in the metrics), "" for anything else."""
        return _inference_protocol(self)


# Paths routed so far (to a model route or None), up to ROUTES_CACHED of them: every request
# of a client asks for the same few.
ROUTES_CACHED = 256


class ServingApp:
    """Serves one model (or, when it failed to load, says why with 503s)."""

    def __init__(
        self,
        config: ServeConfig,
        model: LoadedModel | None,
        load_error: str | None = None,
        fetched: "Fetched | None" = None,
    ) -> None:
        self.config = config
        self.model = model
        self.load_error = load_error
        self.shutting_down = False
        spec = model.spec if model else None
        self._classes = spec.classes if spec else None
        self.monitor: Monitor | None = None
        self.feedback: PredictionStore | None = None
        self.prediction_log: PredictionLog | None = None
        if model is not None and spec is not None:
            if config.monitoring:
                self.monitor = Monitor(*read_baseline(model.saved.path, spec.columns))
            if config.feedback_size:
                self.feedback = PredictionStore(
                    config.feedback_size, config.feedback_ttl_s, spec.classes is not None
                )
            if config.log_sample_rate > 0 and config.log_dir is not None:
                self.prediction_log = PredictionLog(
                    config.log_dir,
                    config.log_sample_rate,
                    spec.columns,
                    config.sensitive_features,
                    config.pod_name,
                )
        self.metrics = ServingMetrics(
            config.name,
            config.version,
            spec.columns if spec else (),
            spec.classes if spec else None,
            sinks=[self.monitor.observe] if self.monitor else (),
        )
        self.metrics.registry.register(MonitoringCollector(self))
        self.batcher: Batcher | None = None
        if model is not None:
            self.metrics.info.labels(
                model=config.name,
                version=config.version or "",
                digest=model.digest,
                runtime=model.runtime.name,
            ).set(1)
            self.batcher = Batcher(
                model.predict,
                enabled=config.batching,
                max_batch_size=config.max_batch_size,
                max_wait=config.max_wait_ms / 1000,
                on_batch=self.metrics.observe_batch,
                single_threaded=model.runtime.single_threaded,
            )
            batcher = self.batcher
            self.metrics.queue_depth.set_function(lambda: batcher.queue_depth)
        if fetched is not None:
            self.metrics.observe_fetch(fetched.cache_hit, fetched.downloaded_bytes, fetched.seconds)
        self.metrics.ready.set(1 if self.ready else 0)
        self._openapi = dumps(openapi_document())
        self._deadlines = Deadlines(config.body_timeout_s)
        self._routes: dict[str, tuple[_Route | None, str]] = {}  # path: route, its protocol

    @property
    def ready(self) -> bool:
        return self.model is not None and not self.shutting_down

    def begin_shutdown(self) -> None:
        """Readiness goes false first (unless ready while draining); requests are still served
        until the listener closes."""
        if not self.config.ready_while_draining:
            self.shutting_down = True
            self.metrics.ready.set(0)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        if self.prediction_log is not None:
            self.prediction_log.close()

    def answered(self, decoded: Decoded, results: dict[str, NDArray[Any]]) -> str:
        """The answer's id (the request's, or a new one), with its predictions kept for
        feedback and offered to the prediction log."""
        answer_id = decoded.request_id or new_answer_id()
        if self.feedback is None and self.prediction_log is None:
            return answer_id
        labels = predicted(results, self._classes)
        if labels is None:
            return answer_id
        if self.feedback is not None:
            self.feedback.remember(answer_id, labels)
        if self.prediction_log is not None:
            self.prediction_log.offer(answer_id, decoded.rows, row_values(labels))
        return answer_id

    def monitoring(self) -> dict[str, Any]:
        """What GET .../monitoring answers: the counters of inputs, predictions and feedback."""
        self.metrics.data.flush()
        found: dict[str, Any] = {"model": self.config.name, "version": self.config.version}
        if self.monitor is not None:
            found |= self.monitor.snapshot()
        if self.feedback is not None:
            found["feedback"] = self.feedback.snapshot()
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        # Inference requests are counted whatever becomes of them: a 5xx is exactly what canary
        # analysis must see.
        routed = self._routes.get(path)
        if routed is None:
            route = _route(path)
            routed = (route, route.protocol if route is not None else "")
            if len(self._routes) < ROUTES_CACHED:
                self._routes[path] = routed
        route, protocol = routed
        try:
            answer = await self._dispatch(method, path, route, scope, receive)
        except ProtocolError as error:
            answer = _Answer(error.status, _error(error.message), headers=error.headers)
        except Exception as error:  # a bug, never the client's input: say so, keep serving
            log.exception("internal error serving %s %s", method, path)
            answer = _Answer(500, _error(f"internal error: {error}"))
        status, body = answer.status, answer.body
        if answer.protocol:
            protocol = answer.protocol
        headers = [(b"content-type", answer.content_type), (b"content-length", b"%d" % len(body))]
        headers.extend(answer.headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        took = time.perf_counter() - started
        if protocol:
            self.metrics.observe_request(protocol, status, took)
        if self.config.access_log:
            client = scope.get("client")
            access_log.info(
                "%s",
                orjson.dumps(
                    {
                        "time": time.time(),
                        "client": f"{client[0]}:{client[1]}" if client else None,
                        "method": method,
                        "path": path,
                        "status": status,
                        "duration_ms": round(took * 1000, 3),
                        "bytes": len(body),
                        "id": answer.request_id,
                    }
                ).decode(),
            )

    async def _dispatch(
        self, method: str, path: str, route: "_Route | None", scope: Scope, receive: Receive
    ) -> _Answer:
        if route is not None:  # the hot path: inference
            return await self._model_route(route, method, scope, receive)
        if path == "/v2/health/live":
            _only(method, "GET")
            return _Answer(200, b'{"live":true}')
        if path == "/v2/health/ready":
            _only(method, "GET")
            return _Answer(200 if self.ready else 503, dumps({"ready": self.ready}))
        if path in ("/v2", "/v2/"):
            _only(method, "GET")
            return _Answer(200, dumps(server_metadata()))
        if path == "/metrics":
            _only(method, "GET")
            metrics = generate_latest(self.metrics.registry)
            return _Answer(200, metrics, CONTENT_TYPE_LATEST.encode())
        if path == "/openapi.json":
            _only(method, "GET")
            return _Answer(200, self._openapi)
        raise ProtocolError(404, f"no such endpoint: {path} (the API is at /openapi.json)")

    async def _model_route(
        self, route: _Route, method: str, scope: Scope, receive: Receive
    ) -> _Answer:
        protocol = "v1" if route.kind.startswith("v1") else "v2"
        posted = route.kind in ("infer", "v1-predict", "feedback")
        _only(method, "POST" if posted else "GET")
        if route.model != self.config.name:
            raise ProtocolError(
                404, f"unknown model {route.model!r}: this server serves {self.config.name!r}"
            )
        if route.version is not None and route.version != self.config.version:
            serving = (
                f"version {self.config.version!r}" if self.config.version else "no named version"
            )
            raise ProtocolError(
                404, f"model {route.model!r} has no version {route.version!r} here ({serving})"
            )
        if route.kind in ("model-ready", "v1-model"):
            ready = dumps({"name": route.model, "ready": self.ready})
            return _Answer(200 if self.ready else 503, ready)
        if self.model is None or self.batcher is None:
            raise ProtocolError(503, f"model {route.model!r} is not ready: {self.load_error}")
        spec = self.model.spec
        if route.kind == "model-metadata":
            return _Answer(200, dumps(spec.metadata()))
        if route.kind == "monitoring":
            if self.monitor is None and self.feedback is None:
                raise ProtocolError(404, "monitoring is off on this server (--monitoring false)")
            return _Answer(200, dumps(self.monitoring()))
        if route.kind == "feedback":
            return await self._feedback(scope, receive)
        return await self._infer(spec, self.batcher, scope, receive, protocol)

    async def _feedback(self, scope: Scope, receive: Receive) -> _Answer:
        if self.feedback is None:
            raise ProtocolError(404, "feedback is off on this server (--feedback-size 0)")
        length, _ = _body_headers(scope, "v2")
        body = await _read_body(length, receive, self.config.max_body_bytes, self._deadlines)
        try:
            outcome = self.feedback.score(parse_json(body))
        except FeedbackError as error:
            raise ProtocolError(400, str(error)) from None
        return _Answer(200, dumps(outcome))

    async def _infer(
        self,
        spec: ModelSpec,
        batcher: Batcher,
        scope: Scope,
        receive: Receive,
        protocol: str,
    ) -> _Answer:
        metrics = self.metrics
        metrics.inflight += 1
        try:
            batcher.arriving()
            try:
                content_length, json_length = _body_headers(scope, protocol)
                body = await _read_body(
                    content_length, receive, self.config.max_body_bytes, self._deadlines
                )
                decoded = (
                    decode_v2(body, spec, json_length)
                    if protocol == "v2"
                    else decode_v1(body, spec)
                )
            except ProtocolError as error:
                return _Answer(
                    error.status, _error(error.message), protocol=protocol, headers=error.headers
                )
            finally:
                batcher.arrived()
            try:
                results = await batcher.predict(decoded.rows, decoded.outputs)
            except (ModelError, ValueError, TypeError) as error:
                message = f"the model cannot predict these inputs: {error}"
                return _Answer(
                    400, _error(message), protocol=protocol, request_id=decoded.request_id
                )
            answer_id = self.answered(decoded, results)
            id_header = ((_INFERENCE_ID, answer_id.encode()),)
            if protocol == "v1":
                body = dumps(encode_v1(results))
                return _Answer(
                    200, body, protocol=protocol, request_id=answer_id, headers=id_header
                )
            payload, blobs = encode_v2(spec, decoded, results, answer_id)
            header = dumps(payload)
            if not blobs:
                return _Answer(
                    200, header, protocol=protocol, request_id=answer_id, headers=id_header
                )
            return _Answer(
                200,
                b"".join([header, *blobs]),
                _OCTETS,
                protocol,
                answer_id,
                ((_JSON_LENGTH, b"%d" % len(header)), *id_header),
            )
        finally:
            metrics.inflight -= 1


def _body_headers(scope: Scope, protocol: str) -> tuple[int | None, int | None]:
    """What an inference request's headers say about its body: its Content-Length and, in the
    binary tensor extension, the size of the JSON before its tensors."""
    content_length = json_length = None
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-length":
            content_length = _header_int(value, "Content-Length")
        elif name == b"content-type":
            content_type = value
        elif name == _JSON_LENGTH and protocol == "v2":
            json_length = _header_int(value, "Inference-Header-Content-Length")
    if content_type and content_type != b"application/json":
        _check_content_type(content_type, binary=json_length is not None)
    return content_length, json_length


def _header_int(value: bytes, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ProtocolError(400, f"{name} is not a number") from None
    if number < 0:
        raise ProtocolError(400, f"{name} must not be negative")
    return number


_READABLE = (b"application/json", b"application/octet-stream")


def _check_content_type(content_type: bytes, binary: bool) -> None:
    """JSON (application/json, or any +json type), or the binary tensor extension's
    application/octet-stream; a request without a Content-Type is read as JSON."""
    media = content_type.split(b";", 1)[0].strip().lower()
    if (
        media in _READABLE
        or media.endswith(b"+json")
        or (binary and media.startswith(b"application/"))
    ):
        return
    shown = media.decode("latin-1")
    raise ProtocolError(
        415,
        f"Content-Type {shown} is not read here: send a JSON body with Content-Type "
        "application/json (curl: -H 'Content-Type: application/json'), or tensors in the "
        "binary tensor extension with Inference-Header-Content-Length",
    )


_ALLOW = {"GET": b"GET, HEAD", "POST": b"POST"}


def _only(method: str, allowed: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise ProtocolError(
            405,
            f"method {method} is not allowed here: use {allowed}",
            ((b"allow", _ALLOW[allowed]),),
        )


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})


def _inference_protocol(route: "_Route | None") -> str:
    """v1 or v2 for an inference request, "" for anything else."""
    if route is None or route.kind not in ("infer", "v1-predict"):
        return ""
    return "v1" if route.kind.startswith("v1") else "v2"


def _route(path: str) -> _Route | None:
    """Model routes: /v2/models/{m}[/versions/{v}][/ready|/infer|/monitoring|/feedback],
    /v1/models/{m}[:predict]."""
    if path.startswith("/v2/models/"):
        parts = path[len("/v2/models/") :].split("/")
        if not parts[0]:
            return None
        name, rest = parts[0], parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
            version, rest = rest[1], rest[2:]
        if not rest:
            return _Route("model-metadata", name, version)
        if rest == ["infer"]:
            return _Route("infer", name, version)
        if rest == ["ready"]:
            return _Route("model-ready", name, version)
        if rest == ["monitoring"]:
            return _Route("monitoring", name, version)
        if rest == ["feedback"]:
            return _Route("feedback", name, version)
        return None
    if path.startswith("/v1/models/"):
        tail = path[len("/v1/models/") :]
        if not tail or "/" in tail:
            return None
        if tail.endswith(":predict"):
            name = tail[: -len(":predict")]
            return _Route("v1-predict", name, None) if name else None
        return _Route("v1-model", tail, None)
    return None


async def _read_body(
    length: int | None, receive: Receive, limit: int, deadlines: Deadlines
) -> bytes:
    if length is not None and length > limit:
        raise ProtocolError(413, f"the request body has {length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    task = deadlines.start()
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ProtocolError(400, "the client disconnected before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ProtocolError(413, f"the request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        try:
            deadlines.raise_if_expired(task)
        except BodyTimeout as timeout:
            raise ProtocolError(408, str(timeout)) from None
        raise
    finally:
        deadlines.stop(task)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class MonitoringCollector(Collector):
    """Feedback and the prediction log, as Prometheus counters: canary analysis reads a track's
    accuracy from them, operators the log's dropped lines."""

    def __init__(self, app: ServingApp) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        app = self._app
        labels = {"model": app.config.name, "version": app.config.version or ""}
        names, values = list(labels), list(labels.values())
        if app.feedback is not None:
            scores = app.feedback.snapshot()
            items = CounterMetricFamily(
                "cairn_serving_feedback_items",
                "Feedback items by outcome (matched, unknown, expired, duplicate, invalid)",
                labels=[*names, "outcome"],
            )
            for outcome in OUTCOMES:
                items.add_metric([*values, outcome], scores["items"][outcome])
            yield items
            for name, text, key in (
                ("cairn_serving_feedback_rows", "Answered rows given a label", "matchedRows"),
                (
                    "cairn_serving_feedback_correct_rows",
                    "Answered rows whose label was the predicted class",
                    "correctRows",
                ),
                (
                    "cairn_serving_feedback_absolute_error",
                    "Sum of |prediction - label| over the labelled rows (a regressor)",
                    "absoluteError",
                ),
            ):
                family = CounterMetricFamily(name, text, labels=names)
                family.add_metric(values, scores[key])
                yield family
        log = app.prediction_log
        if log is not None:
            lines = CounterMetricFamily(
                "cairn_serving_prediction_log_lines",
                "Rows of the prediction log, written or dropped",
                labels=[*names, "outcome"],
            )
            lines.add_metric([*values, "written"], log.written)
            lines.add_metric([*values, "dropped"], log.dropped)
            yield lines
