"""The one place that builds the API client: in-cluster config in a pod, else the kubeconfig."""

import functools
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from cairn import __version__

# The API server names a client's field manager after its user agent: managedFields then tell
# the operator's writes from a person's `cairn approve` (and from Argo CD's).
_agent = "cairn-operator"


def identify(agent: str) -> None:
    """Name this process's writes (before the first API call): cairn-operator or cairn-cli."""
    global _agent
    _agent = agent


@functools.cache
def api_client() -> Any:
    """A shared ApiClient; the kubernetes client's pool is thread-safe, kopf runs sync handlers
    in threads."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        config.load_kube_config(client_configuration=configuration)
    # A connection for every thread that may call at once (kopf's 32 handler workers, the
    # resync's 100, the 4 Event posters): beyond the pool's size each call opens a new TLS
    # connection and throws it away, and in a burst the handshakes cost both sides more than the
    # calls.
    configuration.connection_pool_maxsize = 140
    shared = client.ApiClient(configuration)
    shared.user_agent = f"{_agent}/{__version__}"
    return shared


def core() -> Any:
    return client.CoreV1Api(api_client())


def apps() -> Any:
    return client.AppsV1Api(api_client())


def batch() -> Any:
    return client.BatchV1Api(api_client())


def custom() -> Any:
    return client.CustomObjectsApi(api_client())
