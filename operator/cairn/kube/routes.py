"""Gateway API HTTPRoutes, which the operator reads and whose backend weights it sets; the
route itself belongs to the user."""

from typing import Any

from kubernetes.client.exceptions import ApiException

from cairn.kube import client
from cairn.kube.errors import is_not_found

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
Body = dict[str, Any]


def get_httproute(namespace: str, name: str) -> Body | None:
    try:
        found: Body = client.custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as error:
        # 404 also when the Gateway API's CRDs are not installed.
        if is_not_found(error):
            return None
        raise
    return found


def set_rules(namespace: str, name: str, rules: list[Body], resource_version: str) -> Body:
    """Replace spec.rules, only if the route is still the one read (resourceVersion), so a
    concurrent edit by its owner is never overwritten."""
    body = {"metadata": {"resourceVersion": resource_version}, "spec": {"rules": rules}}
    patched: Body = client.custom().patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        body,
        _content_type="application/merge-patch+json",
    )
    return patched
