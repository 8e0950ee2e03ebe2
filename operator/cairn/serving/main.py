"""cairn-serve: load and verify one model directory, then serve it until SIGTERM.

REST (uvicorn) and gRPC (grpc.aio, --grpc-port) run in one process and one event loop, around one
model, batcher and set of metrics.

Shutdown is graceful: on SIGTERM (or SIGINT) readiness turns false at once, requests keep being
served for --shutdown-delay seconds (so that endpoints stop routing here first) and, up to
--shutdown-max-delay, for as long as inference requests still arrive (a control plane slow to
drop the endpoint), then the listeners close and in-flight requests finish (up to
--drain-timeout); a second signal forces, except while the last batches and the prediction
log's lines are written once the listeners closed.
"""

import asyncio
import gc
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import grpc
import uvicorn

from cairn.serving.app import ServingApp
from cairn.serving.config import ConfigError, ServeConfig, parse_config
from cairn.serving.http_protocol import HttpProtocol
from cairn.serving.model import LoadedModel, ModelLoadError, load

if TYPE_CHECKING:
    from cairn.serving.fetch import Fetched

log = logging.getLogger("cairn.serving")
EXIT_NOT_SERVABLE = 3
# Where the kubelet reads a container's termination message (CAIRN_TERMINATION_LOG overrides).
TERMINATION_LOG = Path("/dev/termination-log")
# After SIGTERM, a second with no new inference request means no endpoint routes here any more.
QUIET_SECONDS = 1.0
# Why a model from an object store is not served: the first word of the NOT READY message, which
# the operator reads from the pod's termination message into the ModelDeployment's conditions.
DOWNLOAD_FAILED = "ArtifactDownloadFailed"
DIGEST_MISMATCH = "ArtifactDigestMismatch"


def _fetch(config: ServeConfig) -> "tuple[Fetched | None, str | None]":
    """The model's files from its object store (through the node's cache), or why not."""
    from cairn.serving.fetch import fetch, refetch_after_mismatch  # boto3: only for --model-uri
    from cairn.storage import DigestMismatch, StorageError

    assert config.model_uri is not None and config.expected_digest is not None
    what = f"model {config.name!r}" + (f" version {config.version}" if config.version else "")
    try:
        try:
            fetched = fetch(
                config.model_uri, config.expected_digest, config.cache_dir, config.cache_max_bytes
            )
        except DigestMismatch as mismatch:
            if config.cache_dir is None:
                raise
            fetched = refetch_after_mismatch(
                config.model_uri, config.expected_digest, config.cache_dir, mismatch
            )
    except DigestMismatch as failure:
        return None, f"{DIGEST_MISMATCH}: {what} is not served: {failure}"
    except (StorageError, OSError) as failure:
        return None, f"{DOWNLOAD_FAILED}: {what} is not served: {failure}"
    log.info(
        "%s: %s in %.2fs",
        config.model_uri,
        "found in the node's model cache, nothing downloaded"
        if fetched.cache_hit
        else f"downloaded {fetched.downloaded_bytes} bytes into the model cache",
        fetched.seconds,
    )
    return fetched, None


def build_app(config: ServeConfig) -> ServingApp:
    """The application, with the model loaded; a model that fails to download, load or verify
    is logged and leaves the app live and not ready."""
    model: LoadedModel | None = None
    error: str | None = None
    fetched = None
    model_dir = config.model_dir
    if config.model_uri is not None:
        fetched, error = _fetch(config)
        model_dir = fetched.directory if fetched else None
    if model_dir is not None:
        try:
            model = _load(config, model_dir, fetched)
        except ModelLoadError as failure:
            error = str(failure)
    if error is not None:
        log.error("NOT READY: %s", error)
    elif model is not None:
        log.info(
            "model %r%s loaded from %s in %.2fs, digest %s; runtime: %s",
            config.name,
            f" version {config.version!r}" if config.version else "",
            model_dir,
            model.load_seconds,
            model.digest,
            model.runtime_reason,
        )
    return ServingApp(config, model, error, fetched=fetched)


def _load(config: ServeConfig, model_dir: Path, fetched: "Fetched | None") -> LoadedModel:
    def attempt(directory: Path, hashed: "Fetched | None") -> LoadedModel:
        return load(
            directory,
            config.name,
            config.version,
            expected_digest=config.expected_digest,
            runtime=config.runtime,
            hashed=hashed.manifest if hashed else None,
        )

    try:
        return attempt(model_dir, fetched)
    except ModelLoadError as failure:
        if not (failure.mismatch and fetched is not None and fetched.cache_hit):
            raise
    # A cached copy that no longer matches its digest (damaged on the node): fetch it again.
    from cairn.serving.fetch import refetch_after_mismatch
    from cairn.storage import DigestMismatch, StorageError

    assert config.model_uri is not None and config.expected_digest is not None
    try:
        again = refetch_after_mismatch(
            config.model_uri, config.expected_digest, config.cache_dir, DigestMismatch("cached")
        )
    except DigestMismatch as failure:
        raise ModelLoadError(f"{DIGEST_MISMATCH}: {failure}", mismatch=True) from None
    except (StorageError, OSError) as failure:
        raise ModelLoadError(f"{DOWNLOAD_FAILED}: {failure}") from None
    return attempt(again.directory, again)


def leave_termination_message(text: str) -> None:
    """Say why the server exits where the kubelet shows it (the container's last state)."""
    configured = os.environ.get("CAIRN_TERMINATION_LOG")
    path = Path(configured) if configured else TERMINATION_LOG
    if configured or path.exists():
        try:
            path.write_text(text[-4096:])
        except OSError as error:
            log.warning("cannot write the termination message to %s: %s", path, error)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_config(argv)
    except ConfigError as error:
        print(f"cairn-serve: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    if config.access_log:
        access = logging.getLogger("cairn.serving.access")
        access.propagate = False
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
    app = build_app(config)
    if app.model is None and config.strict:
        log.error("exiting: --strict and the model is not servable")
        leave_termination_message(app.load_error or "the model is not servable")
        return EXIT_NOT_SERVABLE
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # full collections, which would otherwise stall requests for tens of milliseconds.
    gc.collect()
    gc.freeze()
    try:
        serve(app, config)
    except GrpcListenError as error:
        log.error("%s", error)
        return 1
    finally:
        close_despite_signals(app)
    return 0


def close_despite_signals(app: ServingApp) -> None:
    """Finish the last batches and write the prediction log's queued lines, both bounded in
    time. Once the server has stopped, SIGTERM's handler is again the entry point's, which exits
    at once (cairn.serving_entry): a second signal now, from a person or a supervisor, would
    lose those lines. It is noted instead, and the process ends as soon as they are written (the
    kubelet's SIGKILL at the end of the grace period still ends it)."""
    if threading.current_thread() is not threading.main_thread():
        app.close()  # signal handlers belong to the main thread
        return
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _: received.append(signum))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        app.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for signum in received:
        log.info("%s while closing: exiting now that it is done", signal.Signals(signum).name)


def serve(app: ServingApp, config: ServeConfig) -> None:
    uvicorn_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="auto",
        http=HttpProtocol,
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        # No X-Forwarded-* rewriting: nothing here uses the client's address but the access log.
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(config.drain_timeout_s) or None,
        timeout_keep_alive=75,
    )
    server = _Server(uvicorn_config, app, config)
    started = time.perf_counter()
    log.info(
        "serving on http://%s:%d%s (batching %s, max batch %d, max wait %gms)",
        config.host,
        config.port,
        f" and gRPC on {config.host}:{config.grpc_port}" if config.grpc_port else "",
        "on" if config.batching else "off",
        config.max_batch_size,
        config.max_wait_ms,
    )
    server.run()
    if server.grpc_error is not None:
        raise server.grpc_error
    log.info("stopped after %.1fs", time.perf_counter() - started)


class GrpcListenError(RuntimeError):
    """The gRPC port cannot be listened on."""


class _Server(uvicorn.Server):
    """uvicorn's server, with the gRPC service beside it and readiness turned off before the
    listeners close."""

    def __init__(self, config: uvicorn.Config, app: ServingApp, serve: ServeConfig) -> None:
        super().__init__(config)
        self._app = app
        self._settings = serve
        self._delay = serve.shutdown_delay_s
        self._max_delay = max(serve.shutdown_max_delay_s, serve.shutdown_delay_s)
        self._signalled = False
        self._grpc: grpc.aio.Server | None = None
        self.grpc_error: GrpcListenError | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self._settings.grpc_port:
            # Imported here: a server without gRPC never loads it.
            from cairn.serving.grpc.server import grpc_server

            try:
                self._grpc = grpc_server(self._app, self._settings.host, self._settings.grpc_port)
            except RuntimeError as error:
                self.grpc_error = GrpcListenError(
                    f"cannot listen for gRPC on {self._settings.host}:{self._settings.grpc_port} "
                    f"({error}): is the port taken? (--grpc-port 0: no gRPC)"
                )
                self.should_exit = True
                return
            await self._grpc.start()
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # gRPC drains while HTTP does: both stop taking requests now and finish what they have.
        stopping = None
        if self._grpc is not None:
            grace = self._settings.drain_timeout_s or None
            stopping = asyncio.ensure_future(self._grpc.stop(grace))
        await super().shutdown(sockets)
        if stopping is not None:
            await stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signalled:
            self.should_exit = True
            self.force_exit = True
            return
        self._signalled = True
        log.info("%s: readiness false, draining", signal.Signals(sig).name)
        self._app.begin_shutdown()
        if self._delay <= 0:
            self.should_exit = True
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.should_exit = True
            return
        signalled = loop.time()
        seen = self._app.metrics.requests_seen()
        loop.call_later(QUIET_SECONDS, self._exit_when_quiet, signalled, seen)

    def _exit_when_quiet(self, signalled: float, seen: int) -> None:
        """Close the listeners once the minimum delay has passed and a quiet second with no
        new inference request says nothing routes here any more, or at the maximum delay."""
        loop = asyncio.get_running_loop()
        now_seen = self._app.metrics.requests_seen()
        elapsed = loop.time() - signalled
        quiet = now_seen == seen
        if elapsed >= self._max_delay or (elapsed >= self._delay and quiet):
            if not quiet:
                log.info("requests still arriving %.0fs after the signal: closing", elapsed)
            self.should_exit = True
            return
        loop.call_later(QUIET_SECONDS, self._exit_when_quiet, signalled, now_seen)
