"""Canary rollouts for tests: two versions to roll between, canary strategies, the rollout's
status, and traffic to the Service from the test process."""

import collections
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import requests

from tests.support.deployments import (
    X,
    Y,
    create_version,
    describe,
    save_version,
    session,
    wait_version_phase,
)
from tests.support.kube import Kube
from tests.support.training import GROUP, VERSION, create_model, get
from tests.support.wait import wait_for

Body = dict[str, Any]
ROLLOUT_TIMEOUT = 180
# Rows of class 0 and of class 2 (the last iris rows are virginica).
SETOSA, VIRGINICA = X[0], X[149]
ANALYSIS = {
    "interval": "3s",
    "failureLimit": 2,
    "minRequests": 10,
    "metrics": [{"name": "errorRate", "max": 0.05}, {"name": "latencyP99", "max": 1.0}],
}


class Traffic:
    """Requests to the Service from the test process, one after another, recording which
    version answered each and with what status."""

    def __init__(self, base: str, rows: list[Any]) -> None:
        self.base, self.rows = base, rows
        self.answers: collections.Counter[tuple[int, str]] = collections.Counter()
        self.failed_at: list[float] = []  # when each request not answered 200 was sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        http = session()
        index = 0
        while not self._stop.is_set():
            row = self.rows[index % len(self.rows)]
            index += 1
            body = {
                "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [row]}]
            }
            sent_at = time.time()
            try:
                # A new connection each time: kube-proxy balances connections, not requests,
                # so one kept-alive connection would always reach the same pod.
                response = http.post(
                    f"{self.base}/v2/models/iris/infer",
                    json=body,
                    headers={"Connection": "close"},
                    timeout=10,
                )
            except requests.RequestException:
                self.answers[(0, "lost")] += 1
                self.failed_at.append(sent_at)
                continue
            version = response.json().get("model_version", "?") if response.ok else "?"
            self.answers[(response.status_code, version)] += 1
            if response.status_code != 200:
                self.failed_at.append(sent_at)
            time.sleep(0.01)

    def versions(self) -> set[str]:
        return {version for (code, version) in self.answers if code == 200}

    def failures(self) -> int:
        return sum(n for (code, _), n in self.answers.items() if code != 200)


@contextmanager
def traffic(base: str, rows: list[Any]) -> Iterator[Traffic]:
    sender = Traffic(base, rows)
    sender._thread.start()
    try:
        yield sender
    finally:
        sender._stop.set()
        sender._thread.join(timeout=15)


def canary_spec(steps: list[Body], analysis: Body | None = ANALYSIS) -> Body:
    canary: Body = {"steps": steps}
    if analysis is not None:
        canary["analysis"] = analysis
    return {"canary": canary}


def set_version(k8s: Kube, namespace: str, name: str, version: int) -> None:
    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", name, {"spec": {"version": version}}
    )


def status_of(k8s: Kube, namespace: str, name: str) -> Body:
    status: Body = (get(k8s, namespace, "modeldeployments", name) or {}).get("status") or {}
    return status


def two_versions(k8s: Kube, namespace: str, artifacts: Path, second: str = "iris-b") -> None:
    create_model(k8s, namespace, "iris", {})
    digest1, _ = save_version(artifacts, "iris-a", 1.0)
    create_version(k8s, namespace, 1, "iris-a", digest1)
    if second == "iris-b":
        digest2, _ = save_version(artifacts, "iris-b", 0.5)
    else:
        digest2 = save_broken_version(artifacts, second)
    create_version(k8s, namespace, 2, second, digest2)
    wait_version_phase(k8s, namespace, "iris-v2", "Approved")


def save_broken_version(artifacts: Path, directory: str) -> str:
    """A model that fails on virginica rows: it knows only two of the three classes, so
    predicting class 2 indexes past its classes_ — an IndexError, which cairn-serve answers
    with a 500 (a bug of the model, not the client's input)."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    from cairn import training

    model = LogisticRegression(max_iter=500).fit(X, Y)
    model.classes_ = np.array([0, 1])
    saved = training.save_model(model, path=artifacts / "iris" / directory, sample_input=X[:1])
    return str(saved.digest)


def wait_at_step(k8s: Kube, namespace: str, name: str, step: int, weight: int) -> Body:
    def arrived() -> Body | None:
        status = status_of(k8s, namespace, name)
        canary = status.get("canary") or {}
        ready = canary.get("readyReplicas") == canary.get("replicas")
        at = canary.get("step") == step and canary.get("weight") == weight
        return status if at and ready and status.get("phase") == "Paused" else None

    found: Body = wait_for(
        arrived,
        timeout=ROLLOUT_TIMEOUT,
        message=f"the rollout to pause at step {step} with weight {weight}",
        describe=lambda: describe(k8s, namespace, name),
    )
    return found
