"""inference.GRPCInferenceService on grpc.aio, in the event loop that serves REST.

A second door to the same model: the REST app's batcher (gRPC and REST requests share model
calls), readiness and metrics. Inference requests are counted with protocol="grpc" and, in the
`code` label, the HTTP status that corresponds to the gRPC status (the mapping of
google.rpc.Code), so that dashboards and canary analysis, which count 5xx as the server's
failures, read gRPC answers exactly as REST ones.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import grpc
import orjson

from cairn.serving.app import ServingApp
from cairn.serving.batching import ModelError
from cairn.serving.grpc import grpc_predict_v2_pb2 as pb
from cairn.serving.grpc.codec import decode_request, encode_response
from cairn.serving.protocol import ProtocolError
from cairn.serving.server_info import server_metadata

log = logging.getLogger("cairn.serving")
access_log = logging.getLogger("cairn.serving.access")
SERVICE = "inference.GRPCInferenceService"
PROTOCOL = "grpc"

# The gRPC status of each HTTP status a request can end with, and back (google.rpc.Code).
GRPC_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _refused(error: ProtocolError) -> _Refused:
    return _Refused(GRPC_STATUS.get(error.status, grpc.StatusCode.INVALID_ARGUMENT), error.message)


class InferenceService:
    """The protocol's RPCs, answered from a ServingApp's model, batcher and metrics."""

    def __init__(self, app: ServingApp) -> None:
        self.app = app
        self.config = app.config

    async def server_live(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.app.ready)

    async def model_ready(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelReadyResponse:
        await self._answering(context, self._check_model, request.name, request.version)
        return pb.ModelReadyResponse(ready=self.app.ready)

    async def server_metadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**server_metadata())

    async def model_metadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelMetadataResponse:
        await self._answering(context, self._check_served, request.name, request.version)
        assert self.app.model is not None
        metadata = self.app.model.spec.metadata()
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[_tensor_metadata(tensor) for tensor in metadata["inputs"]],
            outputs=[_tensor_metadata(tensor) for tensor in metadata["outputs"]],
        )

    async def model_infer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ModelInferResponse:
        started = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        response: pb.ModelInferResponse | None = None
        try:
            response = await self._infer(request)
        except _Refused as refused:
            code, message = refused.code, refused.message
        except Exception as error:  # a bug, never the client's input: say so, keep serving
            log.exception("internal error serving gRPC ModelInfer")
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {error}"
        took = time.perf_counter() - started
        self.app.metrics.observe_request(PROTOCOL, HTTP_STATUS[code], took)
        if self.config.access_log:
            self._log(context, code, took, request.id)
        if response is None:
            await context.abort(code, message)
        assert response is not None
        return response

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        self._check_served(request.model_name, request.model_version)
        app = self.app
        assert app.model is not None and app.batcher is not None
        spec, batcher = app.model.spec, app.batcher
        metrics = app.metrics
        metrics.inflight += 1
        try:
            batcher.arriving()
            try:
                decoded = decode_request(request, spec)
            except ProtocolError as error:
                raise _refused(error) from None
            finally:
                batcher.arrived()
            try:
                results = await batcher.predict(decoded.rows, decoded.outputs)
            except (ModelError, ValueError, TypeError) as error:
                raise _Refused(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the model cannot predict these inputs: {error}",
                ) from None
            answered = replace(decoded, request_id=app.answered(decoded, results))
            return encode_response(spec, answered, results, raw=bool(request.raw_input_contents))
        finally:
            metrics.inflight -= 1

    def _check_model(self, name: str, version: str) -> None:
        if name != self.config.name:
            raise _Refused(
                grpc.StatusCode.NOT_FOUND,
                f"unknown model {name!r}: this server serves {self.config.name!r}",
            )
        if version and version != self.config.version:
            serving = (
                f"version {self.config.version!r}" if self.config.version else "no named version"
            )
            raise _Refused(
                grpc.StatusCode.NOT_FOUND,
                f"model {name!r} has no version {version!r} here ({serving})",
            )

    def _check_served(self, name: str, version: str) -> None:
        self._check_model(name, version)
        if self.app.model is None or self.app.batcher is None:
            raise _Refused(
                grpc.StatusCode.UNAVAILABLE,
                f"model {name!r} is not ready: {self.app.load_error}",
            )

    async def _answering(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        check: Callable[[str, str], None],
        name: str,
        version: str,
    ) -> None:
        try:
            check(name, version)
        except _Refused as refused:
            await context.abort(refused.code, refused.message)

    def _log(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        code: grpc.StatusCode,
        took: float,
        request_id: str,
    ) -> None:
        access_log.info(
            "%s",
            orjson.dumps(
                {
                    "time": time.time(),
                    "client": context.peer(),
                    "method": "gRPC",
                    "path": f"/{SERVICE}/ModelInfer",
                    "status": code.name,
                    "duration_ms": round(took * 1000, 3),
                    "id": request_id or None,
                }
            ).decode(),
        )


def _tensor_metadata(tensor: dict[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
    )


Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def handlers(service: InferenceService) -> "grpc.GenericRpcHandler[Any, Any]":
    def unary(handler: Handler, request: Any, response: Any) -> "grpc.RpcMethodHandler[Any, Any]":
        return grpc.unary_unary_rpc_method_handler(
            handler,
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ServerLive": unary(service.server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
            "ServerReady": unary(
                service.server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse
            ),
            "ModelReady": unary(service.model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
            "ServerMetadata": unary(
                service.server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse
            ),
            "ModelMetadata": unary(
                service.model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse
            ),
            "ModelInfer": unary(service.model_infer, pb.ModelInferRequest, pb.ModelInferResponse),
        },
    )


def grpc_server(app: ServingApp, host: str, port: int) -> grpc.aio.Server:
    """The server, bound to host:port (not started); to be created in the loop it runs in."""
    limit = app.config.max_body_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            # Two servers must not share a port unnoticed: binding a taken port fails.
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers((handlers(InferenceService(app)),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server.add_insecure_port(address)
    return server
