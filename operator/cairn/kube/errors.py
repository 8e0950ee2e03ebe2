"""Classifying API errors, so callers say what they mean instead of comparing status codes."""

from kubernetes.client.exceptions import ApiException


def is_not_found(error: ApiException) -> bool:
    return bool(error.status == 404)


def is_conflict(error: ApiException) -> bool:
    """409: the object changed since it was read (or already exists, for a create)."""
    return bool(error.status == 409)
