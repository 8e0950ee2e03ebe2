"""GitOps: after the operator reconciled a Model and a TrainingRun that Git (here: a server-side
apply under Argo CD's field manager) created, the operator's field managers own nothing under
spec of any Cairn object it updated, so Argo CD never sees drift the operator caused."""

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_training import TINY_TRAINER
from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.training import GROUP, VERSION, kubectl, wait_for_phase, wait_for_run

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
GITOPS_MANAGER = "argocd-controller"


def manifests() -> list[Body]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "gitops-code"},
            "data": {"train.py": textwrap.dedent(TINY_TRAINER)},
        },
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Model",
            "metadata": {"name": "gitops"},
            "spec": {
                "policy": {"gates": [{"metric": "accuracy", "op": ">=", "threshold": 0.5}]},
                "aliases": {"production": 1},
            },
        },
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TrainingRun",
            "metadata": {"name": "gitops-1"},
            "spec": {
                "model": "gitops",
                "image": "docker.io/cairn/trainer:dev",
                "imagePullPolicy": "Never",
                "dataset": {"uri": "sklearn://iris"},
                "code": {"configMap": {"name": "gitops-code", "key": "train.py"}},
            },
        },
    ]


def spec_owners(obj: Body) -> list[str]:
    """Each field manager (but Git's) that owns something under spec."""
    return [
        entry["manager"]
        for entry in obj["metadata"].get("managedFields") or []
        if entry["manager"] != GITOPS_MANAGER
        and not entry.get("subresource")
        and "f:spec" in (entry.get("fieldsV1") or {})
    ]


def managers(obj: Body) -> set[str]:
    return {entry["manager"] for entry in obj["metadata"].get("managedFields") or []}


def test_the_operator_owns_no_spec_field(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    subprocess.run(
        [kubectl(), "apply", "--server-side", f"--field-manager={GITOPS_MANAGER}",
         "-n", namespace, "-f", "-"],
        input=yaml.safe_dump_all(manifests()), text=True, check=True,
    )  # fmt: skip
    wait_for_run(k8s, namespace, "gitops-1", "Succeeded", timeout=240, registered=True)
    wait_for_phase(k8s, namespace, "gitops-v1", "Approved")

    def read(plural: str, name: str) -> Body:
        found: Body = k8s.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
        return found

    model, run = read("models", "gitops"), read("trainingruns", "gitops-1")
    for obj in (model, run):
        # The operator wrote status (and kopf its annotations) under managers of its own ...
        assert managers(obj) - {GITOPS_MANAGER}, obj["metadata"]["managedFields"]
        # ... and none of them owns a field of spec: only Git does.
        assert spec_owners(obj) == [], obj["metadata"]["managedFields"]

    # The ModelVersion is the operator's record: creating it made its manager own spec (a create
    # is recorded as an Update); that entry must not have changed since the creation.
    version = read("modelversions", "gitops-v1")
    created = version["metadata"]["creationTimestamp"]
    spec_entries = [
        entry
        for entry in version["metadata"]["managedFields"]
        if not entry.get("subresource") and "f:spec" in (entry.get("fieldsV1") or {})
    ]
    assert spec_entries and all(e["time"] == created for e in spec_entries), spec_entries
