"""Status writes: every controller writes its kind's status through `write`, which sends only what
changed (a JSON merge patch: changed keys, nested maps merged, null for what went away).

Only the controller of a kind writes its status, one reconcile of an object at a time, from the
object it has just read: the patch computed from that object's status is then exactly the
difference. Argo Rollouts' persistRolloutStatus works the same way.
"""

from typing import Any

from cairn.api import ApiModel, Resource
from cairn.kube import cache, objects

Body = dict[str, Any]


def merge_patch(old: Body, new: Body) -> Body:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`; empty when they are equal.
    Lists are replaced whole, as merge patches do (conditions are always written whole)."""
    patch: Body = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    return patch


def as_body(status: ApiModel | None) -> Body:
    return status.to_dict() if status is not None else {}


def write(obj: Resource, old: ApiModel | None, new: ApiModel) -> bool:
    """Make obj's status `new`, given that it is `old` now; returns whether anything was sent."""
    patch = merge_patch(as_body(old), as_body(new))
    if not patch:
        return False
    written = objects.patch_status(type(obj), obj.namespace, obj.name, patch)
    if isinstance(written, dict):
        cache.remember(type(obj), written)
    return True
