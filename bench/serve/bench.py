"""make bench-serve: cairn-serve against MLServer and a bare Starlette app, REST with wrk and gRPC
with ghz, and against the ceiling of its stack.

Same machine, same models (RandomForest 100 trees and LogisticRegression on iris), same request
bodies (Open Inference Protocol V2, 1 row and 32 rows, asking for `predict`), wrk at 1 and 32
connections; every server with one worker process. The ceiling (ceiling.py) is a raw ASGI app on
cairn's own stack that answers a fixed body. gRPC: cairn and MLServer's gRPC server, same models
and settings, ghz (grpc_load.py) at 1 and 32 concurrent streams on one connection, 1 row.

Installs what it needs: wrk and prometheus (promtool) from Debian, MLServer 1.7.1 +
mlserver-sklearn 1.7.1 in a venv of its own under $CAIRN_CACHE_DIR/bench-venv, ghz built from
its Go module under $CAIRN_CACHE_DIR/bin. Environment: BENCH_DURATION (s per point, default 20),
BENCH_WARMUP (default 5), BENCH_MODELS (default "rf lr"), BENCH_SERVERS (all by default),
BENCH_GRPC (default 1; 0: REST only), BENCH_MONITORING_ROUNDS (default 3; 0: skip it).
Interrupted (SIGTERM, SIGINT), it stops every server it started.

The models are saved with the profile of their training data, so cairn-serve's defaults count
every request into drift bins and keep answers for feedback. The cost of that is measured on its
own: cairn-serve with the defaults and with `--monitoring false --feedback-size 0`, both running,
RF at 32 connections and 1 row, alternated BENCH_MONITORING_ROUNDS times (the median of each), so
that a change of load on a shared machine falls on both; the server's CPU time a request (the
median of each) is printed beside the throughput, a view of the cost less tied to how much of
the machine the server got.

The last four lines are the cairn/MLServer REST throughput ratio at 32 connections, 1 row (RF),
cairn/ceiling at 32 connections, 1 row (LR), cairn/MLServer over gRPC at 32 streams, 1 row (RF),
and the monitoring overhead.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from bench.serve.grpc_load import GHZ_VERSION, GrpcPoint, ensure_ghz, ghz, request_file
from bench.serve.processes import Processes, exit_on_signals
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn import training

HERE = Path(__file__).resolve().parent
# The cairn package this benchmark imported: cairn-serve runs the same code (a worktree's, when
# PYTHONPATH points at one), not whatever the venv's editable install points at.
OPERATOR = Path(training.__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CAIRN_CACHE_DIR", Path.home() / ".cache" / "cairn"))
VENV = CACHE / "bench-venv"
VENV_PACKAGES = [
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "uvloop==0.21.0",  # MLServer 1.7.1 does not start with uvloop 0.23
    "starlette",
    "uvicorn",
    "httptools",
]
DURATION = int(os.environ.get("BENCH_DURATION", "20"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "5"))
MODELS = os.environ.get("BENCH_MODELS", "rf lr").split()
SERVERS = os.environ.get(
    "BENCH_SERVERS", "ceiling cairn cairn-sklearn mlserver mlserver-batch baseline"
).split()
GRPC = os.environ.get("BENCH_GRPC", "1") != "0"
MONITORING_ROUNDS = int(os.environ.get("BENCH_MONITORING_ROUNDS", "3"))
GRPC_SERVERS = ("cairn", "mlserver", "mlserver-batch")
POINTS = [(1, 1), (1, 32), (32, 1), (32, 32)]  # (rows per request, connections)
GRPC_STREAMS = (1, 32)
NO_MODEL = "-"  # the ceiling's rows: it serves no model


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_tools() -> None:
    tools = [("wrk", "wrk")] + ([("promtool", "prometheus")] if "cairn" in SERVERS else [])
    missing = [pkg for cmd, pkg in tools if not shutil.which(cmd)]
    if missing:
        log(f"apt-get install {' '.join(missing)}")
        subprocess.run(["apt-get", "-q", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "-q", "-y", "install", "--no-install-recommends", *missing],
            check=True,
            stdout=subprocess.DEVNULL,
            env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"},
        )
    if not any(server.startswith("mlserver") or server == "baseline" for server in SERVERS):
        return
    python = VENV / "bin" / "python"
    import joblib  # type: ignore[import-untyped]
    import sklearn  # type: ignore[import-untyped]

    # The same scikit-learn, numpy and joblib as here: both load the same pickles.
    pins = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"]
    pins.append(f"joblib=={joblib.__version__}")
    marker = VENV / ".cairn-bench"
    wanted = "\n".join(VENV_PACKAGES + pins)
    if marker.exists() and marker.read_text() == wanted:
        return
    log(f"creating {VENV} with {', '.join(VENV_PACKAGES)}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *VENV_PACKAGES,
            *pins,
        ],
        check=True,
    )
    marker.write_text(wanted)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(work: Path) -> dict[str, Path]:
    X, y = load_iris(return_X_y=True)
    models = {
        "rf": RandomForestClassifier(n_estimators=100, random_state=0),
        "lr": LogisticRegression(max_iter=1000),
    }
    paths = {}
    for name, model in models.items():
        model.fit(X, y)
        path = work / name
        training.save_model(model, path=path, sample_input=X[:1], training_data=X)
        paths[name] = path
    return paths


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    grpc: str | None  # host:port of its gRPC service
    log: Path


def start(server: str, model_dir: Path | None, work: Path, processes: Processes) -> Running:
    port = free_port()
    grpc_port = free_port()
    url = f"http://127.0.0.1:{port}/v2/models/iris/infer"
    logfile = work / f"{server}-{model_dir.name if model_dir else NO_MODEL}.log"
    env = dict(os.environ | {"PYTHONUNBUFFERED": "1"})
    env.pop("PYTHONPATH", None)
    cwd = None
    if server.startswith("cairn"):
        assert model_dir is not None
        env["PYTHONPATH"] = str(OPERATOR)
        command = [sys.executable, "-m", "cairn.serving", "--model-dir", str(model_dir)]
        command += ["--name", "iris", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--grpc-port", str(grpc_port)]
        command += ["--expected-digest", training.load_model(model_dir).digest]
        if server == "cairn-sklearn":
            command += ["--runtime", "sklearn"]
        if server == "cairn-unmonitored":
            command += ["--monitoring", "false", "--feedback-size", "0"]
    elif server == "ceiling":
        # The same uvicorn settings as cairn-serve's (no access log, no Server or Date header,
        # no X-Forwarded-* rewriting).
        command = [sys.executable, "-m", "uvicorn", "bench.serve.ceiling:app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop"]
        command += ["--http", "httptools", "--lifespan", "off", "--no-access-log"]
        command += ["--no-server-header", "--no-date-header", "--no-proxy-headers"]
        command += ["--log-level", "warning"]
        cwd = str(HERE.parents[1])
    elif server == "baseline":
        assert model_dir is not None
        command = [str(VENV / "bin" / "uvicorn"), "baseline:app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
        env |= {"MODEL": str(model_dir / "model.joblib")}
        cwd = str(HERE)
    else:
        assert model_dir is not None
        cwd = str(mlserver_dir(server, model_dir, work, port, grpc_port))
        command = [str(VENV / "bin" / "mlserver"), "start", "."]
    process = processes.start(command, log=logfile, env=env, cwd=cwd)
    log(f"started {server} (pid {process.pid})")
    grpc = f"127.0.0.1:{grpc_port}" if server in GRPC_SERVERS else None
    running = Running(server, process, url, grpc, logfile)
    ready_url = url.rsplit("/", 1)[0] + "/ready" if server not in ("baseline", "ceiling") else None
    deadline = time.monotonic() + 120
    body = request_body(1)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{server} exited: {logfile.read_text()[-2000:]}")
        try:
            if ready_url:
                urllib.request.urlopen(ready_url, timeout=2).read()
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=5).read()
            return running
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{server} did not become ready: {logfile.read_text()[-2000:]}")


def mlserver_dir(server: str, model_dir: Path, work: Path, port: int, grpc_port: int) -> Path:
    directory = work / f"{server}-{model_dir.name}"
    (directory / "iris").mkdir(parents=True, exist_ok=True)
    settings = {"http_port": port, "grpc_port": grpc_port, "metrics_port": free_port()}
    (directory / "settings.json").write_text(json.dumps(settings))
    model_settings: dict[str, object] = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_dir / "model.joblib")},
    }
    if server == "mlserver-batch":
        model_settings |= {"max_batch_size": 32, "max_batch_time": 0.005}
    (directory / "iris" / "model-settings.json").write_text(json.dumps(model_settings))
    return directory


def request_rows(rows: int) -> list[list[float]]:
    X, _ = load_iris(return_X_y=True)
    data: list[list[float]] = X[np.arange(rows) * 7 % len(X)].tolist()
    return data


def request_body(rows: int) -> bytes:
    data = request_rows(rows)
    tensor = {"name": "input-0", "shape": [rows, 4], "datatype": "FP64", "data": data}
    return json.dumps({"inputs": [tensor], "outputs": [{"name": "predict"}]}).encode()


@dataclass
class Point:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = float("nan")  # the server's CPU time per request (all its processes)


def wrk(url: str, rows: int, connections: int, seconds: int, script_dir: Path) -> Point:
    script = script_dir / f"post-{rows}.lua"
    body = request_body(rows).decode()
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in match.groups())
    return Point(rps, _ms(out, "50%"), _ms(out, "99%"), errors)


def _ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def check_metrics(url: str) -> str:
    metrics_url = url.split("/v2/")[0] + "/metrics"
    exposition = urllib.request.urlopen(metrics_url, timeout=5).read()
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True
    )
    batches = re.search(rb"cairn_serving_batch_requests_sum\{[^}]*\} ([\d.e+]+)", exposition)
    calls = re.search(rb"cairn_serving_batch_requests_count\{[^}]*\} ([\d.e+]+)", exposition)
    mean = float(batches.group(1)) / max(float(calls.group(1)), 1) if batches and calls else 0.0
    verdict = (
        "promtool ok"
        if checked.returncode == 0 and not checked.stdout.strip()
        else (f"promtool: {(checked.stdout + checked.stderr).decode().strip()}")
    )
    return f"{verdict}; mean requests per model call {mean:.1f}"


def server_cpu_seconds(group: int) -> float:
    """User and system CPU time of every process in a server's process group (its workers too):
    on a machine shared with other work, CPU per request is steadier than requests per second."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def per_request(cpu_seconds: float, point: Any) -> float:
    requests = point.rps * DURATION
    return cpu_seconds / requests * 1e6 if requests else float("nan")


Results = dict[tuple[str, str, int, int], Point]
GrpcResults = dict[tuple[str, str, int], GrpcPoint]


def main() -> int:
    exit_on_signals()
    ensure_tools()
    results: Results = {}
    grpc_results: GrpcResults = {}
    notes: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as tmp, Processes() as processes:
        work = Path(tmp)
        models = train(work)
        runs = [(m, s) for m in MODELS for s in SERVERS if s != "ceiling"]
        if "ceiling" in SERVERS:
            # Right before the run it is compared with (cairn, LR): on a shared machine the
            # load changes over the half hour the benchmark takes.
            at = runs.index(("lr", "cairn")) if ("lr", "cairn") in runs else 0
            runs.insert(at, (NO_MODEL, "ceiling"))
        ghz_binary: Path | None = None
        for model, server in runs:
            log(f"{model}: starting {server}")
            running = start(server, models.get(model), work, processes)
            try:
                for rows, connections in POINTS:
                    wrk(running.url, rows, connections, WARMUP, work)
                    cpu = server_cpu_seconds(running.process.pid)
                    point = wrk(running.url, rows, connections, DURATION, work)
                    point.cpu_us = per_request(server_cpu_seconds(running.process.pid) - cpu, point)
                    results[(model, server, rows, connections)] = point
                    log(
                        f"{model} {server} rows={rows} c={connections}: {point.rps:.0f} req/s "
                        f"p50 {point.p50_ms:.2f} ms p99 {point.p99_ms:.2f} ms"
                    )
                if GRPC and running.grpc:
                    ghz_binary = ghz_binary or ensure_ghz(CACHE)
                    data = request_file(work, request_rows(1)[0])
                    for streams in GRPC_STREAMS:
                        ghz(ghz_binary, running.grpc, data, streams, WARMUP)
                        cpu = server_cpu_seconds(running.process.pid)
                        grpc_point = ghz(ghz_binary, running.grpc, data, streams, DURATION)
                        grpc_point.cpu_us = per_request(
                            server_cpu_seconds(running.process.pid) - cpu, grpc_point
                        )
                        grpc_results[(model, server, streams)] = grpc_point
                        log(
                            f"{model} {server} gRPC streams={streams}: {grpc_point.rps:.0f} "
                            f"req/s p50 {grpc_point.p50_ms:.2f} ms p99 {grpc_point.p99_ms:.2f} ms"
                        )
                if server.startswith("cairn"):
                    notes.append(f"{model} {server}: {check_metrics(running.url)}")
                    runtime = re.search(r"runtime: (\S+)", running.log.read_text())
                    notes.append(
                        f"{model} {server} runtime: {runtime.group(1) if runtime else '?'}"
                    )
            finally:
                processes.stop(running.process)
        overhead = monitoring_overhead(models, work, processes) if MONITORING_ROUNDS else None
    print_table(results, notes, time.monotonic() - started)
    print_grpc_table(grpc_results)
    print_summary(results, grpc_results, overhead)
    return 0


def _median(points: list[Point]) -> Point:
    ordered = sorted(points, key=lambda p: p.rps)
    return ordered[len(ordered) // 2]


def monitoring_overhead(
    models: Mapping[str, Path], work: Path, processes: Processes
) -> tuple[Point, Point] | None:
    """cairn-serve's defaults (monitoring and feedback on) and with both off, RF at 32
    connections and 1 row, alternated; the median point of each."""
    if "rf" not in models:
        return None
    log("monitoring overhead: cairn (defaults) and cairn-unmonitored, alternated")
    on = start("cairn", models["rf"], work, processes)
    off = start("cairn-unmonitored", models["rf"], work, processes)
    measured: dict[str, list[Point]] = {"on": [], "off": []}
    try:
        for _ in range(MONITORING_ROUNDS):
            for key, running in (("on", on), ("off", off)):
                wrk(running.url, 1, 32, WARMUP, work)
                cpu = server_cpu_seconds(running.process.pid)
                point = wrk(running.url, 1, 32, DURATION, work)
                point.cpu_us = per_request(server_cpu_seconds(running.process.pid) - cpu, point)
                measured[key].append(point)
                log(
                    f"monitoring {key}: {point.rps:.0f} req/s p99 {point.p99_ms:.2f} ms, "
                    f"{point.cpu_us:.0f} us CPU a request"
                )
    finally:
        processes.stop(on.process)
        processes.stop(off.process)
    return _median_cpu(measured["on"]), _median_cpu(measured["off"])


def _median_cpu(points: list[Point]) -> Point:
    """The median point by throughput, with the median CPU time per request (a steadier
    measure of the cost on a machine shared with other work)."""
    cpu = sorted(p.cpu_us for p in points)[len(points) // 2]
    return replace(_median(points), cpu_us=cpu)


def _best_mlserver(points: Mapping[Any, Any], model: str, key: tuple[int, ...]) -> Any:
    """The better of MLServer's two configurations (defaults, adaptive batching) at `key`."""
    candidates = [
        points[(model, server, *key)]
        for server in ("mlserver", "mlserver-batch")
        if (model, server, *key) in points
    ]
    return max(candidates, key=lambda p: p.rps, default=None)


def print_table(results: Results, notes: list[str], took: float) -> None:
    print()
    print(
        f"wrk -t1, {DURATION} s per point after a {WARMUP} s warm-up; one worker per server; "
        f"loopback; total {took / 60:.1f} min"
    )
    print(
        "cairn = cairn-serve defaults (linear models computed directly, others on ONNX Runtime "
        "when verified; adaptive batching); "
        "cairn-sklearn = --runtime sklearn; ceiling = a raw ASGI app on the same stack "
        "answering a fixed body"
    )
    print()
    print("| model | server | rows | conns | req/s | p50 ms | p99 ms | errors | cpu µs/req |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (model, server, rows, connections), p in results.items():
        print(
            f"| {model} | {server} | {rows} | {connections} | {p.rps:.0f} | {p.p50_ms:.2f} | "
            f"{p.p99_ms:.2f} | {p.errors} | {p.cpu_us:.0f} |"
        )
    print()
    for note in notes:
        print(note)
    for model in MODELS:
        cairn = results.get((model, "cairn", 1, 32))
        baseline = results.get((model, "baseline", 1, 32))
        ceiling = results.get((NO_MODEL, "ceiling", 1, 32))
        best = _best_mlserver(results, model, (1, 32))
        if cairn and ceiling:
            single = results.get((model, "cairn", 1, 1)), results.get((NO_MODEL, "ceiling", 1, 1))
            ratio_1 = f"{single[0].rps / single[1].rps:.2f}" if all(single) else "?"  # type: ignore[union-attr]
            print(
                f"{model}: cairn/ceiling throughput at 32 connections "
                f"{cairn.rps / ceiling.rps:.2f}, at 1 connection {ratio_1}; ceiling/cairn CPU "
                f"per request at 32 connections {ceiling.cpu_us / cairn.cpu_us:.2f}"
            )
        if cairn and baseline:
            single = results.get((model, "cairn", 1, 1)), results.get((model, "baseline", 1, 1))
            ratio_1 = f"{single[0].rps / single[1].rps:.2f}" if all(single) else "?"  # type: ignore[union-attr]
            p50 = f"{single[0].p50_ms / single[1].p50_ms:.2f}" if all(single) else "?"  # type: ignore[union-attr]
            print(
                f"{model}: cairn/baseline throughput at 32 connections "
                f"{cairn.rps / baseline.rps:.2f}, at 1 connection {ratio_1}; "
                f"p50 at 1 connection cairn/baseline {p50}"
            )
        if cairn and best:
            print(
                f"{model}: cairn p99 {cairn.p99_ms:.1f} ms, "
                f"best MLServer configuration's p99 {best.p99_ms:.1f} ms"
            )


def print_grpc_table(results: GrpcResults) -> None:
    if not results:
        return
    print()
    print(
        f"gRPC: ghz {GHZ_VERSION}, ModelInfer with 1 row in raw_input_contents, concurrent "
        "streams on one connection"
    )
    print()
    print("| model | server | streams | req/s | p50 ms | p99 ms | errors | cpu µs/req |")
    print("|---|---|---|---|---|---|---|---|")
    for (model, server, streams), p in results.items():
        print(
            f"| {model} | {server} | {streams} | {p.rps:.0f} | {p.p50_ms:.2f} | "
            f"{p.p99_ms:.2f} | {p.errors} | {p.cpu_us:.0f} |"
        )
    print()
    for model in MODELS:
        cairn = results.get((model, "cairn", 32))
        best = _best_mlserver(results, model, (32,))
        if cairn and best:
            print(
                f"{model} gRPC: cairn p99 {cairn.p99_ms:.1f} ms, best MLServer configuration's "
                f"p99 {best.p99_ms:.1f} ms"
            )


def print_summary(
    results: Results, grpc_results: GrpcResults, overhead: tuple[Point, Point] | None
) -> None:
    """The last four lines, which scripts read."""
    cairn = results.get(("rf", "cairn", 1, 32))
    best = _best_mlserver(results, "rf", (1, 32))
    ratio = f"{cairn.rps / best.rps:.2f}" if cairn and best else "n/a"
    print(f"cairn/mlserver throughput ratio at 32 connections, 1 row: {ratio}")
    lr = results.get(("lr", "cairn", 1, 32))
    ceiling = results.get((NO_MODEL, "ceiling", 1, 32))
    ratio = f"{lr.rps / ceiling.rps:.2f}" if lr and ceiling else "n/a"
    print(f"cairn/ceiling throughput ratio at 32 connections, 1 row, lr: {ratio}")
    grpc_cairn = grpc_results.get(("rf", "cairn", 32))
    grpc_best = _best_mlserver(grpc_results, "rf", (32,))
    ratio = f"{grpc_cairn.rps / grpc_best.rps:.2f}" if grpc_cairn and grpc_best else "n/a"
    print(f"cairn/mlserver grpc throughput ratio at 32 streams, 1 row: {ratio}")
    if overhead is None:
        print("monitoring overhead at 32 connections: n/a")
        return
    on, off = overhead
    print(
        f"monitoring overhead at 32 connections: {(1 - on.rps / off.rps) * 100:.1f}% throughput, "
        f"p99 {on.p99_ms:.1f} ms vs {off.p99_ms:.1f} ms, "
        f"CPU a request {(on.cpu_us / off.cpu_us - 1) * 100:+.1f}% ({on.cpu_us:.0f} us vs "
        f"{off.cpu_us:.0f} us)"
    )


if __name__ == "__main__":
    sys.exit(main())
