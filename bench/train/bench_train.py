"""bench-train: how fast the operator turns TrainingRuns into Jobs, and at what memory cost.

Creates RUNS TrainingRuns at once (their pods select a node that does not exist, so the benchmark
measures the operator rather than the node's capacity to start pods; a suspended run would get no
Job until resumed) against the real cluster, with `cairn-operator` running as a
separate process. For each run it records the time from the create call's return to the moment
its Job appears in a watch. The anchor, measured in the same run, is the API server's own latency
for those create calls. The last line is for scripts:

    run_to_job_p50_s=<x> run_to_job_p99_s=<y> apiserver_create_p50_s=<z> operator_peak_mib=<m>
"""

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    apply_crds,
    bench_namespace,
    peak_rss_mib,
    quantile,
    start_operator,
    stop_process,
)
from kubernetes import client, config, watch

GROUP, VERSION = "cairn.dev", "v1alpha1"


def run_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "model": "bench",
            "imagePullPolicy": "Never",
            "command": ["python", "-c", "pass"],
            "nodeSelector": {"cairn.dev/bench": "no-such-node"},
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    config.load_kube_config()
    core, batch, custom = client.CoreV1Api(), client.BatchV1Api(), client.CustomObjectsApi()
    apply_crds()
    namespace = bench_namespace(core, "bench-train")
    # Runs wait for their output claim to exist; their pods are never scheduled, so it never
    # binds.
    claim = client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="cairn-artifacts"),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"],
            storage_class_name="",
            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Mi"}),
        ),
    )
    core.create_namespaced_persistent_volume_claim(namespace, claim)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{namespace}-operator.log"
    operator = start_operator(namespace, log)

    job_seen: dict[str, float] = {}
    created_at: dict[str, float] = {}
    create_latency: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def watch_jobs() -> None:
        stream = watch.Watch()
        for event in stream.stream(batch.list_namespaced_job, namespace, timeout_seconds=0):
            run = (event["object"].metadata.labels or {}).get("cairn.dev/run")
            if event["type"] == "ADDED" and run:
                with lock:
                    job_seen.setdefault(run, time.monotonic())
                    if len(job_seen) >= args.runs:
                        break
            if done.is_set():
                break
        stream.stop()

    watcher = threading.Thread(target=watch_jobs, daemon=True)
    watcher.start()
    time.sleep(1)  # the watch is established before the first run exists

    def create(i: int) -> None:
        name = f"bench-{i:04d}"
        started = time.monotonic()
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingruns",
                                               run_body(name))  # fmt: skip
        finished = time.monotonic()
        with lock:
            create_latency.append(finished - started)
            created_at[name] = finished

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(create, range(args.runs)))
        deadline = time.monotonic() + args.timeout
        while len(job_seen) < args.runs and time.monotonic() < deadline:
            time.sleep(0.2)
        done.set()
        peak = peak_rss_mib(operator.pid)
    finally:
        stop_process(operator)
        core.delete_namespace(namespace)

    missing = sorted(set(created_at) - set(job_seen))
    if missing:
        print(f"{len(missing)} runs got no Job within {args.timeout:g}s; operator log: {log}")
        return 1
    latency = [job_seen[name] - created_at[name] for name in created_at]
    p50, p99 = quantile(latency, 0.5), quantile(latency, 0.99)
    api50, api99 = quantile(create_latency, 0.5), quantile(create_latency, 0.99)
    print(f"{args.runs} TrainingRuns created at once (16 client threads), operator: cairn-operator")
    print(f"{'measure':<34}{'p50 s':>10}{'p99 s':>10}{'max s':>10}")
    rows = [
        ("run created -> Job created", p50, p99, max(latency)),
        ("API server create (anchor)", api50, api99, max(create_latency)),
    ]
    for label, q50, q99, worst in rows:
        print(f"{label:<34}{q50:>10.3f}{q99:>10.3f}{worst:>10.3f}")
    print(f"operator peak RSS: {peak:.0f} MiB; mean run->Job {statistics.mean(latency):.3f} s")
    print("targets: run->Job p99 <= 3 s, operator peak RSS <= 250 MiB")
    print(
        f"run_to_job_p50_s={p50:.3f} run_to_job_p99_s={p99:.3f} "
        f"apiserver_create_p50_s={api50:.3f} operator_peak_mib={peak:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
