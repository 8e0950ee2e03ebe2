"""Governance on the real cluster, with the credit example: fairness measured in the training pod
and gated by the Model (numbers equal to fairlearn's offline on the same split), a person's
approval, the model card from the objects, and a history that outlives the Events."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cairn.cli.output import number
from tests.support.credit import EXAMPLE, offline_fairness, write_data
from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.training import (
    TREE_TRAINER,
    apply_example,
    condition,
    create_model,
    create_run,
    event_reasons,
    expect_event,
    get,
    kubectl,
    script_config_map,
    username,
    wait_for_phase,
    wait_for_run,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
TRAINING_TIMEOUT = 300
SERVE_TIMEOUT = 240
SCRIPTS = str(Path(sys.executable).parent)
CARD_SECTIONS = (
    "Model details", "Intended use", "Factors", "Training data", "Training parameters",
    "Evaluation: metrics and gates", "Fairness (quantitative analysis)", "Lineage", "Approvals",
    "Serving and rollout history", "Ethical considerations", "Caveats and recommendations",
)  # fmt: skip


def cairn(*args: str) -> str:
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["cairn", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def trained(k8s: Kube, namespace: str, run: str) -> Body:
    """The ModelVersion the run became."""
    done = wait_for_run(k8s, namespace, run, "Succeeded", timeout=TRAINING_TIMEOUT, registered=True)
    found: Body = get(k8s, namespace, "modelversions", done["status"]["modelVersion"]) or {}
    return found


def local_artifact(artifacts: Path, version: Body) -> Path:
    """Where the version's pvc://cairn-artifacts/... files are on this machine."""
    uri = str(version["spec"]["artifact"]["uri"])
    return artifacts / uri.removeprefix("pvc://cairn-artifacts/")


def assert_recorded_is_offline(version: Body, offline: Body) -> None:
    (recorded,) = version["spec"]["fairness"]
    assert recorded["sensitiveFeature"] == "sex"
    for measure in ("demographicParityDifference", "disparateImpactRatio"):
        assert recorded[measure] == offline[measure], measure
    assert recorded["equalizedOddsDifference"] == offline["equalizedOddsDifference"]
    groups = {g["group"]: g for g in recorded["groups"]}
    for group in ("female", "male"):
        assert groups[group]["selectionRate"] == offline["selectionRates"][group]
        assert groups[group]["count"] == offline["counts"][group]


def explained(offline: Body) -> str:
    """The groups and numbers a failing demographic parity gate names."""
    rates, counts = offline["selectionRates"], offline["counts"]
    return (
        f"demographicParityDifference for sex = {offline['demographicParityDifference']:.4g}, "
        f"above max 0.1: selection rate female {rates['female']:.4g} (n={counts['female']}), "
        f"male {rates['male']:.4g} (n={counts['male']})"
    )


def actions(k8s: Kube, namespace: str, name: str) -> list[str]:
    status = (get(k8s, namespace, "modelversions", name) or {}).get("status") or {}
    return [entry["action"] for entry in status.get("history") or []]


def serving(k8s: Kube, namespace: str, version: int) -> Body:
    def done() -> Body | None:
        mdep = get(k8s, namespace, "modeldeployments", "credit") or {}
        status = mdep.get("status") or {}
        ok = (
            status.get("phase") == "Available"
            and (status.get("stable") or {}).get("version") == version
        )
        return mdep if ok else None

    found: Body = wait_for(
        done,
        timeout=SERVE_TIMEOUT,
        message=f"ModelDeployment credit to serve credit-v{version}",
        describe=lambda: str(get(k8s, namespace, "modeldeployments", "credit")),
    )
    return found


def test_the_credit_example_from_fairness_gates_to_card_and_history(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    csv = write_data(artifacts / "data/credit.csv")
    apply_example(namespace, EXAMPLE)
    naive = trained(k8s, namespace, "credit-naive")
    mitigated = trained(k8s, namespace, "credit-mitigated")
    naive = wait_for_phase(k8s, namespace, naive["metadata"]["name"], "Invalid")
    mitigated = wait_for_phase(k8s, namespace, mitigated["metadata"]["name"], "PendingApproval")

    # Fairness gates: the numbers the pods recorded are fairlearn's, computed again offline from
    # the saved models on the same split; the naive model fails with the groups' numbers.
    naive_offline = offline_fairness(
        csv, local_artifact(artifacts, naive), naive["spec"]["artifact"]["digest"]
    )
    fair_offline = offline_fairness(
        csv, local_artifact(artifacts, mitigated), mitigated["spec"]["artifact"]["digest"]
    )
    assert_recorded_is_offline(naive, naive_offline)
    assert_recorded_is_offline(mitigated, fair_offline)
    validated = condition(naive, "Validated")
    assert (validated["status"], validated["reason"]) == ("False", "GatesFailed")
    assert explained(naive_offline) in validated["message"]
    assert (
        f"disparateImpactRatio for sex = {naive_offline['disparateImpactRatio']:.4g}, below min 0.8"
        in validated["message"]
    )
    assert condition(mitigated, "Validated")["status"] == "True"
    assert [g["passed"] for g in mitigated["status"]["fairnessGates"]] == [True, True]

    # A person approves, in their own name; the alias names it and the deployment serves it.
    mitigated_name, number_ = mitigated["metadata"]["name"], mitigated["spec"]["version"]
    cairn("approve", "credit", str(number_), "-n", namespace, "--reason", "fair; card reviewed")
    approved = wait_for_phase(k8s, namespace, mitigated_name, "Approved")
    me = username(k8s)
    assert approved["spec"]["approval"] == {
        "state": "Approved", "by": me, "reason": "fair; card reviewed"
    }  # fmt: skip
    k8s.custom.patch_namespaced_custom_object(
        "cairn.dev", "v1alpha1", namespace, "models", "credit",
        {"spec": {"aliases": {"production": number_}}},
    )  # fmt: skip
    serving(k8s, namespace, number_)
    wait_for(
        lambda: "Serving" in actions(k8s, namespace, mitigated_name),
        timeout=60,
        message=f"{mitigated_name}'s history to record that it is served",
    )

    # The model card: every section, and the objects' numbers.
    version = get(k8s, namespace, "modelversions", mitigated_name) or {}
    card = cairn("card", "credit", str(number_), "-n", namespace)
    page = cairn("card", "credit", str(number_), "-n", namespace, "-o", "html")
    for title in CARD_SECTIONS:
        assert f"## {title}" in card and f"<h2>{title}</h2>" in page.replace("&amp;", "&")
    (fairness,) = version["spec"]["fairness"]
    for group in fairness["groups"]:
        row = f"| {group['group']} | {group['count']} | {number(group['selectionRate'])} | "
        assert row in card, row
    dpd = number(fairness["demographicParityDifference"])
    assert f"| Demographic parity difference | {dpd} |" in card
    assert f"| accuracy | {number(version['spec']['metrics']['accuracy'])} |" in card
    dataset = version["spec"]["source"]["dataset"]
    assert f"**Rows:** {dataset['rows']}" in card and dataset["digest"] in card
    assert f"Approved by {me}: fair; card reviewed" in card
    assert "| credit | stable |" in card
    assert "sex (sensitive)" in card and version["spec"]["source"]["imageId"] in card

    # The history outlives the Events.
    subprocess.run(
        [kubectl(), "delete", "events", "--all", "-n", namespace], check=True, capture_output=True
    )
    assert "Approved" not in event_reasons(k8s, namespace, mitigated_name)
    entries = json.loads(cairn("history", "credit", "-n", namespace, "-o", "json"))
    said = {(e["what"], e["subject"]): e["detail"] for e in entries}
    assert explained(naive_offline) in said[("validated", naive["metadata"]["name"])]
    assert said[("approved", mitigated_name)] == f"Approved by {me}: fair; card reviewed"
    assert ("alias moved", f"production - → {number_}") in said
    assert said[("serving", mitigated_name)] == "ModelDeployment/credit: - → stable"
    model = get(k8s, namespace, "models", "credit") or {}
    assert {(e["action"], e.get("version"), e.get("by")) for e in model["status"]["history"]} >= {
        ("VersionApproved", number_, me)
    }


def test_a_fairness_gate_without_recorded_fairness_makes_the_version_invalid(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "tree", TREE_TRAINER)
    gate = {"metric": "demographicParityDifference", "sensitiveFeature": "sex", "max": 0.1}
    create_model(
        k8s, namespace, "iris", {"sensitiveFeatures": ["sex"], "policy": {"fairness": [gate]}}
    )
    create_run(k8s, namespace, "iris-1", model="iris", code="tree")

    wait_for_run(k8s, namespace, "iris-1", "Succeeded", timeout=TRAINING_TIMEOUT, registered=True)
    version = wait_for_phase(k8s, namespace, "iris-v1", "Invalid")

    validated = condition(version, "Validated")
    assert validated["reason"] == "GatesFailed"
    assert (
        "the training run did not measure fairness for sensitive feature sex"
        in (validated["message"])
    )
    assert (
        "training.log_fairness(y_test, model.predict(X_test), {'sex': ...})"
        in (validated["message"])
    )
    (result,) = version["status"]["fairnessGates"]
    assert (result["passed"], result.get("value")) == (False, None)
    expect_event(k8s, namespace, "iris-v1", "GatesFailed")
