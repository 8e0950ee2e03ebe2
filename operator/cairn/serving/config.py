"""cairn-serve's options: every flag also reads a CAIRN_* environment variable."""

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

RUNTIMES = ("auto", "onnx", "sklearn")


@dataclass(frozen=True)
class ServeConfig:
    model_dir: Path | None
    name: str
    version: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    grpc_port: int = 8081  # 0: no gRPC
    expected_digest: str | None = None
    strict: bool = False
    runtime: str = "auto"
    batching: bool = True
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_body_bytes: int = 8 * 1024 * 1024
    body_timeout_s: float = 30.0
    shutdown_delay_s: float = 0.0
    shutdown_max_delay_s: float = 0.0
    ready_while_draining: bool = False
    drain_timeout_s: float = 30.0
    access_log: bool = False
    log_level: str = "info"
    model_uri: str | None = None  # s3://: downloaded (through cache_dir) before loading
    cache_dir: Path | None = None
    cache_max_bytes: int = 20 << 30
    monitoring: bool = True
    feedback_size: int = 50_000  # answers kept for feedback; 0: no feedback
    feedback_ttl_s: float = 3600.0
    log_sample_rate: float = 0.0
    log_dir: Path | None = None
    sensitive_features: tuple[str, ...] = ()
    pod_name: str = ""


# flag → (environment variable, help)
_OPTIONS: dict[str, tuple[str, str]] = {
    "--model-dir": ("CAIRN_MODEL_DIR", "the model directory that cairn.training.save_model wrote"),
    "--model-uri": (
        "CAIRN_MODEL_URI",
        "instead of --model-dir: the model's s3://<bucket>/<prefix>, downloaded before loading "
        "(needs --expected-digest; credentials and endpoint from the AWS_* environment)",
    ),
    "--cache-dir": (
        "CAIRN_CACHE_DIR",
        "with --model-uri: the node's model cache, keyed by digest; a version found there is "
        "not downloaded again (default: a private temporary directory)",
    ),
    "--cache-max-bytes": (
        "CAIRN_CACHE_MAX_BYTES",
        "size of the model cache beyond which least recently used versions are removed "
        "(default 20 GiB)",
    ),
    "--name": ("CAIRN_MODEL_NAME", "the model's name in the protocol's URLs"),
    "--version": ("CAIRN_MODEL_VERSION", "the model's version (URLs .../versions/{v})"),
    "--host": ("CAIRN_HOST", "address to listen on (default 0.0.0.0)"),
    "--port": ("CAIRN_PORT", "port to listen on (default 8080)"),
    "--grpc-port": (
        "CAIRN_GRPC_PORT",
        "port of the protocol's gRPC service, inference.GRPCInferenceService (default 8081; "
        "0: no gRPC)",
    ),
    "--expected-digest": (
        "CAIRN_EXPECTED_DIGEST",
        "sha256:<hex> the directory must have; the model is not served otherwise",
    ),
    "--strict": ("CAIRN_STRICT", "exit non-zero when the model cannot be loaded or verified"),
    "--runtime": (
        "CAIRN_RUNTIME",
        "auto (a plain scikit-learn linear model computed directly, else ONNX Runtime when the "
        "converted model verifies, else scikit-learn), onnx, sklearn",
    ),
    "--batching": ("CAIRN_BATCHING", "adaptive batching of concurrent requests (default on)"),
    "--max-batch-size": ("CAIRN_MAX_BATCH_SIZE", "most requests in one model call (default 32)"),
    "--max-wait-ms": (
        "CAIRN_MAX_WAIT_MS",
        "longest a request waits for requests already arriving to join its batch (default 5)",
    ),
    "--max-body-bytes": ("CAIRN_MAX_BODY_BYTES", "largest request body (default 8 MiB)"),
    "--body-timeout": ("CAIRN_BODY_TIMEOUT", "seconds to receive a request body (default 30)"),
    "--shutdown-delay": (
        "CAIRN_SHUTDOWN_DELAY",
        "seconds between SIGTERM (readiness false) and closing the listener (default 0)",
    ),
    "--shutdown-max-delay": (
        "CAIRN_SHUTDOWN_MAX_DELAY",
        "past --shutdown-delay, keep serving while requests still arrive (endpoints that have not "
        "yet stopped routing here), until a second passes without one, for at most this many "
        "seconds after SIGTERM (default 0: no longer than --shutdown-delay)",
    ),
    "--ready-while-draining": (
        "CAIRN_READY_WHILE_DRAINING",
        "after SIGTERM, answer ready until the listener closes (default off: not ready at once, "
        "for load balancers that route by readiness). On Kubernetes a terminating pod leaves the "
        "Service's ready endpoints anyway, and a ready answer lets kube-proxy keep sending to it "
        "while it is the last one, until a replacement is ready",
    ),
    "--drain-timeout": ("CAIRN_DRAIN_TIMEOUT", "seconds to finish in-flight requests (default 30)"),
    "--access-log": ("CAIRN_ACCESS_LOG", "one JSON line per request on stdout (default off)"),
    "--log-level": ("CAIRN_LOG_LEVEL", "debug, info, warning, error (default info)"),
    "--monitoring": (
        "CAIRN_MONITORING",
        "count inputs and predictions into the baseline's bins, at /v2/models/{name}/monitoring "
        "(default on)",
    ),
    "--feedback-size": (
        "CAIRN_FEEDBACK_SIZE",
        "answers kept by id for POST /v2/models/{name}/feedback (default 50000; 0: no feedback)",
    ),
    "--feedback-ttl": (
        "CAIRN_FEEDBACK_TTL",
        "seconds an answer is kept for feedback (default 3600)",
    ),
    "--log-sample-rate": (
        "CAIRN_LOG_SAMPLE_RATE",
        "share of requests written to the prediction log, 0 to 1 (default 0: none)",
    ),
    "--log-dir": ("CAIRN_LOG_DIR", "directory of the prediction log (JSON Lines per pod and hour)"),
    "--sensitive-features": (
        "CAIRN_SENSITIVE_FEATURES",
        "comma-separated features never written to the prediction log",
    ),
    "--pod-name": ("CAIRN_POD_NAME", "this pod's name, for the prediction log (default: hostname)"),
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """Options that cannot be served with."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean: use true or false")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _share(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else _positive_int(text)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return value


def _port_or_off(text: str) -> int:
    return 0 if text.strip() == "0" else _port(text)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cairn-serve",
        description="Serve one Cairn model directory over the Open Inference Protocol V2 "
        "(and KServe V1), with adaptive batching and Prometheus metrics at /metrics. "
        "Every option can also be set by the environment variable shown.",
    )

    def add(flag: str, **kwargs: object) -> None:
        env, text = _OPTIONS[flag]
        default = environ.get(env)
        if default is not None and "type" in kwargs:
            try:
                default = kwargs["type"](default)  # type: ignore[operator]
            except argparse.ArgumentTypeError as error:
                parser.error(f"{env}: {error}")
        if default is not None:
            kwargs["default"] = default
            kwargs.pop("required", None)
        parser.add_argument(flag, help=f"{text} [env {env}]", **kwargs)  # type: ignore[arg-type]

    add("--model-dir", type=Path, default=None)
    add("--model-uri", default=None)
    add("--cache-dir", type=Path, default=None)
    add("--cache-max-bytes", type=_positive_int, default=20 << 30)
    add("--name", required=True)
    add("--version", default=None)
    add("--host", default="0.0.0.0")
    add("--port", type=_port, default=8080)
    add("--grpc-port", type=_port_or_off, default=8081)
    add("--expected-digest", default=None)
    add("--strict", type=_bool, nargs="?", const=True, default=False)
    add("--runtime", choices=RUNTIMES, default="auto")
    add("--batching", type=_bool, nargs="?", const=True, default=True)
    add("--max-batch-size", type=_positive_int, default=32)
    add("--max-wait-ms", type=_non_negative, default=5.0)
    add("--max-body-bytes", type=_positive_int, default=8 * 1024 * 1024)
    add("--body-timeout", type=_non_negative, default=30.0)
    add("--shutdown-delay", type=_non_negative, default=0.0)
    add("--shutdown-max-delay", type=_non_negative, default=0.0)
    add("--ready-while-draining", type=_bool, nargs="?", const=True, default=False)
    add("--drain-timeout", type=_non_negative, default=30.0)
    add("--access-log", type=_bool, nargs="?", const=True, default=False)
    add("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    add("--monitoring", type=_bool, nargs="?", const=True, default=True)
    add("--feedback-size", type=_non_negative_int, default=50_000)
    add("--feedback-ttl", type=_non_negative, default=3600.0)
    add("--log-sample-rate", type=_share, default=0.0)
    add("--log-dir", type=Path, default=None)
    add("--sensitive-features", type=_names, default=())
    add("--pod-name", default=socket.gethostname())
    return parser


def parse_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServeConfig:
    environ = os.environ if environ is None else environ
    args = build_parser(environ).parse_args(argv)
    if not str(args.name).strip():
        raise ConfigError("--name must not be empty")
    if (args.model_dir is None) == (not args.model_uri):
        raise ConfigError("give exactly one of --model-dir (a directory) and --model-uri (s3://)")
    if args.model_uri and not args.model_uri.startswith("s3://"):
        raise ConfigError(f"--model-uri {args.model_uri!r}: only s3://<bucket>/<prefix> is read")
    if args.model_uri and not args.expected_digest:
        raise ConfigError("--model-uri needs --expected-digest: a download is verified by it")
    if args.log_sample_rate > 0 and args.log_dir is None:
        raise ConfigError("--log-sample-rate needs --log-dir: where the prediction log goes")
    if args.grpc_port == args.port:
        raise ConfigError(f"--grpc-port and --port are both {args.port}: give gRPC its own port")
    return ServeConfig(
        model_dir=Path(args.model_dir) if args.model_dir is not None else None,
        name=args.name,
        version=args.version or None,
        host=args.host,
        port=args.port,
        grpc_port=args.grpc_port,
        expected_digest=args.expected_digest or None,
        strict=args.strict,
        runtime=args.runtime,
        batching=args.batching,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_body_bytes=args.max_body_bytes,
        body_timeout_s=args.body_timeout,
        shutdown_delay_s=args.shutdown_delay,
        shutdown_max_delay_s=args.shutdown_max_delay,
        ready_while_draining=args.ready_while_draining,
        drain_timeout_s=args.drain_timeout,
        access_log=args.access_log,
        log_level=args.log_level,
        model_uri=args.model_uri or None,
        cache_dir=args.cache_dir,
        cache_max_bytes=args.cache_max_bytes,
        monitoring=args.monitoring,
        feedback_size=args.feedback_size,
        feedback_ttl_s=args.feedback_ttl,
        log_sample_rate=args.log_sample_rate,
        log_dir=args.log_dir,
        sensitive_features=tuple(args.sensitive_features),
        pod_name=args.pod_name,
    )
