"""Monitoring a served model on the real cluster: a wine classifier behind a ModelDeployment with
spec.monitoring, real traffic through its Service, and the operator's windows over what the
serving pods counted: drift of shifted features (and its end), a restarted pod, live accuracy
from feedback, and the prediction log."""

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_wine  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import accuracy_score  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from cairn import training
from tests.support.deployments import service_base, session, wait_serving
from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.training import (
    GROUP,
    VERSION,
    condition,
    create_model,
    event_reasons,
    expect_event,
    get,
    version_manifest,
)
from tests.support.wait import wait_for
from tests.support.workloads import SERVER_IMAGE

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
WINE = load_wine()
NAMES = [str(name) for name in WINE.feature_names]
X_TRAIN, X_TEST, Y_TRAIN, Y_TEST = train_test_split(
    WINE.data, WINE.target, test_size=0.4, random_state=0, stratify=WINE.target
)
SHIFTED = list(range(0, 13, 2))  # 7 of the 13 features, scaled by 1.5
# Windows of about one pass over the held-out rows: each row once, as production would send it.
WINDOW = {"duration": "5s", "minRows": len(X_TEST)}


def shifted(rows: np.ndarray) -> np.ndarray:
    moved = rows.copy()
    moved[:, SHIFTED] *= 1.5
    return moved


def serve_wine(
    k8s: Kube, namespace: str, artifacts: Path, monitoring: Body, **model_spec: Any
) -> tuple[str, Any]:
    """v1 of the Model wine, saved with the profile of its training data and served with
    `monitoring`; the Service's address and the model."""
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_TRAIN, Y_TRAIN)
    signature = training.infer_signature(model, X_TRAIN[:1], NAMES)
    saved = training.save_model(
        model, path=artifacts / "wine" / "v1", signature=signature, training_data=X_TRAIN
    )
    create_model(k8s, namespace, "wine", model_spec)
    artifact = {"uri": "pvc://cairn-artifacts/wine/v1", "digest": saved.digest}
    body = version_manifest("wine", 1, artifact, metrics={"accuracy": 0.95})
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", body)
    mdep = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "wine"},
        "spec": {
            "model": "wine",
            "version": 1,
            "image": SERVER_IMAGE,
            "imagePullPolicy": "Never",
            "monitoring": monitoring,
        },
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", mdep)
    wait_serving(k8s, namespace, "wine", 1)
    return service_base(k8s, namespace, "wine"), model


class Traffic:
    """Rows sent one per request, in a loop over `rows` (which the test may swap)."""

    def __init__(self, base: str, rows: np.ndarray) -> None:
        self.base, self.rows = base, rows
        self.sent = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        http = session()
        index = 0
        while not self._stop.is_set():
            rows = self.rows
            row = rows[index % len(rows)]
            index += 1
            tensor = {"name": "input-0", "shape": [1, 13], "datatype": "FP64", "data": row.tolist()}
            try:
                answer = http.post(
                    f"{self.base}/v2/models/wine/infer", json={"inputs": [tensor]}, timeout=5
                )
                self.sent += answer.status_code == 200
                self.failed += answer.status_code != 200
            except OSError:
                self.failed += 1
            self._stop.wait(0.03)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def traffic() -> Iterator[list[Traffic]]:
    started: list[Traffic] = []
    yield started
    for sender in started:
        sender.stop()


def monitoring_of(k8s: Kube, namespace: str) -> Body:
    found: Body = ((get(k8s, namespace, "modeldeployments", "wine") or {}).get("status") or {}).get(
        "monitoring"
    ) or {}
    return found


def wait_verdict(k8s: Kube, namespace: str, verdict: str, after: int, timeout: float = 90) -> Body:
    """status.monitoring once a window after the `after`th says `verdict`."""

    def judged() -> Body | None:
        found = monitoring_of(k8s, namespace)
        return (
            found if found.get("verdict") == verdict and found.get("windows", 0) > after else None
        )

    result: Body = wait_for(
        judged,
        timeout=timeout,
        message=f"a monitoring window after #{after} to say {verdict}",
        describe=lambda: json.dumps(monitoring_of(k8s, namespace))[:2000],
    )
    return result


def test_shifted_features_drift_within_two_windows_and_a_restart_raises_no_alarm(
    k8s: Kube,
    namespace: str,
    artifacts: Path,
    operator: RunningOperator,
    traffic: list[Traffic],
) -> None:
    base, _ = serve_wine(k8s, namespace, artifacts, {"window": WINDOW})
    sender = Traffic(base, X_TEST)
    traffic.append(sender)

    calm = wait_verdict(k8s, namespace, "NoDrift", after=0)
    mdep = get(k8s, namespace, "modeldeployments", "wine") or {}
    assert condition(mdep, "Drifted")["status"] == "False"
    assert calm["featuresCompared"] == 13 and calm["rows"] >= len(X_TEST)

    sender.rows = shifted(X_TEST)
    switched = monitoring_of(k8s, namespace)["windows"]
    drifted = wait_verdict(k8s, namespace, "Drifted", after=switched)
    assert drifted["windows"] - switched <= 2  # within two windows of the change
    named = {f["name"] for f in drifted["features"] if f["drifted"]}
    assert named == {NAMES[i] for i in SHIFTED}, drifted["features"]
    mdep = get(k8s, namespace, "modeldeployments", "wine") or {}
    said = condition(mdep, "Drifted")
    assert (said["status"], said["reason"]) == ("True", "DriftDetected")
    assert "7 of 13 features drifted" in said["message"]
    expect_event(k8s, namespace, "wine", "DriftDetected")

    sender.rows = X_TEST
    back = monitoring_of(k8s, namespace)["windows"]
    wait_verdict(k8s, namespace, "NoDrift", after=back + 1)  # a whole window of unshifted rows
    expect_event(k8s, namespace, "wine", "NoDrift")

    # A restarted serving pod starts its counters again: no reading goes negative, no alarm.
    (pod,) = k8s.core.list_namespaced_pod(
        namespace, label_selector="cairn.dev/deployment=wine"
    ).items
    k8s.core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=1)
    wait_serving(k8s, namespace, "wine", 1)
    restarted = monitoring_of(k8s, namespace)["windows"]
    for after in range(restarted, restarted + 3):
        window = wait_verdict(k8s, namespace, "NoDrift", after=after, timeout=120)
        assert window["rows"] >= len(X_TEST)
    assert sender.failed <= 10  # the requests in flight on the deleted pod, at most


def test_twenty_windows_of_unshifted_held_out_rows_raise_no_alarm(
    k8s: Kube,
    namespace: str,
    artifacts: Path,
    operator: RunningOperator,
    traffic: list[Traffic],
) -> None:
    """Production traffic like the training data (the held-out rows, replayed): every window is
    judged, and none says Drifted. The false-alarm rate is printed for the record."""
    base, _ = serve_wine(k8s, namespace, artifacts, {"window": {**WINDOW, "duration": "3s"}})
    traffic.append(Traffic(base, X_TEST))
    first: int = wait_verdict(k8s, namespace, "NoDrift", after=0)["windows"]
    verdicts: dict[int, str] = {}

    def twenty_judged() -> bool:
        found = monitoring_of(k8s, namespace)
        verdicts[found["windows"]] = found["verdict"]
        return int(found["windows"]) >= first + 20

    wait_for(twenty_judged, timeout=180, interval=0.5, message="20 more monitoring windows")
    judged = {window: verdict for window, verdict in verdicts.items() if window > first}
    alarms = sum(verdict == "Drifted" for verdict in judged.values())
    print(f"false alarms: {alarms} of the {len(judged)} windows seen (of 20 judged)")
    assert alarms == 0, judged
    assert set(judged.values()) == {"NoDrift"}, judged  # each had its rows: none NotEnoughData
    mdep = get(k8s, namespace, "modeldeployments", "wine") or {}
    assert condition(mdep, "Drifted")["status"] == "False"
    assert "DriftDetected" not in event_reasons(k8s, namespace, "wine")


def test_feedback_gives_live_accuracy_and_the_log_keeps_sensitive_features_out(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    monitoring = {
        "window": {"duration": "4s", "minRows": 1},
        "performance": {"min": 0.99, "minRows": len(Y_TEST)},
        "log": {"sampleRate": 1},
    }
    base, model = serve_wine(
        k8s, namespace, artifacts, monitoring, sensitiveFeatures=[NAMES[0], NAMES[1]]
    )
    http = session()
    # One row, and its window judged: the next window starts with a read of the pod's counters
    # (the first may start before the pod answers), so the rows and labels below all count.
    row = {"name": "input-0", "shape": [1, 13], "datatype": "FP64", "data": X_TEST[0].tolist()}
    first = http.post(f"{base}/v2/models/wine/infer", json={"inputs": [row]}, timeout=10)
    assert first.status_code == 200, first.text
    wait_for(
        lambda: (monitoring_of(k8s, namespace).get("windows") or 0) >= 1,
        timeout=60,
        message="the first monitoring window to be judged",
        describe=lambda: str(monitoring_of(k8s, namespace)),
    )
    ids = []
    for row in X_TEST:
        tensor = {"name": "input-0", "shape": [1, 13], "datatype": "FP64", "data": row.tolist()}
        answer = http.post(f"{base}/v2/models/wine/infer", json={"inputs": [tensor]}, timeout=10)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["id"])
    labels = [{"id": i, "label": int(y)} for i, y in zip(ids, Y_TEST, strict=True)]
    posted = http.post(f"{base}/v2/models/wine/feedback", json=labels, timeout=10).json()
    assert posted["matched"] == len(ids)

    def judged() -> Body | None:
        found = monitoring_of(k8s, namespace).get("performance") or {}
        return found if found.get("rows") == len(Y_TEST) else None

    # Labels that come in a window after their rows' one wait for its rows (up to ten windows).
    live: Body = wait_for(
        judged,
        timeout=90,
        message="a window with every label in it",
        describe=lambda: str(monitoring_of(k8s, namespace)),
    )
    offline = accuracy_score(Y_TEST, model.predict(X_TEST))
    assert live["metric"] == "accuracy" and live["value"] == pytest.approx(offline, abs=1e-6)
    mdep = get(k8s, namespace, "modeldeployments", "wine") or {}
    degraded = condition(mdep, "PerformanceDegraded")
    assert degraded["status"] == ("True" if offline < 0.99 else "False")

    # The prediction log, on the artifact claim: one line per answered row, no sensitive feature.
    answered = [first.json()["id"], *ids]
    logs = artifacts / "predictions" / "wine"
    wait_for(
        lambda: (
            sum(len(f.read_text().splitlines()) for f in logs.rglob("*.jsonl")) == len(answered)
        ),
        timeout=30,
        message=f"{len(answered)} lines in the prediction log under {logs}",
    )
    lines = [json.loads(line) for f in logs.rglob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(answered)
    assert all(set(line["features"]) == set(NAMES[2:]) for line in lines)
