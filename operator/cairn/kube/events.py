"""Events for user-visible transitions, written to the core Events API.

kopf can post events too, but only through its per-object log level, which would also turn its
routine handler log lines into Events; Cairn posts exactly the transitions it decides on.
"""

import concurrent.futures
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.api import Resource
from cairn.kube import client

COMPONENT = "cairn-operator"
MESSAGE_LIMIT = 1024  # the API server refuses longer event messages

logger = logging.getLogger(__name__)


Regarding = Resource | dict[str, Any]  # one of ours, or a body such as a Deployment's


def _involved(obj: Regarding) -> dict[str, Any]:
    if isinstance(obj, Resource):
        return {
            "apiVersion": obj.api_version,
            "kind": obj.kind_name(),
            "name": obj.name,
            "namespace": obj.namespace,
            "uid": obj.uid,
        }
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta.get("uid"),
    }


# Posting happens beside the reconcile, not in it: an Event is not worth the API round trip on
# the path of a burst (200 scheduled runs at one second). Its time is the decision's.
_posting = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="events")
# Nor is it worth the API server's time during one: posting waits while the operator says it is
# busy (hold_while), so that a burst's creates come first; an Event waits HOLD_SECONDS at most
# from when it was decided, not from when a poster takes it up: held one after another on the 4
# posters, Events would drain at 4 per HOLD_SECONDS and, in a burst that lasts (thousands of
# objects), queue without bound (about 3 KB each) and appear long after the fact.
HOLD_SECONDS = 5.0


def _never_busy() -> bool:
    return False


_busy: Callable[[], bool] = _never_busy


def hold_while(busy: Callable[[], bool]) -> None:
    """Hold Events back while `busy()` is true (and at most HOLD_SECONDS each)."""
    global _busy
    _busy = busy


def _create(namespace: str, event: dict[str, Any], held_until: float) -> None:
    while _busy() and time.monotonic() < held_until:
        time.sleep(0.05)
    try:
        client.core().create_namespaced_event(namespace, event)
    except Exception as error:  # nothing waits for this: say it here or nowhere
        # An Event is a courtesy: losing one must never fail the reconcile that decided it.
        said = error.reason if isinstance(error, ApiException) else repr(error)
        logger.warning(
            "could not post event %s for %s: %s",
            event["reason"],
            event["involvedObject"]["name"],
            said,
        )


def _post(obj: Regarding, type_: str, reason: str, message: str) -> None:
    involved = _involved(obj)
    name, namespace = involved["name"], involved["namespace"]
    now = datetime.datetime.now(datetime.UTC)
    event = {
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": involved,
        "type": type_,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    _posting.submit(_create, namespace, event, time.monotonic() + HOLD_SECONDS)


def info(obj: Regarding, reason: str, message: str) -> None:
    _post(obj, "Normal", reason, message)


def warn(obj: Regarding, reason: str, message: str) -> None:
    _post(obj, "Warning", reason, message)


def of(namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    """The Events about one object that the API server still keeps (an hour by default)."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    found = client.core().list_namespaced_event(namespace, field_selector=selector)
    return [client.api_client().sanitize_for_serialization(e) for e in found.items]
