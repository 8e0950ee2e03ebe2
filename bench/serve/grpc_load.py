"""gRPC load: ghz (a standard gRPC load generator), built from its Go module and cached by version.

Every server gets the same request: ModelInfer for `iris`, one row of four FP64 values in
raw_input_contents (what tritonclient.grpc sends), asking for `predict`.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cairn.serving.grpc import grpc_predict_v2_pb2 as pb

GHZ_MODULE = "github.com/bojand/ghz/cmd/ghz"
GHZ_VERSION = "v0.120.0"
PROTO = Path(__file__).resolve().parents[2] / "operator/cairn/serving/grpc/grpc_predict_v2.proto"
CALL = "inference.GRPCInferenceService/ModelInfer"


@dataclass
class GrpcPoint:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = float("nan")  # the server's CPU time per request


def ensure_ghz(cache: Path) -> Path:
    """ghz from the cache, built there first when it is not (Go from PATH, a few minutes)."""
    target = cache / "bin" / f"ghz-{GHZ_VERSION}"
    ghz = target / "ghz"
    if ghz.is_file():
        return ghz
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise RuntimeError(f"building ghz needs Go: install it, or put ghz at {ghz}")
    print(f"[bench] building ghz {GHZ_VERSION} from its Go module into {target}", file=sys.stderr)
    target.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"GOBIN": str(target), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    subprocess.run([go, "install", f"{GHZ_MODULE}@{GHZ_VERSION}"], check=True, env=env)
    return ghz


def request_file(work: Path, row: list[float]) -> Path:
    request = pb.ModelInferRequest(model_name="iris")
    request.inputs.add(name="input-0", datatype="FP64", shape=[1, len(row)])
    request.outputs.add(name="predict")
    request.raw_input_contents.append(np.asarray([row], dtype="<f8").tobytes())
    path = work / "grpc-request.bin"
    path.write_bytes(request.SerializeToString())
    return path


def ghz(binary: Path, address: str, data: Path, streams: int, seconds: int) -> GrpcPoint:
    """`streams` concurrent calls on one connection (HTTP/2 streams), for `seconds`."""
    command = [
        str(binary),
        "--insecure",
        "--proto",
        str(PROTO),
        "--call",
        CALL,
        "--binary-file",
        str(data),
        "--concurrency",
        str(streams),
        "--connections",
        "1",
        "--duration",
        f"{seconds}s",
        # Calls still in flight when the time is up are not counted (nor failed).
        "--duration-stop",
        "ignore",
        "--format",
        "json",
        address,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    percentiles = {
        int(entry["percentage"]): entry["latency"] / 1e6
        for entry in report.get("latencyDistribution") or []
    }
    statuses = report.get("statusCodeDistribution") or {}
    errors = sum(count for status, count in statuses.items() if status != "OK")
    return GrpcPoint(
        rps=float(report["rps"]),
        p50_ms=percentiles.get(50, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
        errors=errors,
    )
