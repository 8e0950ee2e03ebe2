"""Classifying API errors, so callers say what they mean instead of comparing status codes."""

import json

from kubernetes.client.exceptions import ApiException


def is_not_found(error: ApiException) -> bool:
    return bool(error.status == 404)


def is_conflict(error: ApiException) -> bool:
    """409: the object changed since it was read (or already exists, for a create)."""
    return bool(error.status == 409)


def is_invalid(error: ApiException) -> bool:
    """400 or 422: the API server refuses the object as it is; sending it again cannot help."""
    return error.status in (400, 422)


def is_refused(error: ApiException) -> bool:
    """400, 403 or 422: refused for what the object is or asks (a schema, a quota, a Pod Security
    or RBAC rule); sending it again before something else changes cannot help."""
    return is_invalid(error) or error.status == 403


def reason_of(error: ApiException) -> str:
    """The API server's own explanation (its Status object's message), else the HTTP reason."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or error.reason or error.status)
