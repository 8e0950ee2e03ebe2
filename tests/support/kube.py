"""Kubernetes API clients for one kubeconfig, and small reads the tests repeat."""

import dataclasses
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.util.retry import Retry


@dataclasses.dataclass(frozen=True)
class Kube:
    # Any rather than the client's classes: tests pass manifests as plain dicts, shaped like the
    # YAML a user writes, which the client accepts but its annotations do not.
    api_client: Any  # ApiClient
    core: Any  # CoreV1Api
    apps: Any  # AppsV1Api
    batch: Any  # BatchV1Api
    custom: Any  # CustomObjectsApi

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str, retries: Retry | None = None) -> "Kube":
        """Clients of the cluster `kubeconfig` names; `retries` (urllib3's) lets every call
        wait out an API server that is down, as the control-plane chaos tests need."""
        # An explicit client rather than the global default one: the tests never depend on
        # whatever configuration the process happened to load first.
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.retries = retries
        api_client = client.ApiClient(configuration)
        return cls(
            api_client=api_client,
            core=client.CoreV1Api(api_client),
            apps=client.AppsV1Api(api_client),
            batch=client.BatchV1Api(api_client),
            custom=client.CustomObjectsApi(api_client),
        )


def is_not_found(error: ApiException) -> bool:
    return bool(error.status == 404)


def read_or_none(read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Return the object `read(*args)` finds, or None when the API server says 404."""
    try:
        return read(*args, **kwargs)
    except ApiException as error:
        if is_not_found(error):
            return None
        raise
