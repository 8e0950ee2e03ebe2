"""Creating TrainingRuns and waiting for what the operator makes of them."""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.support.kube import Kube, read_or_none
from tests.support.wait import wait_for

GROUP, VERSION = "cairn.dev", "v1alpha1"
# A training script that takes seconds: a decision tree on the run's dataset.
TREE_TRAINER = (
    "from sklearn.tree import DecisionTreeClassifier\n"
    "from cairn import training\n"
    "data = training.load_dataset()\n"
    "model = DecisionTreeClassifier().fit(data.X, data.y)\n"
    "training.log_metric('accuracy', float(model.score(data.X, data.y)))\n"
    "training.save_model(model)\n"
)
Body = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")


def kubectl() -> str:
    """kubectl from PATH, else the one hack/localkube built."""
    found = shutil.which("kubectl")
    if found:
        return found
    versions = (Path(__file__).resolve().parents[2] / "hack/localkube/versions.env").read_text()
    k8s = dict(line.split("=", 1) for line in versions.splitlines() if "=" in line)
    cache = Path(os.environ.get("CAIRN_CACHE_DIR") or Path.home() / ".cache/cairn")
    return str(cache / f"bin/kubernetes-{k8s['KUBERNETES_VERSION']}/kubectl")


def apply_example(namespace: str, directory: Path) -> None:
    subprocess.run([kubectl(), "apply", "-n", namespace, "-f", str(directory)], check=True)


def get(k8s: Kube, namespace: str, plural: str, name: str) -> Body | None:
    found: Body | None = read_or_none(
        k8s.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
    )
    return found


def condition(obj: Body, type_: str) -> Body:
    """The condition of that type in obj's status, or {} when there is none."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def script_config_map(k8s: Kube, namespace: str, name: str, script: str) -> None:
    k8s.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": name}, "data": {"train.py": script}}
    )


def create_model(k8s: Kube, namespace: str, name: str, spec: Body) -> Body:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": spec,
    }
    created: Body = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "models", body
    )
    return created


def version_manifest(model: str, number: int, artifact: Body, **spec: Any) -> Body:
    """A ModelVersion as the registry names and labels it (<model>-v<number>)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{number}", "labels": {"cairn.dev/model": model}},
        "spec": {"model": model, "version": number, "artifact": artifact, **spec},
    }


def create_run(
    k8s: Kube,
    namespace: str,
    name: str,
    *,
    model: str,
    code: str | None = None,
    image: str = "docker.io/cairn/trainer:dev",
    **spec: Any,
) -> Body:
    body: Body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "image": image,
            "imagePullPolicy": "Never",
            "dataset": {"uri": "sklearn://iris"},
            **({"code": {"configMap": {"name": code, "key": "train.py"}}} if code else {}),
            **spec,
        },
    }
    created: Body = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingruns", body
    )
    return created


def _describe(k8s: Kube, namespace: str, plural: str, name: str) -> str:
    obj = get(k8s, namespace, plural, name)
    return f"{plural}/{name} status: {(obj or {}).get('status')}"


def wait_for_run(
    k8s: Kube, namespace: str, name: str, phase: str, *, timeout: float, registered: bool = False
) -> Body:
    """The run once it reaches `phase` (and, if asked, is registered); fails at once if it ends
    in the other terminal phase."""

    def reached() -> Body | None:
        run = get(k8s, namespace, "trainingruns", name)
        status = (run or {}).get("status") or {}
        current = status.get("phase")
        if current in TERMINAL and current != phase:
            raise AssertionError(f"run {name} ended {current}, not {phase}: {status}")
        if current != phase:
            return None
        if registered and condition(run or {}, "Registered").get("status") != "True":
            return None
        return run

    result: Body = wait_for(
        reached,
        timeout=timeout,
        message=f"TrainingRun {name} to reach {phase}",
        describe=lambda: _describe(k8s, namespace, "trainingruns", name),
    )
    return result


def wait_for_phase(k8s: Kube, namespace: str, version: str, phase: str) -> Body:
    def reached() -> Body | None:
        found = get(k8s, namespace, "modelversions", version)
        return found if found and (found.get("status") or {}).get("phase") == phase else None

    result: Body = wait_for(
        reached,
        timeout=60,
        message=f"ModelVersion {version} to be {phase}",
        describe=lambda: _describe(k8s, namespace, "modelversions", version),
    )
    return result


def version_numbers(k8s: Kube, namespace: str, model: str) -> list[int]:
    listing = k8s.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "modelversions", label_selector=f"cairn.dev/model={model}"
    )
    return sorted(int(v["spec"]["version"]) for v in listing["items"])


def username(k8s: Kube) -> str:
    """Who the API server takes the tests for (a SelfSubjectReview)."""
    review: Any = client.AuthenticationV1Api(k8s.api_client).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
    )
    return str(review.status.user_info.username)


def approve(k8s: Kube, namespace: str, version: str, reason: str = "tests") -> Body:
    """Approve a ModelVersion as `cairn approve` does: in the tests' own name, with a reason
    (the chart's approval policy refuses any other name)."""
    approval = {"state": "Approved", "by": username(k8s), "reason": reason}
    patched: Body = k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "modelversions", version, {"spec": {"approval": approval}}
    )
    return patched


def event_reasons(k8s: Kube, namespace: str, name: str) -> set[str]:
    """Reasons of the Events about the object `name` (any kind)."""
    events = k8s.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return {event.reason for event in events.items}


def expect_event(k8s: Kube, namespace: str, name: str, reason: str, timeout: float = 30) -> None:
    """Wait for an Event with `reason` about `name`."""
    expect_events(k8s, namespace, name, {reason}, timeout=timeout)


def expect_events(
    k8s: Kube, namespace: str, name: str, reasons: set[str], timeout: float = 30
) -> None:
    """Wait for Events with every one of `reasons` about `name`: the operator posts Events
    after the status write that a test usually waits for, so they may lag it by a moment (on a
    loaded node, by seconds)."""
    wait_for(
        lambda: reasons <= event_reasons(k8s, namespace, name),
        timeout=timeout,
        message=f"{', '.join(sorted(reasons))} Events about {name}",
        describe=lambda: f"events: {sorted(event_reasons(k8s, namespace, name))}",
    )
