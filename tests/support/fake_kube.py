"""An in-memory stand-in for cairn.kube, the only package of the operator that talks to the API
server: the functions the controllers call, over plain dicts, so that a unit test can stop a
reconcile after any API call (a crash: the operator process dies there) or make any write fail
with a 409, and then check that the next reconciles converge.

It is not an emulator of the Kubernetes API. It does what the controllers rely on: create refuses
a name that is taken, patches are JSON merge patches, spec changes raise metadata.generation,
label selectors select, deleting an owner deletes what it owns. The cluster's own controllers
(the Job controller, the Deployment controller, the kubelet) are the test's to play, with the
helpers at the end (`finish_job`, `settle_deployments`). The real-cluster tests cover the rest.
"""

import copy
import dataclasses
import itertools
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import pytest
from kubernetes.client.exceptions import ApiException

from cairn.api import Resource
from cairn.api.labels import CONTINUOUS_TRAINING_LABEL, RUN_LABEL
from cairn.kube import cache, events, objects, routes, workloads

Body = dict[str, Any]
Key = tuple[str, str, str]  # (resource, namespace, name)


class Crash(BaseException):
    """The operator died right after an API call. A BaseException: no handler of the operator
    catches it, as none survives a SIGKILL."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """At the `at`-th API call: die after it (crash), or refuse it with a 409 (conflict, writes
    only: a read does not conflict)."""

    at: int
    kind: Literal["crash", "conflict"]


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386: what a JSON merge patch makes of `target`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def _matches(body: Body, labels: Mapping[str, str] | None) -> bool:
    have = body.get("metadata", {}).get("labels") or {}
    return all(have.get(key) == value for key, value in (labels or {}).items())


class FakeKube:
    def __init__(self) -> None:
        self.store: dict[Key, Body] = {}
        self.events: list[tuple[str, str, str, str]] = []  # (object, type, reason, message)
        self.calls: list[str] = []
        self.writes: list[int] = []  # the call numbers of writes
        self.fault: Fault | None = None
        self.fired: Fault | None = None  # the fault, once it happened (each fires once)
        self.pod_metrics: dict[str, str] = {}  # pod name → its /metrics page
        self.unwatched: set[Key] = set()  # created while the watch lags: not in the cache yet
        self.watch_lags = False
        self._versions = itertools.count(1)

    # --- bookkeeping ------------------------------------------------------------------------

    def _call(self, what: str, write: bool, act: Callable[[], Any]) -> Any:
        self.calls.append(what)
        number = len(self.calls)
        if write:
            self.writes.append(number)
        fault = self.fault
        if fault is not None and fault.at == number and fault.kind == "conflict" and write:
            self.fault, self.fired = None, fault
            raise ApiException(status=409, reason="Conflict")
        result = act()
        if fault is not None and fault.at == number and fault.kind == "crash":
            self.fault, self.fired = None, fault
            raise Crash(what)
        return result

    def _stamp(self, body: Body, namespace: str) -> Body:
        meta = body.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        meta.setdefault("uid", str(uuid.uuid4()))  # unique everywhere, as the API server's
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        meta["resourceVersion"] = str(next(self._versions))
        return body

    def _get(self, resource: str, namespace: str, name: str) -> Body | None:
        found = self.store.get((resource, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def _create(self, resource: str, namespace: str, body: Body) -> Body:
        key = (resource, namespace, body["metadata"]["name"])
        if key in self.store:
            raise ApiException(status=409, reason="AlreadyExists")
        self.store[key] = self._stamp(copy.deepcopy(body), namespace)
        if self.watch_lags:
            self.unwatched.add(key)
        return copy.deepcopy(self.store[key])

    def _patch(self, resource: str, namespace: str, name: str, patch: Body) -> Body:
        key = (resource, namespace, name)
        if key not in self.store:
            raise ApiException(status=404, reason="NotFound")
        before = self.store[key]
        after = merge(before, {k: v for k, v in patch.items() if k != "status"})
        if after.get("spec") != before.get("spec"):
            after["metadata"]["generation"] = int(before["metadata"]["generation"]) + 1
        after["metadata"]["resourceVersion"] = str(next(self._versions))
        self.store[key] = after
        return copy.deepcopy(after)

    def _patch_status(self, resource: str, namespace: str, name: str, status: Any) -> Body:
        key = (resource, namespace, name)
        if key not in self.store:
            raise ApiException(status=404, reason="NotFound")
        body = self.store[key]
        if status is None:
            body.pop("status", None)
        else:
            body["status"] = merge(body.get("status") or {}, status)
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(body)

    def _delete(self, resource: str, namespace: str, name: str) -> None:
        gone = self.store.pop((resource, namespace, name), None)
        if gone is None:
            return
        uid = gone["metadata"]["uid"]  # garbage collection of what it owned
        for key, body in list(self.store.items()):
            owners = body["metadata"].get("ownerReferences") or []
            if key[1] == namespace and any(o.get("uid") == uid for o in owners):
                self._delete(*key)

    def _list(self, resource: str, namespace: str, labels: Mapping[str, str] | None) -> list[Body]:
        return [
            copy.deepcopy(body)
            for (kind, ns, _), body in sorted(self.store.items())
            if kind == resource and ns == namespace and _matches(body, labels)
        ]

    def _apply(self, resource: str, namespace: str, body: Body) -> Body:
        """Server-side apply as the operator uses it: the object becomes what it sent, its
        status stays."""
        key = (resource, namespace, body["metadata"]["name"])
        before = self.store.get(key)
        applied = self._stamp(copy.deepcopy(body), namespace)
        if before is not None:
            applied["metadata"]["uid"] = before["metadata"]["uid"]
            generation = int(before["metadata"]["generation"])
            changed = before.get("spec") != applied.get("spec")
            applied["metadata"]["generation"] = generation + 1 if changed else generation
            if "status" in before:
                applied["status"] = before["status"]
        self.store[key] = applied
        return copy.deepcopy(applied)

    # --- cairn.kube.objects -----------------------------------------------------------------

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Route every function of cairn.kube the controllers call to this fake."""

        def kind(resource: type[Resource]) -> str:
            return resource.plural()

        patches: dict[Any, dict[str, Callable[..., Any]]] = {
            objects: {
                "get": lambda k, ns, n: self._call(
                    f"get {kind(k)}/{n}", False, lambda: self._get(kind(k), ns, n)
                ),
                "list_": lambda k, ns, labels=None: self._call(
                    f"list {kind(k)}", False, lambda: self._list(kind(k), ns, labels)
                ),
                "create": lambda k, ns, b: self._call(
                    f"create {kind(k)}/{b['metadata']['name']}",
                    True,
                    lambda: self._create(kind(k), ns, b),
                ),
                "patch": lambda k, ns, n, b: self._call(
                    f"patch {kind(k)}/{n}", True, lambda: self._patch(kind(k), ns, n, b)
                ),
                "patch_status": lambda k, ns, n, s: self._call(
                    f"patch {kind(k)}/{n}/status",
                    True,
                    lambda: self._patch_status(kind(k), ns, n, s),
                ),
                "delete": lambda k, ns, n: self._call(
                    f"delete {kind(k)}/{n}", True, lambda: self._delete(kind(k), ns, n)
                ),
            },
            workloads: {
                "get_job": lambda ns, n: self._call(
                    f"get jobs/{n}", False, lambda: self._get("jobs", ns, n)
                ),
                "create_job": lambda ns, b: self._call(
                    f"create jobs/{b['metadata']['name']}",
                    True,
                    lambda: self._create("jobs", ns, b),
                ),
                "set_job_suspended": lambda ns, n, s: self._call(
                    f"patch jobs/{n}",
                    True,
                    lambda: self._patch("jobs", ns, n, {"spec": {"suspend": s}}),
                ),
                "list_pods": lambda ns, labels: self._call(
                    "list pods", False, lambda: self._list("pods", ns, labels)
                ),
                "log_tail": lambda ns, pod, container, lines: self._call(
                    f"get pods/{pod}/log", False, lambda: ""
                ),
                "claim_exists": lambda ns, n: self._call(
                    f"get persistentvolumeclaims/{n}",
                    False,
                    lambda: ("persistentvolumeclaims", ns, n) in self.store,
                ),
                "config_map_exists": lambda ns, n: self._call(
                    f"get configmaps/{n}", False, lambda: ("configmaps", ns, n) in self.store
                ),
                "pod_warning": lambda ns, pod: self._call("list events", False, lambda: None),
                "get_deployment": lambda ns, n: self._call(
                    f"get deployments/{n}", False, lambda: self._get("deployments", ns, n)
                ),
                "apply_deployment": lambda ns, b: self._call(
                    f"apply deployments/{b['metadata']['name']}",
                    True,
                    lambda: self._apply("deployments", ns, b),
                ),
                "delete_deployment": lambda ns, n: self._call(
                    f"delete deployments/{n}", True, lambda: self._delete("deployments", ns, n)
                ),
                "get_service": lambda ns, n: self._call(
                    f"get services/{n}", False, lambda: self._get("services", ns, n)
                ),
                "apply_service": lambda ns, b: self._call(
                    f"apply services/{b['metadata']['name']}",
                    True,
                    lambda: self._apply("services", ns, b),
                ),
                "create_pod": lambda ns, b: self._call(
                    f"create pods/{b['metadata']['name']}",
                    True,
                    lambda: self._create("pods", ns, b),
                ),
                "delete_pod": lambda ns, n: self._call(
                    f"delete pods/{n}", True, lambda: self._delete("pods", ns, n)
                ),
                "config_map_data": lambda ns, n: self._call(
                    f"get configmaps/{n}", False, lambda: self._config_map_data(ns, n)
                ),
                "read_pod_path": lambda ns, pod, port, path: self._call(
                    f"get pods/{pod}/proxy/{path}", False, lambda: self.pod_metrics.get(pod)
                ),
            },
            routes: {
                "get_httproute": lambda ns, n: self._call(
                    f"get httproutes/{n}", False, lambda: self._get("httproutes", ns, n)
                ),
            },
            events: {
                "info": lambda obj, reason, message: self._call(
                    f"create events ({reason})",
                    True,
                    lambda: self._event(obj, "Normal", reason, message),
                ),
                "warn": lambda obj, reason, message: self._call(
                    f"create events ({reason})",
                    True,
                    lambda: self._event(obj, "Warning", reason, message),
                ),
            },
        }
        for module, functions in patches.items():
            for name, function in functions.items():
                monkeypatch.setattr(module, name, function)
        monkeypatch.setattr(cache, "_store", self)
        # A fresh cluster, a fresh operator: no versions remembered from another test's objects.
        monkeypatch.setattr(cache, "_known", type(cache._known)())
        monkeypatch.setattr(cache, "_created", {})

    def _config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.store.get(("configmaps", namespace, name))
        return dict(found.get("data") or {}) if found is not None else None

    def _event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        name = obj.name if isinstance(obj, Resource) else obj["metadata"]["name"]
        self.events.append((name, type_, str(reason), message))

    # --- cairn.kube.cache (fresh, unless the test makes the watch lag) ----------------------

    def lag(self) -> None:
        """From now on, what is created reaches the cache only at catch_up()."""
        self.watch_lags = True

    def catch_up(self) -> None:
        self.watch_lags = False
        self.unwatched.clear()

    def _watched(
        self, resource: str, namespace: str, labels: Mapping[str, str] | None
    ) -> list[Body]:
        return [
            body
            for body in self._list(resource, namespace, labels)
            if (resource, namespace, body["metadata"]["name"]) not in self.unwatched
        ]

    def get(self, kind: type[Resource], namespace: str, name: str) -> Body | None:
        if (kind.plural(), namespace, name) in self.unwatched:
            return None
        return self._get(kind.plural(), namespace, name)

    def of_model(self, kind: type[Resource], namespace: str, model: str) -> list[Body]:
        return [
            body
            for body in self._list(kind.plural(), namespace, None)
            if (body.get("spec") or {}).get("model") == model
        ]

    def runs_of(self, namespace: str, continuous_training: str) -> list[Body]:
        return self._watched(
            "trainingruns", namespace, {CONTINUOUS_TRAINING_LABEL: continuous_training}
        )

    def run_job(self, namespace: str, run: str) -> Body | None:
        jobs = self._list("jobs", namespace, {RUN_LABEL: run})
        return jobs[0] if jobs else None

    def run_pods(self, namespace: str, run: str) -> list[Body]:
        return self._list("pods", namespace, {RUN_LABEL: run})

    # --- what the test puts in the cluster, and what the cluster's controllers do ----------

    def add(self, resource: str, body: Body, namespace: str = "ml") -> Body:
        """An object that exists before the reconciles under test run."""
        return self._create(resource, namespace, body)

    def objects_of(self, resource: str, namespace: str = "ml") -> list[Body]:
        return self._list(resource, namespace, None)

    def finish_job(self, name: str, summary: Body, namespace: str = "ml") -> None:
        """The Job controller and the kubelet: the run's pod ran and succeeded, leaving
        `summary` as its termination message."""
        job = self.store[("jobs", namespace, name)]
        job["status"] = {
            "succeeded": 1,
            "startTime": "2026-01-01T00:00:01Z",
            "completionTime": "2026-01-01T00:00:09Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        }
        labels = job["spec"]["template"]["metadata"]["labels"]
        container = {
            "name": "trainer",
            "image": "docker.io/cairn/trainer:dev",
            "imageID": "docker.io/cairn/trainer@sha256:" + "e" * 64,
            "state": {"terminated": {"exitCode": 0, "message": json.dumps(summary)}},
        }
        pod = {
            "metadata": {"name": f"{name}-pod", "labels": dict(labels)},
            "status": {"phase": "Succeeded", "containerStatuses": [container]},
        }
        self._create("pods", namespace, pod)

    def settle_deployments(self, namespace: str = "ml") -> None:
        """The Deployment controller and the kubelet: every Deployment's pods run its template
        and are ready, one pod per replica."""
        for (resource, ns, name), body in list(self.store.items()):
            if resource != "deployments" or ns != namespace:
                continue
            replicas = int(body["spec"]["replicas"])
            body["status"] = {
                "observedGeneration": body["metadata"]["generation"],
                "replicas": replicas,
                "readyReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
            }
            labels = body["spec"]["template"]["metadata"]["labels"]
            for key in [k for k in self.store if k[0] == "pods" and k[2].startswith(name + "-")]:
                del self.store[key]
            for index in range(replicas):
                ready = [{"type": "Ready", "status": "True"}]
                pod = {
                    "metadata": {"name": f"{name}-{index}", "labels": dict(labels)},
                    "status": {"phase": "Running", "conditions": ready},
                }
                self._create("pods", namespace, pod)

    def reasons(self, name: str) -> list[str]:
        """The reasons of the Events posted about object `name`, in order."""
        return [reason for obj, _, reason, _ in self.events if obj == name]


def faults(clean_calls: int, writes: list[int]) -> Iterator[Fault]:
    """Every fault worth trying on a path of `clean_calls` calls: a crash after each call, a
    409 at each write."""
    for number in range(1, clean_calls + 1):
        yield Fault(number, "crash")
    for number in writes:
        yield Fault(number, "conflict")
