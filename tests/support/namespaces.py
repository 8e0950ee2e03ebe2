"""Throwaway namespaces for tests, labelled so that leftovers are easy to find and delete.

After an interrupted run: kubectl delete namespace -l cairn.dev/test=true
"""

import re
import secrets

from kubernetes.client.exceptions import ApiException

from tests.support.kube import Kube, is_not_found, read_or_none
from tests.support.wait import wait_for

TEST_LABEL = "cairn.dev/test"
MAX_NAME_LENGTH = 63  # a DNS label
SERVICE_ACCOUNT_TIMEOUT = 60


def unique_namespace_name(hint: str) -> str:
    """A unique namespace name that still says which test made it."""
    suffix = secrets.token_hex(3)
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")
    room = MAX_NAME_LENGTH - len("cairn--") - len(suffix)
    slug = slug[:room].rstrip("-") or "test"
    return f"cairn-{slug}-{suffix}"


RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def create_test_namespace(
    kube: Kube, hint: str, service_account_timeout: float = SERVICE_ACCOUNT_TIMEOUT
) -> str:
    name = unique_namespace_name(hint)
    # Every pod of a test (the operator's, the test's own) must meet the restricted Pod Security
    # Standard, as in a namespace of a platform team that enforces it: the API server refuses
    # any that does not.
    labels = {TEST_LABEL: "true", **RESTRICTED}
    kube.core.create_namespace({"metadata": {"name": name, "labels": labels}})
    # The API server refuses pods until the namespace's default ServiceAccount exists, and the
    # controller manager creates that one a moment after the namespace.
    wait_for(
        lambda: read_or_none(kube.core.read_namespaced_service_account, "default", name),
        timeout=service_account_timeout,
        message=f"the default ServiceAccount of namespace {name}",
    )
    return name


def delete_namespace(kube: Kube, name: str) -> None:
    """Ask for the deletion without waiting for it to finish."""
    try:
        kube.core.delete_namespace(name)
    except ApiException as error:
        if not is_not_found(error):
            raise
