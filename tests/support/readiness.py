"""How many of a ModelDeployment's serving pods are ready, and how many endpoints its Service
has, after every change; and when serving pods were reported unready: watches from threads of
the test process, so that no dip between two polls goes unseen."""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from cairn.api.labels import DEPLOYMENT_LABEL
from tests.support.kube import Kube
from tests.support.wait import wait_for

WATCH_SECONDS = 2  # each watch call returns this often to look at the stop flag
GONE = 410  # the resourceVersion is too old: list again


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def ready_pods(pods: Iterable[Any]) -> int:
    """Pods whose Ready condition is True and which are not terminating: what a Deployment's
    maxUnavailable counts."""
    return sum(1 for pod in pods if not pod.metadata.deletion_timestamp and is_ready(pod))


def ready_endpoints(slices: Iterable[Any]) -> int:
    """Endpoints the Service sends new connections to (ready; a terminating pod's is not).
    An unset ready means unknown, which the API says to take as ready."""
    return sum(
        1
        for endpoint_slice in slices
        for endpoint in endpoint_slice.endpoints or []
        if endpoint.conditions is None or endpoint.conditions.ready is not False
    )


# What a follower is told after each change: every object now, by name.
OnChange = Callable[[dict[str, Any]], None]


def follow_objects(
    list_fn: Callable[..., Any],
    namespace: str,
    selector: str,
    on_change: OnChange,
    stop: threading.Event,
    through_outages: bool = False,
) -> None:
    """Lists, then watches, the objects `selector` picks until `stop` is set, calling
    `on_change` after each change; a watch too old to resume (410) lists again. With
    `through_outages` an API server that does not answer (a chaos test's restart) is waited
    for, and the watch resumed, instead of raised."""
    objects: dict[str, Any] = {}
    version: str | None = None
    while not stop.is_set():
        try:
            if version is None:
                listed = list_fn(namespace, label_selector=selector)
                objects = {o.metadata.name: o for o in listed.items}
                version = listed.metadata.resource_version
                on_change(objects)
            for event in watch.Watch().stream(
                list_fn,
                namespace,
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
                on_change(objects)
        except ApiException as error:
            if error.status == GONE:
                version = None
            elif not through_outages:
                raise
            else:
                stop.wait(0.5)
        except (urllib3.exceptions.HTTPError, OSError):
            # Only the connection's failures: a defect in `on_change` must not loop silently.
            if not through_outages:
                raise
            stop.wait(0.5)


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
        def record(objects: dict[str, Any]) -> None:
            into.append((time.monotonic() - self._start, count(objects.values())))

        def follow() -> None:
            try:
                follow_objects(list_fn, self.namespace, selector, record, self._stop)
            except BaseException as error:  # shown by the test, never lost in a thread
                self.errors.append(error)

        return threading.Thread(target=follow, daemon=True)

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


# A serving pod reported unready: (since, until or None while it lasts, pod), in time.time().
Spell = tuple[float, float | None, str]


class UnreadySpells:
    """Every spell of a serving pod of `namespace` reported unready after it had been ready,
    with no deletion under way, as (since, until or None while it lasts, pod) in time.time():
    what a restarted kubelet does to every probed pod for tens of milliseconds (a poll would
    miss it). Follows through API server outages."""

    def __init__(self, k8s: Kube, namespace: str) -> None:
        self.spells: list[Spell] = []
        self._ready: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=follow_objects,
            args=(
                k8s.core.list_namespaced_pod,
                namespace,
                DEPLOYMENT_LABEL,
                self._changed,
                self._stop,
                True,
            ),
            daemon=True,
        )

    def _changed(self, objects: dict[str, Any]) -> None:
        now = time.time()
        for name in set(self._ready) - set(objects):
            del self._ready[name]  # deleted (or gone while the watch was away)
        for name, found in objects.items():
            ready, was = is_ready(found), self._ready.get(name)
            self._ready[name] = ready
            if was and not ready and not found.metadata.deletion_timestamp:
                self.spells.append((now, None, name))
            elif ready and was is False:
                self.spells = [
                    (since, now if until is None and who == name else until, who)
                    for since, until, who in self.spells
                ]


@contextmanager
def unready_spells(k8s: Kube, namespace: str) -> Iterator[UnreadySpells]:
    watcher = UnreadySpells(k8s, namespace)
    watcher._thread.start()
    try:
        yield watcher
    finally:
        watcher._stop.set()
        watcher._thread.join(timeout=WATCH_SECONDS + 10)
