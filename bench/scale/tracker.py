"""bench-scale's eyes: one watch per kind in the bench's namespace, recording when each object
first carries a status the operator wrote, and the last phase (and why) it reported."""

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from bench.scale.measure import answered, outcome
from kubernetes import client, watch

GROUP, VERSION = "cairn.dev", "v1alpha1"
WATCH_SECONDS = 20  # each watch call ends this often, so that stop() takes effect soon
LIST_SECONDS = 120  # 10,000 versions in one list on a busy API server

logger = logging.getLogger(__name__)


class Tracker:
    def __init__(self, custom: Any, namespace: str, plural: str) -> None:
        self.custom, self.namespace, self.plural = custom, namespace, plural
        self.answered_at: dict[str, float] = {}
        self.phase: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True, name=plural)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the watch to end (it does within WATCH_SECONDS); join() waits for it."""
        self._stop.set()

    def join(self) -> None:
        self._thread.join(timeout=WATCH_SECONDS + 10)

    def answered(self, names: Iterable[str]) -> int:
        with self._lock:
            return sum(name in self.answered_at for name in names)

    def snapshot(self) -> tuple[dict[str, float], dict[str, str]]:
        """When each object was first answered, and its last phase."""
        with self._lock:
            return dict(self.answered_at), dict(self.phase)

    def _observe(self, body: dict[str, Any], now: float) -> None:
        name = body["metadata"]["name"]
        with self._lock:
            if name not in self.answered_at and answered(body):
                self.answered_at[name] = now
            reported = outcome(body)
            if reported:
                self.phase[name] = reported

    def _list(self) -> str:
        """Everything there is now (after a watch expired: the time seen is an upper bound)."""
        listed = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, self.plural, _request_timeout=LIST_SECONDS
        )
        now = time.monotonic()
        for item in listed["items"]:
            self._observe(item, now)
        return str(listed["metadata"]["resourceVersion"])

    def _follow(self) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                stream = watch.Watch()
                for event in stream.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    self.plural,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    # A connection that hangs (the API server restarting) cannot stall it.
                    _request_timeout=WATCH_SECONDS + 15,
                ):
                    body = event["object"]
                    if event["type"] == "ERROR":  # 410 Gone: listed again
                        version = None
                        break
                    version = body["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._observe(body, time.monotonic())
                    if self._stop.is_set():
                        break
                stream.stop()
            except client.ApiException as error:
                if error.status == 410:
                    version = None
                else:
                    logger.warning("watch of %s: %s", self.plural, error)
                    time.sleep(1)
            except Exception as error:  # the API server restarting, a dropped connection
                logger.warning("watch of %s: %r", self.plural, error)
                time.sleep(1)
