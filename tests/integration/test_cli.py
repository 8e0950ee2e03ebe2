"""The `cairn` read commands against the real API server, run as a user runs them: the installed
`cairn` script, and `kubectl cairn` through kubectl's plugin mechanism. Status is written through
the status subresource, as the operator writes it."""

import json
from typing import Any

import pytest

from tests.support.cli import cairn, ok
from tests.support.kube import Kube
from tests.support.training import GROUP, VERSION, kubectl, version_manifest

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
DIGEST = "sha256:" + "cd" * 32
MERGE = "application/merge-patch+json"
T0 = "2026-01-02T03:04:05Z"


def condition(type_: str, status: str, reason: str, message: str = "") -> Body:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message or reason,
        "lastTransitionTime": T0,
        "observedGeneration": 1,
    }


def create(k8s: Kube, namespace: str, plural: str, body: Body, status: Body | None) -> None:
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    if status is not None:
        k8s.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, body["metadata"]["name"], {"status": status},
            _content_type=MERGE,
        )  # fmt: skip


def version_body(number: int, metrics: Body, params: Body) -> Body:
    artifact = {
        "uri": f"pvc://cairn-artifacts/iris/iris-{number}",
        "digest": DIGEST,
        "size": 4096,
        "format": "sklearn-joblib",
    }
    source = {
        "run": f"iris-{number}",
        "runUid": f"00000000-0000-4000-8000-00000000000{number}",
        "image": "docker.io/cairn/trainer:dev",
        "codeRevision": f"rev-{number}",
        "params": params,
        "dataset": {"uri": "sklearn://iris", "digest": DIGEST},
    }
    return version_manifest("iris", number, artifact, source=source, metrics=metrics)


@pytest.fixture
def registry(k8s: Kube, namespace: str) -> None:
    """Model iris with two versions: v1 approved and aliased production, v2 pending approval;
    and a ModelDeployment iris in a canary rollout of v2."""
    model = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": "iris"},
        "spec": {
            "policy": {"gates": [{"metric": "accuracy", "op": ">=", "threshold": 0.9}]},
            "aliases": {"production": 1},
        },
    }
    create(k8s, namespace, "models", model, {
        "observedGeneration": 1, "latestVersion": 2,
        "aliases": {"production": 1},
        "conditions": [condition("Ready", "True", "Ready"),
                       condition("AliasesResolved", "True", "Resolved")],
    })  # fmt: skip
    create(k8s, namespace, "modelversions", version_body(1, {"accuracy": 0.95, "f1": 0.94},
           {"max_depth": 2}), {
        "observedGeneration": 1, "phase": "Approved", "keyMetric": "accuracy=0.95",
        "conditions": [condition("Validated", "True", "GatesPassed"),
                       condition("Approved", "True", "AutoApproved"),
                       condition("Ready", "True", "Ready")],
    })  # fmt: skip
    create(k8s, namespace, "modelversions", version_body(2, {"accuracy": 0.97, "f1": 0.96},
           {"max_depth": 3}), {
        "observedGeneration": 1, "phase": "PendingApproval", "keyMetric": "accuracy=0.97",
        "conditions": [condition("Validated", "True", "GatesPassed"),
                       condition("Approved", "False", "PendingApproval")],
    })  # fmt: skip
    mdep = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris"},
        "spec": {
            "model": "iris",
            "alias": "production",
            "replicas": 2,
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": 50}, {"pause": {}}],
                    "analysis": {"failureLimit": 2},
                }
            },
        },
    }
    create(k8s, namespace, "modeldeployments", mdep, {
        "observedGeneration": 1, "phase": "Progressing",
        "conditions": [condition("Available", "True", "MinimumReplicasAvailable"),
                       condition("Progressing", "True", "CanaryProgressing"),
                       condition("Degraded", "False", "Healthy")],
        "stable": {"version": 1, "replicas": 1, "readyReplicas": 1},
        "canary": {"version": 2, "weight": 50, "step": 0, "replicas": 1, "readyReplicas": 1,
                   "failedIntervals": 1, "verdict": "Fail", "lastAnalysisAt": T0,
                   "analysis": [{"name": "errorRate", "value": 0.2, "stableValue": 0.0,
                                 "threshold": "max 0.05", "verdict": "Fail"}]},
        "url": f"http://iris.{namespace}.svc:8080",
        "message": "canary iris-v2 at step 1/2, weight 50%",
    })  # fmt: skip


@pytest.mark.usefixtures("registry")
def test_models_and_versions(namespace: str) -> None:
    models = ok("models", "-n", namespace).splitlines()
    assert models[0].split() == ["NAME", "LATEST", "VERSIONS", "ALIASES", "READY", "AGE"]
    assert models[1].split()[:5] == ["iris", "2", "2", "production=1", "True"]

    rows = [line.split() for line in ok("versions", "iris", "-n", namespace).splitlines()]
    assert rows[0] == [
        *("VERSION", "PHASE", "VALIDATED", "APPROVAL", "ALIASES", "SERVED", "BY"),
        *("ACCURACY", "F1", "AGE"),
    ]
    # Nothing serves them: SERVED BY is empty.
    assert rows[1][:8] == [
        *("iris-v1", "Approved", "True", "auto", "production", "<none>", "0.95", "0.94")
    ]
    assert rows[2][:8] == [
        *("iris-v2", "PendingApproval", "True", "Pending", "<none>", "<none>", "0.97", "0.96")
    ]


@pytest.mark.usefixtures("registry")
def test_lineage(namespace: str) -> None:
    text = ok("lineage", "iris", "v2", "-n", namespace)
    assert "ModelVersion:     iris-v2" in text
    assert "Run:              iris-2 (deleted; uid 00000000-0000-4000-8000-000000000002)" in text
    assert "Code:             revision rev-2" in text
    assert f"Artifact digest:  {DIGEST}" in text
    assert (
        "Previous:         iris-v1 (metrics: accuracy 0.95 → 0.97, f1 0.94 → 0.96; params: "
        "max_depth 2 → 3; code changed)"
    ) in text

    found = json.loads(ok("lineage", "iris", "2", "-n", namespace, "-o", "json"))
    assert found["previous"]["name"] == "iris-v1"
    assert found["params"] == {"max_depth": 3}
    assert found["dataset"] == {"uri": "sklearn://iris", "digest": DIGEST}


@pytest.mark.usefixtures("registry")
def test_status_as_json(namespace: str) -> None:
    found = json.loads(ok("status", "iris", "-n", namespace, "-o", "json"))
    assert found["stable"] == {"version": 1, "replicas": 1, "readyReplicas": 1}
    assert found["canary"]["version"] == 2 and found["canary"]["weight"] == 50
    assert (found["canary"]["step"], found["canary"]["steps"]) == (1, 2)
    assert found["canary"]["failureLimit"] == 2
    assert found["analysis"] == [
        {"name": "errorRate", "value": 0.2, "stableValue": 0.0, "threshold": "max 0.05",
         "verdict": "Fail"}
    ]  # fmt: skip
    assert {c["type"]: c["status"] for c in found["conditions"]} == {
        "Available": "True",
        "Progressing": "True",
        "Degraded": "False",
    }
    text = ok("status", "iris", "-n", namespace)
    assert "Canary:    v2, weight 50%, step 1/2: setWeight 50, 1/1 ready" in text


@pytest.mark.usefixtures("registry")
def test_kubectl_cairn_is_a_plugin(namespace: str) -> None:
    done = cairn("models", "-n", namespace, program=(kubectl(), "cairn"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[:3] == ["iris", "2", "2"]


def test_missing_objects_are_an_error(namespace: str) -> None:
    for args, said in (
        (("versions", "wine"), f"Model wine not found in namespace {namespace}"),
        (("lineage", "wine", "1"), f"ModelVersion wine-v1 not found in namespace {namespace}"),
        (("status", "wine"), f"ModelDeployment wine not found in namespace {namespace}"),
    ):
        done = cairn(*args, "-n", namespace)
        assert done.returncode == 1
        assert said in done.stderr
        assert "Traceback" not in done.stderr
