"""ModelVersion.status.deployments: which ModelDeployments serve each version, so `kubectl get`
and `cairn versions` show what is live. Written by the ModelDeployment's reconcile, level-based:
the versions it serves list it, the versions it stopped serving do not. A ModelDeployment
deleted while the operator was down never reconciles again: the Model's periodic reconcile
prunes the names of ModelDeployments that no longer exist."""

from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.controllers.deployment.target import version_name
from cairn.kube import objects
from cairn.kube.errors import is_conflict

Body = dict[str, Any]
VERSIONS, DEPLOYMENTS = "modelversions", "modeldeployments"
ATTEMPTS = 5


def served(status: Body | None) -> set[int]:
    """The versions a ModelDeployment's status says it runs (stable and canary)."""
    found = set()
    for track in ("stable", "canary"):
        version = ((status or {}).get(track) or {}).get("version")
        if version:
            found.add(int(version))
    return found


def _mark(namespace: str, version: str, deployment: str, serving: bool) -> None:
    """Add or remove `deployment` in the version's status.deployments, guarded by its
    resourceVersion: two ModelDeployments of one model may write it at the same time."""
    for _ in range(ATTEMPTS):
        found = objects.get(VERSIONS, namespace, version)
        if found is None:
            return
        names = set((found.get("status") or {}).get("deployments") or [])
        wanted = names | {deployment} if serving else names - {deployment}
        if wanted == names:
            return
        status = found.setdefault("status", {})
        status.pop("deployments", None)
        if wanted:
            status["deployments"] = sorted(wanted)
        try:
            objects.replace_status(VERSIONS, found)
            return
        except ApiException as error:
            if not is_conflict(error):
                raise
    raise RuntimeError(f"ModelVersion {version} kept changing; will retry")


def record(mdep: Body, old_status: Body | None, new_status: Body) -> None:
    meta, model = mdep["metadata"], mdep["spec"]["model"]
    now = served(new_status)
    for number in now | served(old_status):
        _mark(meta["namespace"], version_name(model, number), meta["name"], number in now)


def forget(namespace: str, model: str, deployment: str) -> None:
    """A deleted ModelDeployment serves nothing any more."""
    for version in objects.list_(VERSIONS, namespace, f"cairn.dev/model={model}"):
        _mark(namespace, version["metadata"]["name"], deployment, False)


def prune(namespace: str, model: str, versions: list[Body]) -> None:
    """Remove from the versions' lists the ModelDeployments of `model` that are gone."""
    listed = [v for v in versions if (v.get("status") or {}).get("deployments")]
    if not listed:
        return  # the common case costs no API call
    existing = {
        mdep["metadata"]["name"]
        for mdep in objects.list_(DEPLOYMENTS, namespace)
        if mdep["spec"].get("model") == model and not mdep["metadata"].get("deletionTimestamp")
    }
    for version in listed:
        for gone in set(version["status"]["deployments"]) - existing:
            _mark(namespace, version["metadata"]["name"], gone, False)
