"""Reading and writing Cairn's own objects (group cairn.dev) through the custom objects API.

Callers name the kind by its API class (TrainingRun, Model, ...): the plural comes from the class,
never typed out. Bodies go in and come out as the API server sends them; the controllers validate
them into the API models at their boundary.
"""

from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.api import GROUP, VERSION, Resource
from cairn.api.labels import selector
from cairn.kube import client
from cairn.kube.errors import is_not_found

MERGE_PATCH = "application/merge-patch+json"

Body = dict[str, Any]
Kind = type[Resource]


def get(kind: Kind, namespace: str, name: str) -> Body | None:
    try:
        found: Body = client.custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, kind.plural(), name
        )
    except ApiException as error:
        if is_not_found(error):
            return None
        raise
    return found


def list_(kind: Kind, namespace: str, labels: Mapping[str, str] | None = None) -> list[Body]:
    listing = client.custom().list_namespaced_custom_object(
        GROUP, VERSION, namespace, kind.plural(), label_selector=selector(labels or {})
    )
    items: list[Body] = listing.get("items", [])
    return items


def create(kind: Kind, namespace: str, body: Body) -> Body:
    created: Body = client.custom().create_namespaced_custom_object(
        GROUP, VERSION, namespace, kind.plural(), body
    )
    return created


def patch(kind: Kind, namespace: str, name: str, body: Body) -> Body:
    """JSON merge patch of the object (spec and metadata; status is ignored by the API)."""
    patched: Body = client.custom().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, kind.plural(), name, body, _content_type=MERGE_PATCH
    )
    return patched


def patch_status(kind: Kind, namespace: str, name: str, status: Body | None) -> Body:
    """JSON merge patch of status alone: fields not named are left as they are, null removes
    (status None removes all of it)."""
    patched: Body = client.custom().patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        kind.plural(),
        name,
        {"status": status},
        _content_type=MERGE_PATCH,
    )
    return patched


def delete(kind: Kind, namespace: str, name: str) -> None:
    """Delete the object; one that is already gone is fine."""
    try:
        client.custom().delete_namespaced_custom_object(
            GROUP, VERSION, namespace, kind.plural(), name
        )
    except ApiException as error:
        if not is_not_found(error):
            raise
