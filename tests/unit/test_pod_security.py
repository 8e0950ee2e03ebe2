"""Every pod the operator builds (a training Job's, a dataset probe's, a model server's) meets the
restricted Pod Security Standard, checked rule by rule as the API server's PodSecurity admission
does (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted); the
integration tests' namespaces enforce it on the real cluster. Each also shares its process
namespace, so that SIGTERM reaches a container's process (cairn.kube.podprocess)."""

from typing import Any

import pytest

from cairn.api import ContinuousTraining, ModelDeployment, TrainingRun
from cairn.api.trainingrun import ChampionRef
from cairn.controllers.continuoustraining import probe
from cairn.controllers.deployment import manifests
from cairn.controllers.deployment.target import Target
from cairn.controllers.trainingrun import jobspec

Body = dict[str, Any]
DIGEST = "sha256:" + "ab" * 32
# The volume types the restricted standard allows.
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def violations(pod: Body) -> list[str]:
    """What in a pod spec the restricted standard refuses."""
    found = []
    context = pod.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(flag)
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds)}")
    for container in [*pod["containers"], *(pod.get("initContainers") or [])]:
        mine = container.get("securityContext") or {}
        name = container["name"]
        if mine.get("privileged"):
            found.append(f"{name}: privileged")
        if mine.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation must be false")
        capabilities = mine.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{name}: capabilities must drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities")
        if not mine.get("runAsNonRoot", context.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot must be true")
        if mine.get("runAsUser", context.get("runAsUser")) == 0:
            found.append(f"{name}: runs as uid 0")
        seccomp = (mine.get("seccompProfile") or context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{name}: hostPort")
    return found


def training_pod() -> Body:
    run = TrainingRun.model_validate(
        {
            "metadata": {"name": "iris-2", "namespace": "ml", "uid": "u1"},
            "spec": {
                "model": "iris",
                "dataset": {"uri": "pvc://data/iris.csv"},
                "code": {"configMap": {"name": "train", "key": "train.py"}},
            },
        }
    )
    champion = ChampionRef(version=1, uri="pvc://cairn-artifacts/iris/iris-1", digest=DIGEST)
    job = jobspec.build_job(run, champion)
    pod: Body = job["spec"]["template"]["spec"]
    return pod


def probe_pod() -> Body:
    ct = ContinuousTraining.model_validate(
        {
            "metadata": {"name": "iris", "namespace": "ml", "uid": "u2", "generation": 1},
            "spec": {
                "model": "iris",
                "template": {"dataset": {"uri": "pvc://data/iris.csv"}},
                "triggers": {"dataset": {}},
            },
        }
    )
    pod: Body = probe.build_pod(ct, "iris-probe")["spec"]
    return pod


def serving_pod() -> Body:
    mdep = ModelDeployment.model_validate(
        {
            "metadata": {"name": "iris", "namespace": "ml", "generation": 1, "uid": "u3"},
            "spec": {"model": "iris", "version": 1, "monitoring": {"log": {"sampleRate": 0.1}}},
        }
    )
    target = Target("iris", 1, "pvc://cairn-artifacts/iris/iris-1", DIGEST)
    built = manifests.build_deployment(mdep, "stable", target, 1)
    pod: Body = built["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("build", [training_pod, probe_pod, serving_pod])
def test_the_operators_pods_meet_the_restricted_standard(build: Any) -> None:
    assert violations(build()) == []


@pytest.mark.parametrize("build", [training_pod, probe_pod, serving_pod])
def test_the_operators_pods_share_their_process_namespace(build: Any) -> None:
    """The container's process is not PID 1: a SIGTERM it has no handler for still ends it
    (tests/integration/test_training.py shows it on a real pod)."""
    assert build()["shareProcessNamespace"] is True


def test_the_check_refuses_what_the_standard_refuses() -> None:
    pod = training_pod()
    pod["containers"][0]["securityContext"] = {}
    pod["volumes"].append({"name": "node", "hostPath": {"path": "/var"}})
    pod["hostNetwork"] = True
    found = violations(pod)
    assert "hostNetwork" in found
    assert any("volume node" in v for v in found)
    assert any("allowPrivilegeEscalation" in v for v in found)
    assert any("drop ALL" in v for v in found)
