"""The chart's approval policy on the real cluster, for one test namespace: the objects
templates/approvals.yaml renders (a ValidatingAdmissionPolicy, its binding, the approver
ClusterRole) under names of the test's own, bound to its namespace only, so that no other test's
approvals are judged by it; and users to try it with, by impersonation or with a real token."""

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.helm import CHART, helm
from tests.support.training import kubectl
from tests.support.wait import wait_for

ACTIVE_TIMEOUT = 60
# Only users the API server authorizes to edit ModelVersions reach the admission policy at all.
EDITOR_RULES = [
    {
        "apiGroups": ["cairn.dev"],
        "resources": ["modelversions", "models"],
        "verbs": ["get", "list", "watch", "create", "patch", "update"],
    }
]


def run_kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def apply(manifests: list[dict[str, Any]], namespace: str) -> None:
    done = run_kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(manifests))
    assert done.returncode == 0, done.stderr


def rendered(namespace: str, template: str, *values: str) -> list[dict[str, Any]]:
    out = helm(
        "template", "cairn", str(CHART), "--namespace", namespace,
        "--show-only", f"templates/{template}",
        "--set", f"watchNamespaces={{{namespace}}}",
        *(arg for value in values for arg in ("--set", value)),
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


@contextmanager
def approval_policy(namespace: str) -> Iterator[str]:
    """The chart's approval policy, binding and approver ClusterRole for `namespace`; yields the
    ClusterRole's name. Deleted afterwards."""
    policy, role = f"cairn-approvals-{namespace}", f"cairn-approver-{namespace}"
    manifests = rendered(
        namespace,
        "approvals.yaml",
        f"approvals.policyName={policy}",
        f"approvals.approverRole.name={role}",
    )
    assert {m["kind"] for m in manifests} == {
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ClusterRole",
    }
    apply(manifests, namespace)
    try:
        yield role
    finally:
        for kind, name in (
            ("validatingadmissionpolicybinding", policy),
            ("validatingadmissionpolicy", policy),
            ("clusterrole", role),
        ):
            run_kubectl("delete", kind, name, "--ignore-not-found", "--wait=false")


def grant(namespace: str, subject: dict[str, str], role: str, kind: str = "Role") -> None:
    """Bind `subject` (a User or ServiceAccount) to `role` in `namespace`."""
    name = f"{subject['name'].replace(':', '-')}-{role}"[:63].rstrip("-")
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [subject],
    }
    apply([binding], namespace)


def editor_role(namespace: str) -> str:
    """A Role that lets a data scientist read and edit ModelVersions, and nothing about
    approving them."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "ml-editor", "namespace": namespace},
        "rules": EDITOR_RULES,
    }
    apply([role], namespace)
    return "ml-editor"


def user(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


def patch_as(who: str, namespace: str, name: str, patch: dict[str, Any], *more: str) -> Any:
    """`kubectl patch` of a ModelVersion as `who` (impersonated)."""
    return run_kubectl(
        "patch", "modelversion", name, "-n", namespace, f"--as={who}",
        "--type=merge", "-p", json.dumps(patch), *more,
    )  # fmt: skip


def wait_until_enforced(namespace: str, version: str, editor: str) -> None:
    """The API server applies a new policy a moment after it is created: wait until a dry run of
    an approval by `editor` (who may patch versions but not approve them) is refused by it."""
    attempt = {"spec": {"approval": {"state": "Approved", "by": editor, "reason": "probe"}}}

    def refused() -> bool:
        done = patch_as(editor, namespace, version, attempt, "--dry-run=server")
        return "ValidatingAdmissionPolicy" in done.stderr

    wait_for(refused, timeout=ACTIVE_TIMEOUT, message="the approval policy to be enforced")


def kubeconfig_for(namespace: str, service_account: str, directory: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount with a short-lived token: the user a
    real `cairn approve` runs as."""
    token = run_kubectl("create", "token", service_account, "-n", namespace, "--duration=1h")
    assert token.returncode == 0, token.stderr
    current = json.loads(run_kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = current["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": service_account, "user": {"token": token.stdout.strip()}}],
        "contexts": [
            {
                "name": service_account,
                "context": {
                    "cluster": cluster["name"],
                    "user": service_account,
                    "namespace": namespace,
                },
            }
        ],
        "current-context": service_account,
    }
    path = directory / f"{service_account}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path
