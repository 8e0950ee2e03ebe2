"""The helm binary the chart's tests run: the one `make helm` builds (hack/helm/build.sh), else a
helm ≥ 3.17 on PATH. Missing, the tests fail and say to run `make helm`: never a silent skip."""

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import REPO_ROOT
from tests.support.kube import Kube
from tests.support.training import kubectl
from tests.support.wait import wait_for
from tests.support.workloads import pod_logs

CHART = REPO_ROOT / "charts/cairn"
# A helm 3 on PATH from 3.17 on will do (`helm install --take-ownership`).
MIN_PATH_MINOR = 17


def _pinned_version() -> str:
    text = (REPO_ROOT / "hack/helm/versions.env").read_text()
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return values["HELM_VERSION"]


@functools.cache
def helm_binary() -> str:
    cache = Path(os.environ.get("CAIRN_CACHE_DIR") or Path.home() / ".cache/cairn")
    built = cache / f"bin/helm-{_pinned_version()}/helm"
    if built.is_file():
        return str(built)
    on_path = shutil.which("helm")
    if on_path:
        version = subprocess.run(
            [on_path, "version", "--template", "{{.Version}}"], capture_output=True, text=True
        ).stdout
        found = re.match(r"v3\.(\d+)\.", version)
        if found and int(found[1]) >= MIN_PATH_MINOR:
            return on_path
    pytest.fail(f"no helm: run `make helm` (builds {built})", pytrace=False)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm; with check, a failure fails the test showing helm's own output."""
    done = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def operator_pods(k8s: Kube, namespace: str, release: str) -> list[Any]:
    """The release's operator pods that are not on their way out."""
    pods = k8s.core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={release}"
    )
    return [pod for pod in pods.items if not pod.metadata.deletion_timestamp]


def ready_operator_pod(k8s: Kube, namespace: str, release: str) -> Any:
    """The release's single operator pod once it is Ready (and no other one is left)."""

    def found() -> Any:
        pods = operator_pods(k8s, namespace, release)
        if len(pods) != 1:
            return None
        ready = [c for c in pods[0].status.conditions or [] if c.type == "Ready"]
        return pods[0] if ready and ready[0].status == "True" else None

    return wait_for(found, timeout=120, message=f"the operator pod in {namespace} to be Ready")


def granted_resources(namespace: str, user: str) -> list[list[str]]:
    """`kubectl auth can-i --list` as `user`: [resource, resource names, verbs] per row with a
    resource (the non-resource URL rows are the cluster's discovery defaults)."""
    out = subprocess.run(
        [kubectl(), "auth", "can-i", "--list", f"--as={user}", "-n", namespace],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    header, *lines = out.splitlines()
    urls, names, verbs = (header.index(h) for h in ("Non-Resource URLs", "Resource Names", "Verbs"))
    rows = [[row[:urls].strip(), row[names:verbs].strip(), row[verbs:].strip()] for row in lines]
    return [row for row in rows if row[0]]


def can_i(verb: str, resource: str, namespace: str | None, user: str) -> bool:
    """What the API server's authorizer answers for `user` (`kubectl auth can-i`)."""
    scope = ["-n", namespace] if namespace else []
    done = subprocess.run(
        [kubectl(), "auth", "can-i", verb, resource, f"--as={user}", *scope],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() == "yes"


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def operator_log(k8s: Kube, namespace: str, pod: str) -> str:
    return pod_logs(k8s, namespace, pod, container="operator")
