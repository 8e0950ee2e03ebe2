"""bench-rollout: how fast a canary is judged, with the default analysis settings, on the real
cluster with real cairn-serve pods and real traffic.

`cairn-operator` runs as a separate process watching a fresh namespace. A ModelDeployment serves
iris v1 (a logistic regression) with strategy.canary.steps [{setWeight: 50}] and
`analysis: {interval: 5s}` (every other setting the default: failureLimit 2, minRequests 20,
errorRate max 0.05 and latencyP99 at most 2x the stable's, each judged at 95 % confidence). A
thread sends ~40 requests/s to the Service, each on a new connection, a fifth of them rows the
bad version cannot answer.

- HEALTHY times: spec.version moves to a new, equally good version (another C); promote_s is
  the median time from that edit to the new version serving as stable with the canary gone.
  A healthy rollout that is rolled back counts as a false rollback.
- One bad version (it answers a fifth of the requests with 500s): rollback_s is the time from
  the end of its first failing analysis interval (status.canary.lastAnalysisAt when
  failedIntervals became 1, or status.rollback.at when that interval failed beyond doubt and
  rolled back at once) to the canary's pods being out of the Service's endpoints.

The anchors are what Argo Rollouts and Flagger take with their defaults and documented examples
(../shared/anchors/SYSTEMS.md), printed beside the measurement. The last line is for scripts:

    rollback_s=<seconds> promote_s=<seconds> false_rollbacks=<n>/<healthy rollouts>
"""

import argparse
import datetime
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from bench.common import bench_namespace, claim_artifacts, delete_with_artifacts, start_operator
from kubernetes import client, config
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cairn.training.model_dir import write_model_dir
from cairn.training.signature import infer_signature

GROUP, VERSION = "cairn.dev", "v1alpha1"
REPO = Path(__file__).resolve().parents[2]
X, Y = load_iris(return_X_y=True)
SETOSA, VIRGINICA = X[0].tolist(), X[149].tolist()
# The anchors (../shared/anchors/SYSTEMS.md, "time to roll back, defaults").
ARGO_ROLLBACK = "first failed measurement with failureLimit 0; docs example 5m x (3+1) ~ 900 s"
FLAGGER_ROLLBACK = "interval x threshold; docs examples 300-600 s"
ARGO_PROMOTE = "no default steps; docs example analysis interval 5m per gated step: >= 300 s"
FLAGGER_PROMOTE = "(maxWeight/stepWeight) x interval (default 60s): 5 steps ~ 300 s"

Body = dict[str, Any]


def artifacts_dir(namespace: str) -> Path:
    base = Path(os.environ.get("CAIRN_LOCALKUBE_DIR") or Path.home() / ".cache/cairn/localkube")
    return base / "artifacts" / namespace


def save(namespace: str, directory: str, model: Any) -> str:
    """The model directory cairn-serve loads (written directly: this process is no training
    run, and the SDK's save_model would report a run summary at exit)."""
    saved = write_model_dir(
        model,
        artifacts_dir(namespace) / "iris" / directory,
        signature=infer_signature(model, X[:1]),
        metrics={},
        dataset=None,
        run=None,
        model="iris",
    )
    return str(saved.digest)


def healthy_model(c: float) -> Any:
    return LogisticRegression(C=c, max_iter=500).fit(X, Y)


def broken_model() -> Any:
    """Trained like the others, then made to know only two classes: predicting class 2 raises,
    which cairn-serve answers with a 500 (a bug the offline metrics did not catch)."""
    model = healthy_model(1.0)
    model.classes_ = np.array([0, 1])
    return model


def version_body(number: int, directory: str, digest: str) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"iris-v{number}", "labels": {"cairn.dev/model": "iris"}},
        "spec": {
            "model": "iris",
            "version": number,
            "artifact": {"uri": f"pvc://cairn-artifacts/iris/{directory}", "digest": digest},
            "metrics": {"accuracy": 0.97},
        },
    }


class Traffic(threading.Thread):
    """Requests to the Service from this process, counting the answers by status."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.codes: dict[int, int] = {}
        # (wall-clock time sent, what went wrong) for every answer that was not a 200
        self.failures: list[tuple[float, str]] = []

    def _request(self, row: list[float]) -> urllib.request.Request:
        body = (
            b'{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":['
            + str(row).encode()
            + b"]}]}"
        )
        return urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )

    def until_answered(self, timeout: float = 60) -> float:
        """Seconds until the Service first answers 200. A ModelDeployment is Available once its
        pods are ready and in the Service's endpoints; kube-proxy programs them a moment later,
        and until then refuses new connections (its rule for a Service without endpoints)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                with urllib.request.urlopen(self._request(SETOSA), timeout=10) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"{self.url} did not answer 200 within {timeout:g} s")

    def run(self) -> None:
        rows = [SETOSA] * 4 + [VIRGINICA]
        index = 0
        while not self.stop.is_set():
            row = rows[index % len(rows)]
            index += 1
            sent = time.time()
            try:
                with urllib.request.urlopen(self._request(row), timeout=10) as response:
                    code = response.status
            except urllib.error.HTTPError as error:
                code = error.code
                self.failures.append((sent, f"HTTP {code}"))
            except OSError as error:
                code = 0
                self.failures.append((sent, f"{type(error).__name__}: {error}"))
            self.codes[code] = self.codes.get(code, 0) + 1
            time.sleep(0.025)


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Bench:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.core, self.custom = client.CoreV1Api(), client.CustomObjectsApi()

    def status(self) -> Body:
        found = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "modeldeployments", "iris"
        )
        assert isinstance(found, dict)
        status: Body = found.get("status") or {}
        return status

    def wait(self, what: str, check: Any, timeout: float = 300) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.1)
        raise SystemExit(f"timed out waiting for {what}; status: {self.status()}")

    def endpoints_tracks(self) -> set[str]:
        """The tracks of the pods in the Service's endpoints."""
        pods = {
            pod.status.pod_ip: (pod.metadata.labels or {}).get("cairn.dev/track")
            for pod in self.core.list_namespaced_pod(self.namespace).items
            if pod.metadata and pod.status
        }
        found: set[str] = set()
        endpoints = self.core.read_namespaced_endpoints("iris", self.namespace)
        for subset in endpoints.subsets or []:
            for address in subset.addresses or []:
                found.add(pods.get(address.ip) or "?")
        return found

    def move_to(self, version: int) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "modeldeployments",
            "iris",
            {"spec": {"version": version}},
        )

    def healthy_rollout(self, version: int) -> tuple[float, bool]:
        """(seconds to promote, rolled back instead)."""
        started = time.monotonic()
        self.move_to(version)

        def finished() -> str | None:
            status = self.status()
            if (status.get("rollback") or {}).get("version") == version:
                return "rolled back"
            if (status.get("stable") or {}).get("version") == version and not status.get("canary"):
                return "promoted"
            return None

        outcome = self.wait(f"v{version} to be promoted or rolled back", finished)
        return time.monotonic() - started, outcome == "rolled back"

    def bad_rollout(self, version: int) -> float:
        """Seconds from the end of the first failing interval to the canary out of endpoints."""
        self.move_to(version)
        first_failure: list[float] = []

        def rolled_back() -> bool:
            status = self.status()
            canary = status.get("canary") or {}
            if not first_failure and int(canary.get("failedIntervals") or 0) >= 1:
                first_failure.append(parse_time(canary["lastAnalysisAt"]))
            rollback = status.get("rollback") or {}
            return rollback.get("version") == version and "canary" not in self.endpoints_tracks()

        self.wait(f"v{version} to be rolled back", rolled_back)
        done = time.time()
        if not first_failure:
            # A failure beyond doubt rolls back at its first failing interval: that interval
            # ended when the rollback was decided.
            at = (self.status().get("rollback") or {}).get("at")
            if not at:
                raise SystemExit("rolled back without a failing interval in status; see the log")
            first_failure.append(parse_time(at))
        return done - first_failure[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", type=int, default=50, help="healthy rollouts (default 50)")
    args = parser.parse_args()
    config.load_kube_config()
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    namespace = bench_namespace(core, "bench-rollout")
    claim_artifacts(namespace)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{namespace}-operator.log"
    operator = start_operator(namespace, log)
    traffic: Traffic | None = None
    try:
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "models",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Model", "metadata": {"name": "iris"}},
        )
        healthy = list(range(2, 2 + args.healthy))
        bad = healthy[-1] + 1
        first = version_body(1, "v1", save(namespace, "v1", healthy_model(1.0)))
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", first)
        for number in healthy:
            digest = save(namespace, f"v{number}", healthy_model(1.0 + number / 10))
            body = version_body(number, f"v{number}", digest)
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", body)
        digest = save(namespace, "bad", broken_model())
        body = version_body(bad, "bad", digest)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", body)
        deployment = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelDeployment",
            "metadata": {"name": "iris"},
            "spec": {
                "model": "iris",
                "version": 1,
                "replicas": 2,
                "imagePullPolicy": "Never",
                "strategy": {
                    "canary": {"steps": [{"setWeight": 50}], "analysis": {"interval": "5s"}}
                },
            },
        }
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", deployment
        )
        bench = Bench(namespace)
        bench.wait(
            "v1 to serve",
            lambda: (
                (bench.status().get("stable") or {}).get("version") == 1
                and bench.status().get("phase") == "Available"
            ),
        )
        service = core.read_namespaced_service("iris", namespace)
        assert service.spec is not None
        ip = service.spec.cluster_ip
        traffic = Traffic(f"http://{ip}:8080/v2/models/iris/infer")
        traffic.start()

        promote_times, false_rollbacks = [], 0
        for number in healthy:
            seconds, rolled_back = bench.healthy_rollout(number)
            false_rollbacks += rolled_back
            promote_times.append(seconds)
            outcome = "ROLLED BACK" if rolled_back else "promoted"
            print(f"healthy v{number}: {outcome} in {seconds:.1f} s; answers {traffic.codes}")
        rollback = bench.bad_rollout(bad)
        print(f"bad v{bad}: rolled back {rollback:.1f} s after its first failing interval")
        print(f"answers by status code: {traffic.codes}")
        promote = statistics.median(promote_times)
    finally:
        if traffic is not None:
            traffic.stop.set()
            traffic.join(timeout=15)
        operator.terminate()
        operator.wait(timeout=30)
        delete_with_artifacts(core, namespace)

    fastest, slowest = min(promote_times), max(promote_times)
    spread = f"median of {len(promote_times)}; min {fastest:.1f}, max {slowest:.1f}"
    print()
    print("time to roll back a bad canary (after its first bad interval) / to promote a good one")
    print(f"  cairn, measured       rollback {rollback:.1f} s")
    print(f"                        promote  {promote:.1f} s ({spread})")
    print(f"  Argo Rollouts anchor  rollback {ARGO_ROLLBACK}")
    print(f"                        promote  {ARGO_PROMOTE}")
    print(f"  Flagger anchor        rollback {FLAGGER_ROLLBACK}")
    print(f"                        promote  {FLAGGER_PROMOTE}")
    print(f"target: rollback <= 6 s at 5 s intervals, false rollbacks 0/{len(promote_times)}")
    summary = f"rollback_s={rollback:.1f} promote_s={promote:.1f}"
    print(f"{summary} false_rollbacks={false_rollbacks}/{len(promote_times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
