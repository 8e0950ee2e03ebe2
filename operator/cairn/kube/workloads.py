"""Workloads the operator runs: Jobs and pods of training runs (create, read, suspend, log
tails), and the Deployments and Services that serve models."""

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from cairn.api.labels import selector
from cairn.kube import client
from cairn.kube.errors import is_not_found

Body = dict[str, Any]


def _raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Body:
    """The API server's JSON as plain dicts in camelCase, as in the YAML a user reads, for the
    pure observation code. Read raw: the client's model classes cost more CPU than the
    request itself (a Job with its managedFields, built into objects and back)."""
    response = call(*args, _preload_content=False, **kwargs)
    body: Body = json.loads(response.data)
    return body


def get_job(namespace: str, name: str) -> Body | None:
    try:
        return _raw(client.batch().read_namespaced_job, name, namespace)
    except ApiException as error:
        if is_not_found(error):
            return None
        raise


def create_job(namespace: str, job: Body) -> Body:
    return _raw(client.batch().create_namespaced_job, namespace, job)


def set_job_suspended(namespace: str, name: str, suspended: bool) -> None:
    client.batch().patch_namespaced_job(name, namespace, {"spec": {"suspend": suspended}})


def list_pods(namespace: str, labels: Mapping[str, str]) -> list[Body]:
    """The pods that carry every one of `labels`."""
    pods = _raw(client.core().list_namespaced_pod, namespace, label_selector=selector(labels))
    items: list[Body] = pods.get("items") or []
    return items


# Inputs a run needs (its output claim, its code ConfigMap) found within this many seconds are
# taken as still there: 200 scheduled runs at one second share one claim, and one GET of it each
# is a fifth of the burst's reads. Only finding is remembered; a missing input is asked again.
FOUND_KEPT_SECONDS = 10.0
_found: dict[tuple[str, str, str], float] = {}
_found_lock = threading.Lock()


def _exists(kind: str, read: Any, namespace: str, name: str) -> bool:
    key, now = (kind, namespace, name), time.monotonic()
    with _found_lock:
        if now - _found.get(key, -FOUND_KEPT_SECONDS) < FOUND_KEPT_SECONDS:
            return True
    try:
        read(name, namespace, _preload_content=False)
    except ApiException as error:
        if is_not_found(error):
            return False
        raise
    with _found_lock:
        for stale in [k for k, at in _found.items() if now - at >= FOUND_KEPT_SECONDS]:
            del _found[stale]
        _found[key] = now
    return True


def claim_exists(namespace: str, name: str) -> bool:
    """Whether the PersistentVolumeClaim exists (a run checks its output claim up front)."""
    read = client.core().read_namespaced_persistent_volume_claim
    return _exists("persistentvolumeclaims", read, namespace, name)


def config_map_exists(namespace: str, name: str) -> bool:
    return _exists("configmaps", client.core().read_namespaced_config_map, namespace, name)


def config_map_data(namespace: str, name: str) -> dict[str, str] | None:
    """A ConfigMap's data and binaryData (base64, as stored), None when it does not exist."""
    try:
        found = client.core().read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if is_not_found(error):
            return None
        raise
    return {**(found.data or {}), **(found.binary_data or {})}


def create_pod(namespace: str, pod: Body) -> Body:
    return _raw(client.core().create_namespaced_pod, namespace, pod)


def delete_pod(namespace: str, name: str) -> None:
    """Delete a pod; one that is already gone is fine."""
    try:
        client.core().delete_namespaced_pod(name, namespace)
    except ApiException as error:
        if not is_not_found(error):
            raise


def pod_warning(namespace: str, pod: str) -> str | None:
    """The pod's latest Warning Event as `Reason: message` (the kubelet says why a pod does not
    start, a volume that cannot be mounted for example, only in Events)."""
    listing = client.core().list_namespaced_event(
        namespace,
        field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod},type=Warning",
    )
    latest = max(
        listing.items,
        key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp,
        default=None,
    )
    return f"{latest.reason}: {latest.message}" if latest is not None else None


def log_tail(namespace: str, pod: str, container: str, lines: int) -> str:
    """The last lines a container wrote, or an empty string when the log is gone."""
    try:
        # Raw bytes: the client parses a log that looks like JSON (a trainer's structured
        # logging) and returns its Python repr.
        response = client.core().read_namespaced_pod_log(
            pod, namespace, container=container, tail_lines=lines, _preload_content=False
        )
    except ApiException:
        return ""
    return bytes(response.data).decode("utf-8", errors="replace")


# Deployments and Services of ModelDeployments: written whole with server-side apply, so that
# the operator's manifest is exactly what the object holds (a field it stops setting is removed)
# and fields that others own (an HPA's, kubectl's) are never fought over silently.
FIELD_MANAGER = "cairn-operator"
APPLY_PATCH = "application/apply-patch+yaml"


def get_deployment(namespace: str, name: str) -> Body | None:
    try:
        return _raw(client.apps().read_namespaced_deployment, name, namespace)
    except ApiException as error:
        if is_not_found(error):
            return None
        raise


def apply_deployment(namespace: str, deployment: Body) -> Body:
    return _raw(
        client.apps().patch_namespaced_deployment,
        deployment["metadata"]["name"],
        namespace,
        deployment,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type=APPLY_PATCH,
    )


def get_service(namespace: str, name: str) -> Body | None:
    try:
        return _raw(client.core().read_namespaced_service, name, namespace)
    except ApiException as error:
        if is_not_found(error):
            return None
        raise


def apply_service(namespace: str, service: Body) -> Body:
    return _raw(
        client.core().patch_namespaced_service,
        service["metadata"]["name"],
        namespace,
        service,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type=APPLY_PATCH,
    )


def delete_deployment(namespace: str, name: str) -> None:
    """Delete a Deployment and its pods; one that is already gone is fine."""
    try:
        client.apps().delete_namespaced_deployment(name, namespace, propagation_policy="Background")
    except ApiException as error:
        if not is_not_found(error):
            raise


# Reading a serving pod's /metrics goes through the API server's pod proxy, so it works wherever
# the operator runs (in the cluster or on a laptop) and needs no Prometheus.
SCRAPE_TIMEOUT_SECONDS = 5


def read_pod_path(namespace: str, pod: str, port: int, path: str) -> str | None:
    """GET http://<pod>:<port>/<path> through the API server; None when the pod does not answer."""
    try:
        # Raw: the client would parse a JSON answer into Python objects (and print them).
        response = client.core().connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:{port}",
            namespace,
            path,
            _request_timeout=SCRAPE_TIMEOUT_SECONDS,
            _preload_content=False,
        )
        return bytes(response.data).decode("utf-8", "replace")
    except ApiException:
        return None
    except (HTTPError, OSError):  # urllib3's timeouts and connection errors
        return None
