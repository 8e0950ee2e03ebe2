"""How a pod that reads or writes s3:// URIs gets its credentials: the keys of a Secret as its
environment (envFrom), so the operator never reads a secret value (pure)."""

from typing import Any

Body = dict[str, Any]
OBJECT_STORE_SCHEMES = ("s3://",)


def uses_object_store(*uris: str | None) -> bool:
    return any(uri and uri.startswith(OBJECT_STORE_SCHEMES) for uri in uris)


def credentials_env_from(secret_name: str | None, default_secret: str | None) -> list[Body]:
    """The container's envFrom: the Secret the object names (it must exist: the kubelet holds
    the pod until it does, and says so), else the namespace's default Secret if there is one
    (optional: without it the pod uses its workload identity), else nothing."""
    if secret_name:
        return [{"secretRef": {"name": secret_name}}]
    if default_secret:
        return [{"secretRef": {"name": default_secret, "optional": True}}]
    return []
