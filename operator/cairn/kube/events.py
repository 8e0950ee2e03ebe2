"""Events for user-visible transitions, written to the core Events API.

kopf can post events too, but only through its per-object log level, which would also turn its
routine handler log lines into Events; Cairn posts exactly the transitions it decides on.
"""

import datetime
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.kube import client

COMPONENT = "cairn-operator"
MESSAGE_LIMIT = 1024  # the API server refuses longer event messages

logger = logging.getLogger(__name__)


def _post(obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    meta = obj["metadata"]
    now = datetime.datetime.now(datetime.UTC)
    event = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        client.core().create_namespaced_event(meta["namespace"], event)
    except ApiException as error:
        # An Event is a courtesy: losing one must never fail the reconcile that decided it.
        logger.warning("could not post event %s for %s: %s", reason, meta["name"], error.reason)


def info(obj: dict[str, Any], reason: str, message: str) -> None:
    _post(obj, "Normal", reason, message)


def warn(obj: dict[str, Any], reason: str, message: str) -> None:
    _post(obj, "Warning", reason, message)
