"""bench-scale: the operator at scale, on fake nodes that kwok drives through the real API server.

Starts kwok (hack/kwok/build.sh builds it from its Go module) with NODES fake nodes, tainted so
that only the bench's pods land there, and `cairn-operator` as its own process under an identity
of its own (bench/scale/identity.py: the API server counts its requests apart). Then, in a
namespace of its own and CONCURRENCY creates at a time, MODELS Models, VERSIONS ModelVersions
spread over them (created directly, as the registry does: labelled with their model, owned by
it), DEPLOYMENTS ModelDeployments following an alias (one serving pod each on the fake nodes,
which kwok makes Running and Ready: the report counts the ModelDeployments that end Available)
and RUNS TrainingRuns (their pods tolerate the taint and select the fake nodes; kwok runs them to
Succeeded at once without writing anything, so the runs end Failed or Succeeded with nothing
registered: the report counts which).

Reconcile latency: from the create call's return to the first watch event in which the object
carries a status the operator wrote (anything in .status but kopf's own records), per kind;
for the initial load (everything created as fast as CONCURRENCY allows, a burst) and under churn
(a steady CHURN_RATE creates and deletes per second at full scale).

API requests: the operator's, from the API server's Priority and Fairness counter of its
FlowSchema: at rest (REST_SECONDS, after everything has answered and SETTLE_SECONDS more have
passed) and under churn. The API server's own latency (apiserver_request_duration_seconds, all
clients, resources of the groups the operator uses, watches excluded) is there for comparison.

The last line is for scripts:

    scale_objects=<n> reconcile_p99_s=<s> rest_api_rps=<r> operator_peak_mib=<m>

where reconcile_p99_s is the worst kind's p99 under churn at full scale (the load burst's are in
the table). Everything the bench creates (namespace, fake nodes, binding, FlowSchema) is deleted
and kwok and the operator stopped, on success, failure, Ctrl-C or SIGTERM.
"""

import argparse
import contextlib
import dataclasses
import itertools
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_LABEL,
    apply_crds,
    peak_rss_mib,
    quantile,
    rss_mib,
    start_operator,
    stop_process,
    wait_for_earlier_benchmarks,
)
from bench.scale import identity, kwok, measure
from bench.scale.tracker import GROUP, VERSION, Tracker
from kubernetes import client, config

RESYNC_SECONDS = 30  # the operator's periodic resync of Models, versions and ModelDeployments
DIGEST = "sha256:" + "cd" * 32
# The runs' outputs are directories of the (fake) node: nothing to bind or mount.
NODE_DIRECTORY = "/var/lib/cairn-bench-scale"
# The versions' artifacts are on a claim (a model server reads pvc:// or s3://), bound to a
# volume of the bench's own that no pod ever really mounts.
ARTIFACT_CLAIM = "cairn-artifacts"
# The API groups of the resources the operator reads and writes.
OPERATOR_GROUPS = frozenset({"cairn.dev", "", "apps", "batch", "events.k8s.io"})
SKIP_VERBS = frozenset({"WATCH", "CONNECT"})
KINDS = ("models", "modelversions", "modeldeployments", "trainingruns")
Body = dict[str, Any]


def model_name(index: int) -> str:
    return f"scale-m{index:03d}"


def model_body(index: int, versions: int) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": model_name(index)},
        "spec": {
            "policy": {"gates": [{"metric": "accuracy", "op": ">=", "threshold": 0.5}]},
            "aliases": {"production": max(1, versions)},
        },
    }


def version_body(model: Body, number: int) -> Body:
    """As the registry writes a version (cairn.registry.registration.version_for): named
    <model>-v<number>, labelled with its model and owned by it."""
    name = model["metadata"]["name"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"{name}-v{number}",
            "labels": {"cairn.dev/model": name},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Model",
                    "name": name,
                    "uid": model["metadata"]["uid"],
                }
            ],
        },
        "spec": {
            "model": name,
            "version": number,
            "artifact": {"uri": f"pvc://{ARTIFACT_CLAIM}/{name}/v{number}", "digest": DIGEST},
            "metrics": {"accuracy": 0.9 + (number % 10) / 100},
        },
    }


def deployment_body(index: int, models: int, bench_id: str) -> Body:
    """One serving pod, on the fake nodes."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": f"scale-d{index:03d}"},
        "spec": {
            "model": model_name(index % models),
            "alias": "production",
            "replicas": 1,
            "nodeSelector": kwok.selector(bench_id),
            "tolerations": [kwok.toleration()],
        },
    }


def run_body(index: int, models: int, bench_id: str) -> Body:
    name = f"scale-r{index:05d}"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "model": model_name(index % models),
            "imagePullPolicy": "Never",
            "command": ["python", "-c", "pass"],
            # A directory of the node: no claim to bind, and a fake node mounts nothing.
            "output": {"uri": f"file://{NODE_DIRECTORY}/{name}"},
            "nodeSelector": kwok.selector(bench_id),
            "tolerations": [kwok.toleration()],
        },
    }


class Bench:
    """The namespace's objects: created with bounded concurrency, each create's return time kept
    per kind for the latency."""

    def __init__(self, custom: Any, namespace: str, concurrency: int) -> None:
        self.custom, self.namespace, self.concurrency = custom, namespace, concurrency
        self.created: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
        self.failed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def create(self, plural: str, body: Body, into: dict[str, float] | None = None) -> Body | None:
        try:
            made: Body = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, body
            )
        except client.ApiException as error:
            with self._lock:
                self.failed[f"{plural} {error.status}"] += 1
            return None
        now = time.monotonic()
        with self._lock:
            (self.created[plural] if into is None else into)[made["metadata"]["name"]] = now
        return made

    def create_all(self, plural: str, bodies: Iterable[Body]) -> list[Body | None]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(lambda body: self.create(plural, body), bodies))

    def delete(self, plural: str, name: str) -> None:
        with contextlib.suppress(client.ApiException):
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )


def scrape() -> list[measure.Sample]:
    text = subprocess.run(
        ["kubectl", "get", "--raw", "/metrics", "--request-timeout=60s"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return measure.samples(text)


def wait_for(
    what: str, done: Callable[[], bool], timeout: float, progress: Callable[[], str]
) -> bool:
    """Until done(), at most `timeout` s, saying how far it is every 30 s; False if it timed out."""
    start = time.monotonic()
    said = start
    while not done():
        now = time.monotonic()
        if now - start > timeout:
            print(f"  gave up waiting for {what} after {timeout:g} s: {progress()}", flush=True)
            return False
        if now - said >= 30:
            print(f"  waiting for {what} ({now - start:.0f} s): {progress()}", flush=True)
            said = now
        time.sleep(1)
    return True


def latencies(
    created: dict[str, float], answered_at: dict[str, float], timeout_at: float
) -> tuple[list[float], int]:
    """Create-to-answer seconds; an object never answered counts as answered at `timeout_at` (a
    lower bound of its latency). Also how many were never answered."""
    missing = sum(name not in answered_at for name in created)
    return [answered_at.get(name, timeout_at) - at for name, at in created.items()], missing


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return math.nan, math.nan, math.nan
    return quantile(values, 0.5), quantile(values, 0.99), max(values)


def api_latency(before: list[measure.Sample], after: list[measure.Sample]) -> str:
    try:
        window = measure.difference(
            measure.duration_buckets(after, OPERATOR_GROUPS, SKIP_VERBS),
            measure.duration_buckets(before, OPERATOR_GROUPS, SKIP_VERBS),
        )
    except ValueError as error:
        return f"unknown ({error})"
    p50 = measure.histogram_quantile(0.5, window)
    p99 = measure.histogram_quantile(0.99, window)
    return f"p50 {p50:.3f} s, p99 {p99:.3f} s over {max(window.values(), default=0):.0f} requests"


@dataclasses.dataclass
class Window:
    """A stretch of the bench between two scrapes of the API server's metrics."""

    start: float
    before: list[measure.Sample]
    end: float = math.nan
    after: list[measure.Sample] = dataclasses.field(default_factory=list)

    @classmethod
    def begin(cls) -> "Window":
        return cls(time.monotonic(), scrape())

    def finish(self) -> "Window":
        self.end, self.after = time.monotonic(), scrape()
        return self

    def operator_rps(self, schema: str) -> float:
        count = measure.dispatched(self.after, schema) - measure.dispatched(self.before, schema)
        return count / (self.end - self.start) if count >= 0 else math.nan


@dataclasses.dataclass
class Scene:
    """What the bench runs against: its namespace, fake nodes, operator and watches."""

    bench_id: str
    namespace: str
    schema: str  # the operator's FlowSchema
    operator: subprocess.Popen[bytes]
    trackers: dict[str, Tracker]
    logs: list[Path]


def set_up(cleanup: contextlib.ExitStack, args: argparse.Namespace, private: Path) -> Scene:
    """Namespace, kwok and its nodes, the operator's identity, the operator, the watches; each
    registered with `cleanup` as soon as it exists."""
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    bench_id = uuid.uuid4().hex[:6]
    namespace = f"bench-scale-{bench_id}"
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    wait_for_earlier_benchmarks(core)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels={BENCH_LABEL: "1"}))
    )
    cleanup.callback(core.delete_namespace, namespace)
    kwok_log = logs / f"{namespace}-kwok.log"
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube/config")
    cleanup.callback(stop_process, kwok.start_kwok(kubeconfig, bench_id, kwok_log))
    # Nodes go before kwok stops (the callbacks run last-in first-out).
    cleanup.callback(kwok.delete_nodes, core, bench_id)
    kwok.create_nodes(core, bench_id, args.nodes)
    kwok.wait_ready(core, bench_id, args.nodes)
    artifact_volume(cleanup, core, namespace, bench_id)

    name = f"cairn-operator-{bench_id}"
    cleanup.callback(identity.delete, name)
    who = identity.create(core, namespace, name, private)
    operator_log = logs / f"{namespace}-operator.log"
    env = {**os.environ, "KUBECONFIG": str(who.kubeconfig)}
    operator = start_operator(namespace, operator_log, env=env)
    cleanup.callback(stop_process, operator)

    trackers = {kind: Tracker(custom, namespace, kind) for kind in KINDS}
    for tracker in trackers.values():
        tracker.start()
    for tracker in trackers.values():
        cleanup.callback(tracker.join)
    # All are asked to stop before the first join: they end together, within one watch call.
    for tracker in trackers.values():
        cleanup.callback(tracker.stop)
    return Scene(bench_id, namespace, name, operator, trackers, [operator_log, kwok_log])


def artifact_volume(
    cleanup: contextlib.ExitStack, core: Any, namespace: str, bench_id: str
) -> None:
    """ARTIFACT_CLAIM, bound to a volume made for it (the serving pods' scheduling waits for a
    bound claim). The volume is deleted with `cleanup`; the claim goes with the namespace."""
    name = f"bench-scale-{bench_id}-artifacts"
    common = {"accessModes": ["ReadOnlyMany"], "storageClassName": ""}
    core.create_persistent_volume(
        {
            "metadata": {"name": name, "labels": {BENCH_LABEL: "1"}},
            "spec": {
                **common,
                "capacity": {"storage": "1Gi"},
                "hostPath": {"path": NODE_DIRECTORY},
                "claimRef": {"namespace": namespace, "name": ARTIFACT_CLAIM},
            },
        }
    )
    cleanup.callback(core.delete_persistent_volume, name)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": ARTIFACT_CLAIM},
            "spec": {**common, "volumeName": name, "resources": {"requests": {"storage": "1Gi"}}},
        },
    )


def load(bench: Bench, args: argparse.Namespace, bench_id: str, per_model: int) -> list[Body]:
    """Everything, as fast as the bounded concurrency allows; the Models as created."""
    made = bench.create_all("models", (model_body(i, per_model) for i in range(args.models)))
    models = [model for model in made if model]
    versions = (
        version_body(models[i % len(models)], i // len(models) + 1)
        for i in range(per_model * len(models))
    )
    bench.create_all("modelversions", versions)
    deployments = (deployment_body(i, args.models, bench_id) for i in range(args.deployments))
    bench.create_all("modeldeployments", deployments)
    bench.create_all("trainingruns", (run_body(i, args.models, bench_id) for i in range(args.runs)))
    return models


def churn(
    bench: Bench, args: argparse.Namespace, bench_id: str, models: list[Body], per_model: int
) -> dict[str, dict[str, float]]:
    """CHURN_RATE ticks a second at full scale. Per tick a new run, a new version of the next
    model and the deletion of its oldest version (never the aliased one); every tenth tick a new
    ModelDeployment. The objects created, by kind."""
    created: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
    oldest = dict.fromkeys(range(len(models)), 1)
    newest = dict.fromkeys(range(len(models)), per_model)
    start = time.monotonic()
    for tick in itertools.count():
        due = start + tick / args.churn_rate
        if due - start >= args.churn_seconds:
            return created
        time.sleep(max(0.0, due - time.monotonic()))
        m = tick % len(models)
        run = run_body(args.runs + tick, args.models, bench_id)
        bench.create("trainingruns", run, created["trainingruns"])
        newest[m] += 1
        bench.create("modelversions", version_body(models[m], newest[m]), created["modelversions"])
        if oldest[m] < per_model:
            bench.delete("modelversions", f"{model_name(m)}-v{oldest[m]}")
            oldest[m] += 1
        if tick % 10 == 0:
            deployment = deployment_body(args.deployments + tick // 10, args.models, bench_id)
            bench.create("modeldeployments", deployment, created["modeldeployments"])
    return created


def unanswered(
    created: dict[str, dict[str, float]], trackers: dict[str, Tracker]
) -> dict[str, int]:
    return {kind: len(created[kind]) - trackers[kind].answered(created[kind]) for kind in KINDS}


def in_progress(names: Iterable[str], runs: Tracker) -> int:
    _, phases = runs.snapshot()
    return sum(not phases.get(name, "").startswith(("Succeeded", "Failed")) for name in names)


@dataclasses.dataclass
class Results:
    schema: str  # the operator's FlowSchema
    objects: int
    by_phase: dict[str, dict[str, dict[str, float]]]  # "load"/"churn" -> kind -> name -> created
    answered_at: dict[str, dict[str, float]]  # kind -> name -> first answered
    timeout_at: float
    all_answered: bool
    run_outcomes: Counter[str]
    deployment_outcomes: Counter[str]
    load: Window
    rest: Window
    churned: Window
    peak_mib: float
    rest_mib: float  # the operator's RSS at the end of the rest window


def run_bench(args: argparse.Namespace, private: Path) -> Results:
    custom = client.CustomObjectsApi()
    with contextlib.ExitStack() as cleanup:
        scene = set_up(cleanup, args, private)
        trackers = scene.trackers
        bench = Bench(custom, scene.namespace, args.concurrency)
        per_model = args.versions // args.models
        objects = args.models + per_model * args.models + args.deployments + args.runs
        print(
            f"bench-scale {scene.bench_id}: {args.nodes} fake nodes (kwok), {args.models} Models, "
            f"{per_model * args.models} ModelVersions, {args.deployments} ModelDeployments, "
            f"{args.runs} TrainingRuns in {scene.namespace}; {args.concurrency} creates at a "
            f"time; logs: {', '.join(map(str, scene.logs))}",
            flush=True,
        )
        loading = Window.begin()
        models = load(bench, args, scene.bench_id, per_model)
        print(f"  created {sum(map(len, bench.created.values()))} objects "
              f"in {time.monotonic() - loading.start:.0f} s", flush=True)  # fmt: skip
        all_answered = wait_for(
            "every object's first status",
            lambda: not any(unanswered(bench.created, trackers).values()),
            args.answer_timeout,
            lambda: f"not yet answered {unanswered(bench.created, trackers)}",
        )
        loading.finish()
        runs = bench.created["trainingruns"]
        wait_for(
            "the runs to end",
            lambda: in_progress(runs, trackers["trainingruns"]) == 0,
            300,
            lambda: f"{in_progress(runs, trackers['trainingruns'])} in progress",
        )
        time.sleep(args.settle_seconds)
        resting = Window.begin()
        time.sleep(args.rest_seconds)
        resting.finish()
        rest_mib = rss_mib(scene.operator.pid)

        churning = Window.begin()
        churned = churn(bench, args, scene.bench_id, models, per_model)
        churning.finish()
        wait_for(
            "the churn's objects to be answered",
            lambda: not any(unanswered(churned, trackers).values()),
            120,
            lambda: str(unanswered(churned, trackers)),
        )
        peak = peak_rss_mib(scene.operator.pid)
        timeout_at = time.monotonic()
        snapshots = {kind: tracker.snapshot() for kind, tracker in trackers.items()}
        _, phases = snapshots["trainingruns"]
        _, deployment_phases = snapshots["modeldeployments"]
        return Results(
            schema=scene.schema,
            objects=objects,
            by_phase={"load": bench.created, "churn": churned},
            answered_at={kind: answered for kind, (answered, _) in snapshots.items()},
            timeout_at=timeout_at,
            all_answered=all_answered,
            run_outcomes=Counter(phases.get(name, "none") for name in runs),
            deployment_outcomes=Counter(
                deployment_phases.get(name, "none") for name in bench.created["modeldeployments"]
            ),
            load=loading,
            rest=resting,
            churned=churning,
            peak_mib=peak,
            rest_mib=rest_mib,
        )


def report(results: Results, args: argparse.Namespace) -> None:
    schema = results.schema
    print(f"\n{'reconcile latency (create -> first status)':<44}"
          f"{'p50 s':>9}{'p99 s':>9}{'max s':>9}{'unanswered':>12}")  # fmt: skip
    churn_p99s = []
    for phase, created in results.by_phase.items():
        for kind in KINDS:
            if not created[kind]:
                continue
            values, missing = latencies(
                created[kind], results.answered_at[kind], results.timeout_at
            )
            p50, p99, worst = percentiles(values)
            if phase == "churn":
                churn_p99s.append(p99)
            print(f"  {phase + ' ' + kind:<42}{p50:>9.3f}{p99:>9.3f}{worst:>9.3f}{missing:>12}")
    print("  target: p99 <= 5 s (reconcile_p99_s: the worst kind under churn)")
    print(f"TrainingRuns of the load at the end (kwok's pods succeed and write nothing): "
          f"{dict(results.run_outcomes)}")  # fmt: skip
    print(f"ModelDeployments of the load at the end (one pod each on the fake nodes): "
          f"{dict(results.deployment_outcomes)}")  # fmt: skip
    if not results.all_answered:
        print(f"not every object was answered within {args.answer_timeout:g} s: "
              "latencies above are lower bounds")  # fmt: skip
    target = measure.rest_target_rps(results.objects, RESYNC_SECONDS)
    rest_rps = results.rest.operator_rps(schema)
    print("operator's API requests (the API server's count for its FlowSchema):")
    print(f"  at rest      {rest_rps:8.2f} /s over {args.rest_seconds:g} s; target <= "
          f"{target:.1f} /s ({results.objects} objects / {RESYNC_SECONDS} s resync)")  # fmt: skip
    for label, window in (("under churn", results.churned), ("during load", results.load)):
        print(f"  {label}  {window.operator_rps(schema):8.2f} /s "
              f"over {window.end - window.start:.0f} s")  # fmt: skip
    print("API server request latency (all clients, groups the operator uses, watches excluded):")
    print(f"  during load  {api_latency(results.load.before, results.load.after)}")
    print(f"  under churn  {api_latency(results.churned.before, results.churned.after)}")
    print(f"operator peak RSS: {results.peak_mib:.0f} MiB; target <= 600 MiB "
          f"(at rest: {results.rest_mib:.0f} MiB)")  # fmt: skip
    reconcile_p99 = max(churn_p99s, default=math.nan)
    print(measure.summary_line(results.objects, reconcile_p99, rest_rps, results.peak_mib))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=10000, help="in all, over --models")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--deployments", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8, help="creates at a time")
    parser.add_argument("--answer-timeout", type=float, default=1800)
    parser.add_argument("--settle-seconds", type=float, default=60)
    parser.add_argument("--rest-seconds", type=float, default=120)
    parser.add_argument("--churn-seconds", type=float, default=120)
    parser.add_argument("--churn-rate", type=float, default=2, help="churn ticks per second")
    args = parser.parse_args()
    if args.models < 1 or args.versions < args.models:
        parser.error("--versions must be at least --models, and --models at least 1")

    # A SIGTERM (a CI timeout) unwinds like Ctrl-C: everything run_bench made is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config.load_kube_config()
    apply_crds()
    with tempfile.TemporaryDirectory() as private:
        results = run_bench(args, Path(private))
    # The namespace, nodes and processes are gone; the report is from what was recorded.
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
