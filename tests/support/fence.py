"""A fence around a cluster-wide operator under test: a ValidatingAdmissionPolicy that refuses
every write (create, update, patch, delete, and the pod proxy's connect) its ServiceAccount makes
outside the namespaces of its test.

A cluster-wide operator sees the objects of every other test, of runs at once on the same cluster
too, and would fight their own operators over them. Fenced, it still watches and reads them all
(its RBAC, the ClusterRole, is untouched), but the API server refuses whatever it would change
there, so it cannot disturb them. The API server enforces this itself, whatever the operator does.
"""

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from tests.support.training import kubectl
from tests.support.wait import wait_for

ACTIVE_TIMEOUT = 60
# In each refusal the fence causes, so that a log or an error can be traced to it.
MESSAGE = "fenced by the test"


def _manifests(name: str, user: str, allowed: list[str]) -> list[dict[str, Any]]:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["*"],
                        "apiVersions": ["*"],
                        "operations": ["*"],
                        "resources": ["*/*"],  # every resource and subresource (pods/proxy)
                        "scope": "*",
                    }
                ]
            },
            # Only the operator's own requests are judged: no other user is ever refused.
            "matchConditions": [
                {"name": "the-fenced-user", "expression": f"request.userInfo.username == {user!r}"}
            ],
            "validations": [
                {
                    # Cluster-scoped requests have no namespace: refused too.
                    "expression": (
                        f"has(request.namespace) && request.namespace in {json.dumps(allowed)}"
                    ),
                    "messageExpression": (
                        f"'{MESSAGE}: {user} may change nothing in ' + "
                        "(has(request.namespace) ? request.namespace : 'the cluster scope')"
                    ),
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def _kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def refuses(user: str, namespace: str) -> bool:
    """Whether the fence refuses `user` a write in `namespace`: a server-side dry run, as `user`
    with every permission (so that only admission can refuse it)."""
    done = _kubectl(
        "create", "configmap", "fence-probe", "-n", namespace, "--dry-run=server",
        f"--as={user}", "--as-group=system:masters",
    )  # fmt: skip
    return done.returncode != 0 and MESSAGE in done.stderr


@contextmanager
def fenced(name: str, user: str, allowed: list[str], outside: str) -> Iterator[None]:
    """The fence for `user` (a ServiceAccount's user name), letting it write only in `allowed`;
    in force (a write in the namespace `outside` refused) before this yields, deleted after."""
    manifests = _manifests(name, user, allowed)
    done = _kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    assert done.returncode == 0, done.stderr
    try:
        # The API server loads a new policy a moment after it is created.
        wait_for(
            lambda: refuses(user, outside),
            timeout=ACTIVE_TIMEOUT,
            message=f"the fence {name} to refuse {user} in {outside}",
        )
        yield
    finally:
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            _kubectl("delete", kind, name, "--ignore-not-found")
