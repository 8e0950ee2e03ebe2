"""Owner references, so that garbage collection follows the object that made a child."""

from typing import Any

from cairn.api import Resource

Body = dict[str, Any]


def owner_reference(owner: Resource | Body) -> Body:
    """A controller reference to `owner`: deleting it deletes the child."""
    if isinstance(owner, Resource):
        api_version, kind, name, uid = owner.api_version, owner.kind_name(), owner.name, owner.uid
    else:
        meta = owner["metadata"]
        api_version, kind, name, uid = owner["apiVersion"], owner["kind"], meta["name"], meta["uid"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def adopt(child: Body, owner: Resource | Body) -> None:
    """Make `owner` the controller of `child`, in the owner's namespace."""
    reference = owner_reference(owner)
    namespace = owner.namespace if isinstance(owner, Resource) else owner["metadata"]["namespace"]
    meta = child.setdefault("metadata", {})
    meta["namespace"] = namespace
    kept = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != reference["uid"]]
    meta["ownerReferences"] = [*kept, reference]
