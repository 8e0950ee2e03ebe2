"""Approvals that prove who approved, on the real API server: the chart's ValidatingAdmissionPolicy
lets only users allowed the verb `approve` on modelversions set spec.approval, and only in their
own name. Users are impersonated (`kubectl --as`) or authenticate with a real token (the CLI)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.approvals import (
    apply,
    approval_policy,
    editor_role,
    grant,
    kubeconfig_for,
    patch_as,
    rendered,
    run_kubectl,
    user,
    wait_until_enforced,
)
from tests.support.crds import install_crds
from tests.support.kube import Kube
from tests.support.training import GROUP, VERSION, get, version_manifest

pytestmark = pytest.mark.usefixtures("crds_installed")

DIGEST = "sha256:" + "ef" * 32
SCIENTIST, APPROVER = "alice@example.com", "bob@example.com"
SCRIPTS = str(Path(sys.executable).parent)


def decision(by: str, state: str = "Approved") -> dict[str, object]:
    return {"spec": {"approval": {"state": state, "by": by, "reason": "reviewed the model card"}}}


def create_version(k8s: Kube, namespace: str, number: int, **spec: object) -> None:
    artifact = {"uri": f"pvc://cairn-artifacts/credit/{number}", "digest": DIGEST}
    body = version_manifest("credit", number, artifact, **spec)
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", body)


@pytest.fixture
def policy(k8s: Kube, namespace: str) -> Iterator[str]:
    """The policy bound to the test's namespace; alice edits versions, bob also approves them,
    and the operator's ServiceAccount has the chart's own Role. Yields the approver role."""
    # The cluster is shared: another checkout's tests may have applied older CRDs since the
    # session began (whose default spec.approval this policy would rightly refuse).
    install_crds(k8s)
    with approval_policy(namespace) as approver:
        editor = editor_role(namespace)
        for name in (SCIENTIST, APPROVER):
            grant(namespace, user(name), editor)
        grant(namespace, user(APPROVER), approver, kind="ClusterRole")
        apply(
            rendered(namespace, "serviceaccount.yaml") + rendered(namespace, "rbac.yaml"),
            namespace,
        )
        create_version(k8s, namespace, 1)
        wait_until_enforced(namespace, "credit-v1", SCIENTIST)
        yield approver


def test_a_data_scientist_without_the_verb_is_refused_with_a_clear_message(
    k8s: Kube, namespace: str, policy: str
) -> None:
    refused = patch_as(SCIENTIST, namespace, "credit-v1", decision(SCIENTIST))
    relabelled = patch_as(
        SCIENTIST, namespace, "credit-v1", {"metadata": {"labels": {"team": "risk"}}}
    )

    assert refused.returncode != 0
    assert "spec.approval may be set or changed only by a user allowed the verb approve" in (
        refused.stderr
    )
    assert f"{SCIENTIST} is not, in namespace {namespace}" in refused.stderr
    assert f"ClusterRole {policy}" in refused.stderr
    # Everything else stays theirs to edit: only the decision is guarded.
    assert relabelled.returncode == 0, relabelled.stderr
    assert "approval" not in (get(k8s, namespace, "modelversions", "credit-v1") or {})["spec"]


def test_an_approver_approves_in_their_own_name_and_cannot_forge_another(
    k8s: Kube, namespace: str, policy: str
) -> None:
    forged = patch_as(APPROVER, namespace, "credit-v1", decision(SCIENTIST))
    approved = patch_as(APPROVER, namespace, "credit-v1", decision(APPROVER))
    rejected_by_scientist = patch_as(
        SCIENTIST, namespace, "credit-v1", {"spec": {"approval": None}}
    )

    assert forged.returncode != 0
    assert f"spec.approval.by must be the name of the user who makes the change, {APPROVER}" in (
        forged.stderr
    )
    assert approved.returncode == 0, approved.stderr
    stored = (get(k8s, namespace, "modelversions", "credit-v1") or {})["spec"]["approval"]
    assert stored == decision(APPROVER)["spec"]["approval"]  # type: ignore[index]
    # Withdrawing a decision is a decision too.
    assert rejected_by_scientist.returncode != 0
    assert "only by a user allowed the verb approve" in rejected_by_scientist.stderr


def test_a_version_cannot_be_created_approved_by_someone_without_the_verb(
    k8s: Kube, namespace: str, policy: str
) -> None:
    body = version_manifest(
        "credit",
        2,
        {"uri": "pvc://cairn-artifacts/credit/2", "digest": DIGEST},
        approval=decision(SCIENTIST)["spec"]["approval"],  # type: ignore[index]
    )
    created = run_kubectl(
        "create", "-n", namespace, f"--as={SCIENTIST}", "-f", "-", stdin=yaml.safe_dump(body)
    )

    assert created.returncode != 0
    assert "only by a user allowed the verb approve" in created.stderr
    # Pending is no decision (older operators wrote it on every new version): anyone may.
    undecided = version_manifest(
        "credit",
        3,
        {"uri": "pvc://cairn-artifacts/credit/3", "digest": DIGEST},
        approval={"state": "Pending"},
    )
    pending = run_kubectl(
        "create", "-n", namespace, f"--as={SCIENTIST}", "-f", "-", stdin=yaml.safe_dump(undecided)
    )
    assert pending.returncode == 0, pending.stderr


def test_the_operators_own_service_account_cannot_approve(
    k8s: Kube, namespace: str, policy: str
) -> None:
    operator = f"system:serviceaccount:{namespace}:cairn"

    can_patch = run_kubectl("auth", "can-i", "patch", "modelversions", "-n", namespace,
                            f"--as={operator}")  # fmt: skip
    can_approve = run_kubectl("auth", "can-i", "approve", "modelversions", "-n", namespace,
                              f"--as={operator}")  # fmt: skip
    refused = patch_as(operator, namespace, "credit-v1", decision(operator))

    assert can_patch.stdout.strip() == "yes"  # the chart's Role lets it patch versions...
    assert can_approve.stdout.strip() == "no"  # ...and not approve them
    assert refused.returncode != 0
    assert f"{operator} is not, in namespace {namespace}" in refused.stderr


def cairn(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        ["cairn", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_cairn_approve_fills_in_who_the_api_server_knows_and_needs_a_reason(
    k8s: Kube, namespace: str, policy: str, tmp_path: Path
) -> None:
    for account in ("reviewer", "intern"):
        k8s.core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
        grant(namespace, {"kind": "ServiceAccount", "name": account, "namespace": namespace},
              editor_role(namespace))  # fmt: skip
    grant(namespace, {"kind": "ServiceAccount", "name": "reviewer", "namespace": namespace},
          policy, kind="ClusterRole")  # fmt: skip
    reviewer = kubeconfig_for(namespace, "reviewer", tmp_path)
    intern = kubeconfig_for(namespace, "intern", tmp_path)

    no_reason = cairn(reviewer, "approve", "credit", "1", "--reason", " ")
    by_intern = cairn(intern, "approve", "credit", "1", "--reason", "looks good")
    by_reviewer = cairn(reviewer, "reject", "credit", "1", "--reason", "fails the fairness gate")

    assert no_reason.returncode == 1 and "--reason is required" in no_reason.stderr
    assert by_intern.returncode == 1
    assert "403" in by_intern.stderr and "not, in namespace" in by_intern.stderr
    assert by_reviewer.returncode == 0, by_reviewer.stderr
    name = f"system:serviceaccount:{namespace}:reviewer"
    assert by_reviewer.stdout.strip() == f"credit-v1 rejected by {name}"
    stored = (get(k8s, namespace, "modelversions", "credit-v1") or {})["spec"]["approval"]
    assert stored == {"state": "Rejected", "by": name, "reason": "fails the fairness gate"}
