"""bench-registry: what a large registry costs the operator at rest, and how fast it judges a new
version there.

One Model with VERSIONS ModelVersions and DEPLOYMENTS ModelDeployments following its alias
(scaled to zero: no pod runs), with `cairn-operator` as a separate process. Once everything is
judged and served, the benchmark counts the operator's API requests for REST_SECONDS at rest from
the API server's own counters (apiserver_request_total: every request to the resources the
operator touches, watches excluded, in a cluster where nothing else is at work), then creates
NEW versions one at a time and records the time from each create call's return to its Ready
condition in a watch, beside the API server's own latency for those creates. The last line is
for scripts:

    registry_rest_requests_per_min=<n> new_version_ready_p99_s=<s> operator_peak_mib=<m>

`--operator-src DIR` runs the operator from another checkout's operator/ folder (its CRDs from
DIR/../crds), to measure an earlier version of the code on the same cluster.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
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
from prometheus_client.parser import text_string_to_metric_families

GROUP, VERSION = "cairn.dev", "v1alpha1"
REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
RESYNC_SECONDS = 30  # the operator's periodic resync of Models, versions and ModelDeployments
# The resources the operator reads and writes for Models, versions and ModelDeployments.
RESOURCES = {
    ("cairn.dev", "models"),
    ("cairn.dev", "modelversions"),
    ("cairn.dev", "modeldeployments"),
    ("cairn.dev", "trainingruns"),
    ("apps", "deployments"),
    ("", "services"),
    ("", "pods"),
    ("", "events"),
}
Body = dict[str, Any]


Requests = dict[tuple[str, str, str], float]


def api_requests() -> Requests:
    """The API server's request counts by (resource, subresource, verb), watches excluded."""
    text = subprocess.run(
        ["kubectl", "get", "--raw", "/metrics"], check=True, capture_output=True, text=True
    ).stdout
    counts: Requests = defaultdict(float)
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name != "apiserver_request_total" or labels.get("verb") == "WATCH":
                continue
            if (labels.get("group", ""), labels.get("resource", "")) in RESOURCES:
                key = (labels["resource"], labels.get("subresource", ""), labels["verb"])
                counts[key] += sample.value
    return counts


def version_body(number: int) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"bench-v{number}", "labels": {"cairn.dev/model": "bench"}},
        "spec": {
            "model": "bench",
            "version": number,
            "artifact": {"uri": f"pvc://cairn-artifacts/bench/run-{number}", "digest": DIGEST},
            "metrics": {"accuracy": 0.9 + (number % 10) / 100},
        },
    }


def deployment_body(index: int) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": f"bench-{index:02d}"},
        "spec": {"model": "bench", "alias": "production", "replicas": 0},
    }


def ready(version: Body) -> bool:
    conditions = (version.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait(what: str, check: Any, timeout: float) -> None:
    """Until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(1)


def quiet_after(read: Any, timeout: float, window: float = 15) -> None:
    """Wait until the operator's startup work is over: a whole window with no write request.
    kopf runs every object's create and resume handlers when it starts, and records that it did
    on each object; with hundreds of objects that goes on after they are all judged."""
    deadline = time.monotonic() + timeout
    before = read()
    while time.monotonic() < deadline:
        time.sleep(window)
        now = read()
        writes = sum(
            count - before.get(key, 0.0)
            for key, count in now.items()
            if key[2] not in ("GET", "LIST")
        )
        if writes == 0:
            return
        before = now
    raise SystemExit(f"the operator was still writing {timeout:g}s after it served everything")


def operator_command(source: Path | None) -> tuple[list[str] | None, dict[str, str] | None]:
    if source is None:
        return None, None
    env = {**os.environ, "PYTHONPATH": str(source)}
    return [sys.executable, "-m", "cairn.operator_main"], env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=500)
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--new", type=int, default=20, help="new versions timed at the end")
    parser.add_argument("--rest-seconds", type=float, default=120)
    parser.add_argument(
        "--ready-timeout", type=float, default=120, help="a new version later than this is late"
    )
    parser.add_argument("--operator-src", type=Path, help="another checkout's operator/ folder")
    args = parser.parse_args()

    # A SIGTERM (a CI timeout) unwinds like Ctrl-C: the operator and the namespace are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config.load_kube_config()
    core = client.CoreV1Api()
    custom: Any = client.CustomObjectsApi()
    if args.operator_src:
        apply_crds((args.operator_src / "../crds").resolve())
    else:
        apply_crds()
    namespace = bench_namespace(core, "bench-registry")

    def create(plural: str, body: Body) -> Body:
        made: Body = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        return made

    model = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": "bench"},
        "spec": {
            "policy": {"gates": [{"metric": "accuracy", "op": ">=", "threshold": 0.5}]},
            "aliases": {"production": args.versions},
        },
    }
    create("models", model)
    for number in range(1, args.versions + 1):
        create("modelversions", version_body(number))
    for index in range(args.deployments):
        create("modeldeployments", deployment_body(index))
    # Each ModelDeployment comes with a Deployment and a Service.
    objects = 1 + args.versions + args.deployments * 3

    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{namespace}-operator.log"
    command, env = operator_command(args.operator_src)
    started = time.monotonic()
    operator = start_operator(namespace, log, command=command, env=env)

    def versions() -> list[Body]:
        listed: Body = custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "modelversions"
        )
        items: list[Body] = listed["items"]
        return items

    def served() -> bool:
        listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments")
        return all(
            ((m.get("status") or {}).get("stable") or {}).get("version") == args.versions
            for m in listed["items"]
        )

    try:
        wait(
            "every version to be judged Ready",
            lambda: sum(ready(v) for v in versions()) == args.versions,
            timeout=900,
        )
        wait("every ModelDeployment to serve the alias", served, timeout=600)
        settled = time.monotonic() - started
        quiet_after(api_requests, timeout=600)

        before = api_requests()
        time.sleep(args.rest_seconds)
        after = api_requests()
        at_rest = {key: after[key] - before.get(key, 0.0) for key in after}
        per_minute = sum(at_rest.values()) * 60 / args.rest_seconds

        seen: dict[str, float] = {}
        created_at: dict[str, float] = {}
        create_latency: list[float] = []
        late: list[str] = []

        def watch_ready() -> None:
            stream = watch.Watch()
            for event in stream.stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                "modelversions",
                timeout_seconds=0,
            ):
                body = event["object"]
                name = body["metadata"]["name"]
                if ready(body) and name in created_at:
                    seen.setdefault(name, time.monotonic())
                if len(seen) >= args.new:
                    break
            stream.stop()

        watcher = threading.Thread(target=watch_ready, daemon=True)
        watcher.start()
        time.sleep(1)  # the watch is established before the first new version
        for number in range(args.versions + 1, args.versions + args.new + 1):
            name = f"bench-v{number}"
            created_at[name] = float("inf")  # watched from now on
            begin = time.monotonic()
            create("modelversions", version_body(number))
            created_at[name] = time.monotonic()
            create_latency.append(created_at[name] - begin)
            deadline = created_at[name] + args.ready_timeout
            while name not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
            if name not in seen:
                late.append(name)
                seen[name] = deadline  # counted at the timeout: the true latency is longer
        peak = peak_rss_mib(operator.pid)
    finally:
        stop_process(operator)
        core.delete_namespace(namespace)

    latency = [seen[name] - created_at[name] for name in created_at]
    p50, p99 = quantile(latency, 0.5), quantile(latency, 0.99)
    api50, api99 = quantile(create_latency, 0.5), quantile(create_latency, 0.99)
    target = objects * 60 / RESYNC_SECONDS
    source = args.operator_src or "this checkout"
    print(
        f"1 Model, {args.versions} ModelVersions, {args.deployments} ModelDeployments scaled to "
        f"zero; operator from {source}; everything judged and served after {settled:.0f} s"
    )
    print(f"API requests at rest over {args.rest_seconds:g} s (the API server's counts):")
    for (resource, subresource, verb), count in sorted(at_rest.items(), key=lambda i: -i[1]):
        if count:
            name = f"{resource}/{subresource}" if subresource else resource
            print(f"  {verb:<7}{name:<28}{count * 60 / args.rest_seconds:>10.1f} /min")
    print(
        f"  total {per_minute:.1f} /min; target <= one read per object per {RESYNC_SECONDS} s "
        f"resync: {objects} objects -> {target:.0f} /min"
    )
    print(f"{'measure':<38}{'p50 s':>10}{'p99 s':>10}{'max s':>10}")
    rows = [
        ("new version created -> Ready", p50, p99, max(latency)),
        ("API server create (anchor)", api50, api99, max(create_latency)),
    ]
    for label, q50, q99, worst in rows:
        print(f"{label:<38}{q50:>10.3f}{q99:>10.3f}{worst:>10.3f}")
    if late:
        print(
            f"{len(late)} of {args.new} new versions were not Ready within "
            f"{args.ready_timeout:g} s; their latency is counted as that (a lower bound)"
        )
    print(f"operator peak RSS: {peak:.0f} MiB")
    print(
        f"registry_rest_requests_per_min={per_minute:.1f} new_version_ready_p99_s={p99:.3f} "
        f"operator_peak_mib={peak:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
