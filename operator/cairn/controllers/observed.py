"""Which watch events call for a reconcile, for kinds reconciled from kopf event handlers.

kopf's create, resume and update handlers record the last handled spec in an annotation on every
object: one more write per object (10,000 ModelVersions, 10,000 patches), a write whose echo the
next reconcile must wait for, and creation handlers that run again when that echo comes later than
kopf's consistency timeout. The controllers instead compare the object's generation, which the
API server raises on every spec change, with the `status.observedGeneration` their last status
write recorded.
"""

from collections.abc import Mapping
from typing import Any


def spec_unobserved(body: Mapping[str, Any]) -> bool:
    """The spec changed since the status was last written (or there is no status yet)."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    return bool(metadata.get("generation") != status.get("observedGeneration"))


def calls_for_reconcile(type: str | None, body: Mapping[str, Any]) -> bool:
    """The object is new, first seen by this process (type None: kopf's initial listing), or its
    spec is not yet observed; its controller's own status writes call for nothing."""
    return type != "DELETED" and (type in (None, "ADDED") or spec_unobserved(body))
