"""How many of a ModelDeployment's serving pods are ready, and how many endpoints its Service
has, after every change: watches from threads of the test process, so that no dip between two
polls goes unseen."""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.support.kube import Kube
from tests.support.wait import wait_for

WATCH_SECONDS = 2  # each watch call returns this often to look at the stop flag
GONE = 410  # the resourceVersion is too old: list again


def ready_pods(pods: Iterable[Any]) -> int:
    """Pods whose Ready condition is True and which are not terminating: what a Deployment's
    maxUnavailable counts."""
    return sum(
        1
        for pod in pods
        if not pod.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    )


def ready_endpoints(slices: Iterable[Any]) -> int:
    """Endpoints the Service sends new connections to (ready; a terminating pod's is not).
    An unset ready means unknown, which the API says to take as ready."""
    return sum(
        1
        for endpoint_slice in slices
        for endpoint in endpoint_slice.endpoints or []
        if endpoint.conditions is None or endpoint.conditions.ready is not False
    )


class ReadyCounts:
    """The counts after each change seen, as (seconds since start, count), for pods and for
    endpoints."""

    def __init__(self, k8s: Kube, namespace: str, name: str) -> None:
        self.k8s, self.namespace, self.name = k8s, namespace, name
        self.pods: list[tuple[float, int]] = []
        self.endpoints: list[tuple[float, int]] = []
        self.errors: list[BaseException] = []
        self._start = time.monotonic()
        self._stop = threading.Event()
        discovery = client.DiscoveryV1Api(k8s.api_client)
        self._threads = [
            self._thread(
                k8s.core.list_namespaced_pod, f"cairn.dev/deployment={name}", ready_pods, self.pods
            ),
            self._thread(
                discovery.list_namespaced_endpoint_slice,
                f"kubernetes.io/service-name={name}",
                ready_endpoints,
                self.endpoints,
            ),
        ]

    def _thread(
        self,
        list_fn: Callable[..., Any],
        selector: str,
        count: Callable[[Iterable[Any]], int],
        into: list[tuple[float, int]],
    ) -> threading.Thread:
        def follow() -> None:
            try:
                self._follow(list_fn, selector, count, into)
            except BaseException as error:  # shown by the test, never lost in a thread
                self.errors.append(error)

        return threading.Thread(target=follow, daemon=True)

    def _follow(
        self,
        list_fn: Callable[..., Any],
        selector: str,
        count: Callable[[Iterable[Any]], int],
        into: list[tuple[float, int]],
    ) -> None:
        objects: dict[str, Any] = {}
        version: str | None = None
        while not self._stop.is_set():
            if version is None:
                listed = list_fn(self.namespace, label_selector=selector)
                objects = {o.metadata.name: o for o in listed.items}
                version = listed.metadata.resource_version
                into.append((time.monotonic() - self._start, count(objects.values())))
            try:
                for event in watch.Watch().stream(
                    list_fn,
                    self.namespace,
                    label_selector=selector,
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                ):
                    found = event["object"]
                    version = found.metadata.resource_version
                    if event["type"] == "DELETED":
                        objects.pop(found.metadata.name, None)
                    else:
                        objects[found.metadata.name] = found
                    into.append((time.monotonic() - self._start, count(objects.values())))
            except ApiException as error:
                if error.status != GONE:
                    raise
                version = None

    def wait_for_both(self, at_least: int, timeout: float = 60) -> None:
        """Until both counts have reached `at_least`: the state before a change, observed."""

        def reached() -> bool:
            self.check()
            latest = [series[-1][1] for series in (self.pods, self.endpoints) if series]
            return len(latest) == 2 and min(latest) >= at_least

        wait_for(
            reached,
            timeout=timeout,
            message=f"{at_least} ready pods and endpoints of {self.name}",
            describe=lambda: f"pods {self.pods[-5:]}, endpoints {self.endpoints[-5:]}",
        )

    def check(self) -> None:
        if self.errors:
            raise AssertionError(f"a watch of {self.name} failed: {self.errors[0]!r}")

    def fewest_after(self, series: list[tuple[float, int]], moment: float) -> int:
        """The lowest count from `moment` on (the count then included)."""
        before = [count for at, count in series if at <= moment][-1:]
        return min(before + [count for at, count in series if at > moment])

    def now(self) -> float:
        return time.monotonic() - self._start


@contextmanager
def ready_counts(k8s: Kube, namespace: str, name: str) -> Iterator[ReadyCounts]:
    counts = ReadyCounts(k8s, namespace, name)
    for thread in counts._threads:
        thread.start()
    try:
        yield counts
    finally:
        counts._stop.set()
        for thread in counts._threads:
            thread.join(timeout=WATCH_SECONDS + 10)
    counts.check()
