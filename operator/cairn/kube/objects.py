"""Reading and writing Cairn's own objects (group cairn.dev) through the custom objects API."""

from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.kube import client
from cairn.kube.errors import is_not_found

GROUP = "cairn.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MERGE_PATCH = "application/merge-patch+json"

Body = dict[str, Any]


def get(plural: str, namespace: str, name: str) -> Body | None:
    try:
        found: Body = client.custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    except ApiException as error:
        if is_not_found(error):
            return None
        raise
    return found


def list_(plural: str, namespace: str, label_selector: str = "") -> list[Body]:
    listing = client.custom().list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, label_selector=label_selector
    )
    items: list[Body] = listing.get("items", [])
    return items


def create(plural: str, namespace: str, body: Body) -> Body:
    created: Body = client.custom().create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body
    )
    return created


def patch(plural: str, namespace: str, name: str, body: Body) -> Body:
    """JSON merge patch of the object (spec and metadata; status is ignored by the API)."""
    patched: Body = client.custom().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name, body, _content_type=MERGE_PATCH
    )
    return patched


def patch_status(plural: str, namespace: str, name: str, status: Body) -> Body:
    """JSON merge patch of status alone: fields not named are left as they are."""
    patched: Body = client.custom().patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, {"status": status}, _content_type=MERGE_PATCH
    )
    return patched


def replace_status(plural: str, body: Body) -> Body:
    """Replace status guarded by body's metadata.resourceVersion: raises a 409 ApiException when
    the object changed since it was read (optimistic concurrency)."""
    meta = body["metadata"]
    replaced: Body = client.custom().replace_namespaced_custom_object_status(
        GROUP, VERSION, meta["namespace"], plural, meta["name"], body
    )
    return replaced


def delete(plural: str, namespace: str, name: str) -> None:
    """Delete the object; one that is already gone is fine."""
    try:
        client.custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as error:
        if not is_not_found(error):
            raise
